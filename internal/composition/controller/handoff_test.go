package controller

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TestHandoff: an XR whose status write changed its readiness reaches its
// claim controller before its watch event does, and never after: once any
// watch event of the XR has arrived (before or after the write's answer)
// the claim controller reads the cache again.
func TestHandoff(t *testing.T) {
	gvk := schema.GroupVersionKind{Group: "example.org", Version: "v1", Kind: "XApp"}
	xrAt := func(rv string, claimed bool) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetGroupVersionKind(gvk)
		u.SetName("shop-1a2b3")
		u.SetUID(types.UID("uid-1"))
		u.SetResourceVersion(rv)
		if claimed {
			u.Object["spec"] = map[string]any{"claimRef": map[string]any{"namespace": "team", "name": "shop"}}
		}
		return u
	}
	cases := map[string]struct {
		steps func(h *handoffs) // between the write being sent and the claim's reconcile
		// want is the resourceVersion the claim controller reads; queued
		// says whether the claim was queued by the hand-off.
		want   string
		queued bool
	}{
		"answer before the watch event": {want: "2", queued: true, steps: func(h *handoffs) {
			h.end("uid-1", xrAt("2", true))
		}},
		"watch event before the answer": {want: "1", steps: func(h *handoffs) {
			h.seen("uid-1")
			h.end("uid-1", xrAt("2", true))
		}},
		"watch event after the answer": {want: "1", queued: true, steps: func(h *handoffs) {
			h.end("uid-1", xrAt("2", true))
			h.seen("uid-1")
		}},
		"write failed": {want: "1", steps: func(h *handoffs) {
			h.end("uid-1", nil)
		}},
		"XR bound to no claim": {want: "1", steps: func(h *handoffs) {
			h.end("uid-1", xrAt("2", false))
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHandoffs()
			ch := h.wake(gvk)
			h.begin("uid-1")
			tc.steps(h)
			// The cache still holds the XR as read before the write
			// (resourceVersion 1) unless an event arrived, which the
			// claim controller then reads: version 1 stands for "the
			// cache" either way.
			if got := h.latest(xrAt("1", true)).GetResourceVersion(); got != tc.want {
				t.Errorf("claim controller reads resourceVersion %s, want %s", got, tc.want)
			}
			select {
			case e := <-ch:
				if !tc.queued {
					t.Errorf("claim %s/%s queued by the hand-off, want not", e.Object.GetNamespace(), e.Object.GetName())
				}
				if e.Object.GetNamespace() != "team" || e.Object.GetName() != "shop" {
					t.Errorf("queued %s/%s, want team/shop", e.Object.GetNamespace(), e.Object.GetName())
				}
			default:
				if tc.queued {
					t.Error("claim not queued by the hand-off")
				}
			}
		})
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
