package patch

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Helper remembers an object as a reconcile last read or wrote it, the base
// every patch is computed from.
type Helper struct {
	client client.Client
	base   client.Object
}

// NewHelper remembers obj as read; call it before changing obj.
func NewHelper(c client.Client, obj client.Object) *Helper {
	return &Helper{client: c, base: obj.DeepCopyObject().(client.Object)}
}

// Base is the object as last read or written. Callers must not change it.
func (h *Helper) Base() client.Object { return h.base }

// Updated tells the helper that the caller itself wrote obj's metadata or
// spec (client.Update or Patch of the object) since the base was read or
// written: the base takes obj's new resourceVersion and keeps its status.
// Without it, a locked status write would carry the resourceVersion from
// before the caller's own write and fail with a Conflict against it.
func (h *Helper) Updated(obj client.Object) {
	h.base.SetResourceVersion(obj.GetResourceVersion())
}

// Option changes how one write is made.
type Option func(*options)

type options struct {
	lock   bool
	memory *Memory
}

// WithOptimisticLock makes the write carry the base's resourceVersion: when
// the object changed since it was read (or the read came from a cache that
// had not seen a newer write), the API server refuses the write with a
// Conflict (apierrors.IsConflict) and changes nothing.
func WithOptimisticLock() Option { return func(o *options) { o.lock = true } }

// Status writes obj's status subresource as a merge patch from the base.
// After a successful write obj holds the API server's answer and becomes the
// base of the next write, so a reconcile can write several times. Nothing is
// sent when the status is the base's (a write that changes nothing), nor,
// WithMemory, when it is what this controller last wrote for the object.
func (h *Helper) Status(ctx context.Context, obj client.Object, opts ...Option) error {
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	same, status, err := sameStatus(h.base, obj)
	if err != nil {
		return err
	}
	if same || o.memory.wrote(obj, status) {
		return nil
	}
	// The patch is computed from obj with the base's status, so it holds
	// the status alone even when the reconcile wrote obj's metadata or spec
	// since it was read; locked, it carries the base's resourceVersion.
	from, err := toMap(obj)
	if err != nil {
		return err
	}
	from["status"] = runtime.DeepCopyJSONValue(mapOrNil(h.base))
	base := &unstructured.Unstructured{Object: from}
	var p client.Patch
	if o.lock {
		base.SetResourceVersion(h.base.GetResourceVersion())
		p = client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	} else {
		p = client.MergeFrom(base)
	}
	if err := h.client.Status().Patch(ctx, obj, p); err != nil {
		return fmt.Errorf("cannot patch status of %s: %w", client.ObjectKeyFromObject(obj), err)
	}
	h.base = obj.DeepCopyObject().(client.Object)
	o.memory.remember(obj, status)
	return nil
}

// sameStatus says whether a and b have the same status, and returns b's.
func sameStatus(a, b client.Object) (bool, any, error) {
	sa, err := statusOf(a)
	if err != nil {
		return false, nil, err
	}
	sb, err := statusOf(b)
	if err != nil {
		return false, nil, err
	}
	return equality.Semantic.DeepEqual(sa, sb), sb, nil
}

func statusOf(o client.Object) (any, error) {
	m, err := toMap(o)
	if err != nil {
		return nil, err
	}
	return m["status"], nil
}

// mapOrNil is o's status, or nil when it cannot be read (toMap of the same
// object has succeeded before).
func mapOrNil(o client.Object) any {
	s, _ := statusOf(o)
	return s
}

// toMap is a deep copy of o as JSON-compatible values.
func toMap(o client.Object) (map[string]any, error) {
	if u, ok := o.(runtime.Unstructured); ok {
		return runtime.DeepCopyJSON(u.UnstructuredContent()), nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", client.ObjectKeyFromObject(o), err)
	}
	return m, nil
}
