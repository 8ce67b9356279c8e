package benchutil

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestFirstMatchKeepsTheFirstTimeEachObjectMatched(t *testing.T) {
	obj := func(name string, ready bool) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetName(name)
		if ready {
			_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": "Ready", "status": "True"}}, "status", "conditions")
		}
		return u
	}
	t0 := time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC)
	f := NewFirstMatch(IsReady)
	for _, e := range []struct {
		u       *unstructured.Unstructured
		deleted bool
		at      time.Duration
	}{
		{obj("a", false), false, 1 * time.Second}, // not ready yet
		{obj("a", true), false, 2 * time.Second},  // first match
		{obj("a", true), false, 5 * time.Second},  // later events do not move it
		{obj("b", true), true, 3 * time.Second},   // a deletion is no match
		{obj("b", true), false, 4 * time.Second},
	} {
		f.Observe(e.u, e.deleted, t0.Add(e.at))
	}
	if f.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", f.Len())
	}
	if at, ok := f.At("a"); !ok || !at.Equal(t0.Add(2*time.Second)) {
		t.Errorf("At(a) = %v, %v; want %v", at, ok, t0.Add(2*time.Second))
	}
	if _, ok := f.At("c"); ok {
		t.Errorf("At(c) found an object that never matched")
	}
	if last := f.Last(); !last.Equal(t0.Add(4 * time.Second)) {
		t.Errorf("Last() = %v, want %v", last, t0.Add(4*time.Second))
	}
}
