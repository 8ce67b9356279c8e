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
