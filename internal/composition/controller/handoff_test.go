package controller

import (
	"context"
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TestHandoff: an XR whose next status changes its readiness reaches its
// claim controller as the write is sent, and is read instead of the cache
// only until the write fails or a watch event of the XR arrives.
func TestHandoff(t *testing.T) {
	gvk := schema.GroupVersionKind{Group: "example.org", Version: "v1", Kind: "XApp"}
	// xrWith is the XR with a Ready condition of status ready; "cache"
	// stands for the XR as the claim controller's cache holds it.
	xrWith := func(ready string, claimed bool) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetGroupVersionKind(gvk)
		u.SetName("shop-1a2b3")
		u.SetUID(types.UID("uid-1"))
		if claimed {
			u.Object["spec"] = map[string]any{"claimRef": map[string]any{"namespace": "team", "name": "shop"}}
		}
		u.Object["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": ready}}}
		return u
	}
	failed := errors.New("conflict")
	cases := map[string]struct {
		steps func(h *handoffs) // before the claim's reconcile reads its XR
		// want is the Ready status the claim controller reads ("Unknown"
		// is the cache's); queued is how many times the claim was queued
		// by a hand-off or by taking one back.
		want   string
		queued int
	}{
		"write in flight": {want: "True", queued: 1, steps: func(h *handoffs) {
			h.offer(xrWith("True", true))
		}},
		"write landed, its watch event not arrived": {want: "True", queued: 1, steps: func(h *handoffs) {
			h.offer(xrWith("True", true))
			h.written("uid-1", nil)
		}},
		"watch event arrived": {want: "Unknown", queued: 1, steps: func(h *handoffs) {
			h.offer(xrWith("True", true))
			h.written("uid-1", nil)
			h.drop("uid-1")
		}},
		"an older watch event during the write": {want: "Unknown", queued: 1, steps: func(h *handoffs) {
			h.offer(xrWith("True", true))
			h.drop("uid-1")
			h.written("uid-1", nil)
		}},
		"write failed": {want: "Unknown", queued: 2, steps: func(h *handoffs) {
			h.offer(xrWith("True", true))
			h.written("uid-1", failed)
		}},
		"after a failed write, the next is not handed off": {want: "Unknown", queued: 2, steps: func(h *handoffs) {
			h.offer(xrWith("True", true))
			h.written("uid-1", failed)
			h.offer(xrWith("True", true))
		}},
		"after a write went through again, it is": {want: "False", queued: 3, steps: func(h *handoffs) {
			h.offer(xrWith("True", true))
			h.written("uid-1", failed)
			h.offer(xrWith("True", true))
			h.written("uid-1", nil)
			h.offer(xrWith("False", true))
		}},
		"a failed write that was not handed off": {want: "Unknown", steps: func(h *handoffs) {
			h.written("uid-1", failed)
		}},
		"XR bound to no claim": {want: "Unknown", steps: func(h *handoffs) {
			h.offer(xrWith("True", false))
		}},
		"XR deleted": {want: "Unknown", queued: 1, steps: func(h *handoffs) {
			h.offer(xrWith("True", true))
			h.forget("uid-1")
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHandoffs()
			ch := h.wake(gvk)
			tc.steps(h)
			got := h.latest(xrWith("Unknown", true))
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			if s := conds[0].(map[string]any)["status"]; s != tc.want {
				t.Errorf("claim controller reads Ready %v, want %s", s, tc.want)
			}
			queued := 0
			for len(ch) > 0 {
				e := <-ch
				queued++
				if e.Object.GetNamespace() != "team" || e.Object.GetName() != "shop" {
					t.Errorf("queued %s/%s, want team/shop", e.Object.GetNamespace(), e.Object.GetName())
				}
			}
			if queued != tc.queued {
				t.Errorf("claim queued %d times by a hand-off, want %d", queued, tc.queued)
			}
		})
	}
}

// TestHandoffWhenBehind: when the claim controller's wake-up channel is
// full, nothing is kept: the XR's watch event queues the claim, and the
// claim controller reads its cache.
func TestHandoffWhenBehind(t *testing.T) {
	gvk := schema.GroupVersionKind{Group: "example.org", Version: "v1", Kind: "XApp"}
	h := newHandoffs()
	ch := h.wake(gvk)
	for len(ch) < cap(ch) {
		ch <- event.GenericEvent{Object: &unstructured.Unstructured{}}
	}
	xr := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"claimRef": map[string]any{"namespace": "team", "name": "shop"}}}}
	xr.SetGroupVersionKind(gvk)
	xr.SetUID("uid-1")
	xr.SetResourceVersion("2")
	h.offer(xr)
	cached := xr.DeepCopy()
	cached.SetResourceVersion("1")
	if got := h.latest(cached).GetResourceVersion(); got != "1" {
		t.Errorf("claim controller reads resourceVersion %s, want the cache's 1", got)
	}
}

// TestHandoffQueuesFirst: the claim a hand-off wakes is reconciled before
// claims queued earlier for anything else.
func TestHandoffQueuesFirst(t *testing.T) {
	ctx := context.Background()
	q := priorityqueue.New[reconcile.Request]("test")
	defer q.ShutDown()
	q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team", Name: "other"}})
	var hd handler.EventHandler = enqueueFirst
	c := &unstructured.Unstructured{}
	c.SetNamespace("team")
	c.SetName("shop")
	hd.Generic(ctx, event.GenericEvent{Object: c}, q)
	for _, want := range []string{"shop", "other"} {
		got, _ := q.Get()
		if got.Name != want {
			t.Fatalf("handed out claim %q, want %q next", got.Name, want)
		}
		q.Done(got)
	}
}
