package testenv

import (
	"context"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// ReplacingClient is a client of cfg that, right before its first
// server-side apply of an object named like replacement (same name and
// namespace), deletes that object and creates replacement in its place: the
// race in which someone else swaps an object between a writer's read and
// its write. replaced reports whether the swap happened.
func ReplacingClient(t *testing.T, cfg *rest.Config, replacement client.Object) (c client.Client, replaced *atomic.Bool) {
	t.Helper()
	ww, err := client.NewWithWatch(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	replaced = &atomic.Bool{}
	c = interceptor.NewClient(ww, interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if patch.Type() == types.ApplyPatchType && obj.GetName() == replacement.GetName() && obj.GetNamespace() == replacement.GetNamespace() &&
				replaced.CompareAndSwap(false, true) {
				old := replacement.DeepCopyObject().(client.Object)
				if err := c.Delete(ctx, old); err != nil {
					t.Errorf("delete %s/%s: %v", old.GetNamespace(), old.GetName(), err)
				}
				if err := c.Create(ctx, replacement.DeepCopyObject().(client.Object)); err != nil {
					t.Errorf("create the replacement of %s/%s: %v", replacement.GetNamespace(), replacement.GetName(), err)
				}
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
	})
	return c, replaced
}
