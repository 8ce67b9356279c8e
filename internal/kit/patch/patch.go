package patch

import (
	"context"
	"fmt"

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

type options struct{ lock bool }

// WithOptimisticLock makes the write carry the base's resourceVersion: when
// the object changed since it was read (or the read came from a cache that
// had not seen a newer write), the API server refuses the write with a
// Conflict (apierrors.IsConflict) and changes nothing.
func WithOptimisticLock() Option { return func(o *options) { o.lock = true } }

// Status writes obj's status subresource as a merge patch from the base.
// After a successful write obj holds the API server's answer and becomes the
// base of the next write, so a reconcile can write several times.
func (h *Helper) Status(ctx context.Context, obj client.Object, opts ...Option) error {
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	var p client.Patch
	if o.lock {
		p = client.MergeFromWithOptions(h.base, client.MergeFromWithOptimisticLock{})
	} else {
		p = client.MergeFrom(h.base)
	}
	if err := h.client.Status().Patch(ctx, obj, p); err != nil {
		return fmt.Errorf("cannot patch status of %s: %w", client.ObjectKeyFromObject(obj), err)
	}
	h.base = obj.DeepCopyObject().(client.Object)
	return nil
}
