package benchutil

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Workers is how many requests a benchmark's client has in flight, for the
// workload and for the lower bound alike.
const Workers = 32

// LowerBound is what the API server does for a writer that nothing but the
// API server slows down: the unthrottled client with Workers workers
// creating N ConfigMaps in a fresh namespace, then patching each once, then
// deleting them, measured in the same run as the benchmark it bounds.
type LowerBound struct {
	N                     int
	Create, Patch, Delete Phase
}

// MeasureLowerBound writes the lower bound's n ConfigMaps in namespace ns
// (created here) and deletes them again.
func (u *Up) MeasureLowerBound(tb testing.TB, ns string, n int) LowerBound {
	tb.Helper()
	ctx := context.Background()
	c := u.Unthrottled(tb)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		tb.Fatal(err)
	}
	cm := func(i int) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Namespace: ns}}
	}
	lb := LowerBound{N: n}
	lb.Create = u.Measure(tb, func() {
		Parallel(tb, n, Workers, func(i int) error {
			o := cm(i)
			o.Data = map[string]string{"value": "v1"}
			return c.Create(ctx, o)
		})
	})
	lb.Patch = u.Measure(tb, func() {
		Parallel(tb, n, Workers, func(i int) error {
			return c.Patch(ctx, cm(i), client.RawPatch("application/merge-patch+json", []byte(`{"data":{"value":"v2"}}`)))
		})
	})
	lb.Delete = u.Measure(tb, func() {
		Parallel(tb, n, Workers, func(i int) error { return c.Delete(ctx, cm(i)) })
	})
	return lb
}
