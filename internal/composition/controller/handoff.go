package controller

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// The hand-off of a composite resource's readiness to its claim.
//
// A claim copies its XR's readiness, and used to learn of a change from the
// XR's watch event: after the XR's status write had gone through a busy API
// server (p99 about 0.5 s) and its event had come back (up to 0.3 s more),
// the claim's own status write started (another 0.5 s). Two status writes
// one after the other were two thirds of a claim's readiness latency
// (docs/benchmarks.md, notes of the seventh session of 2026-12-01).
//
// So when the composite controller is about to write a status that changes
// an XR's readiness, it first hands the XR with that status to the claim
// controller and queues the claim with ReadinessPriority: the two status
// writes go out side by side. The claim's reconcile reads the XR from the
// cache as ever and takes the handed-off XR instead while it is kept:
//   - any watch event of the XR drops it (the event carries that write or
//     a later one, or it is older and the claim waits for the next, as it
//     did before), so the claim controller never reads an XR older than its
//     cache once the write has landed;
//   - a failed write drops it and queues the claim again, which then reads
//     the XR's status as the cache has it; no status of that XR is handed
//     off again until one of its writes has gone through. So a status the
//     API server refuses is shown on a claim for no longer than that one
//     write took.
//
// What the claim shows is what its XR found out about its composed
// resources, a moment before the XR's own status says so. The claim is
// still written by the claim controller alone, one reconcile at a time, and
// the XR's watch event then finds nothing to change: no write is added.
type handoffs struct {
	mu sync.Mutex
	// xrs are the XRs handed off, with the status being written, by UID.
	xrs map[types.UID]*unstructured.Unstructured
	// failed are the XRs whose last status write failed.
	failed map[types.UID]bool
	// claims wakes the claim controller of each XR kind.
	claims map[schema.GroupVersionKind]chan event.GenericEvent
}

func newHandoffs() *handoffs {
	return &handoffs{xrs: map[types.UID]*unstructured.Unstructured{}, failed: map[types.UID]bool{},
		claims: map[schema.GroupVersionKind]chan event.GenericEvent{}}
}

// offer is called just before a status write that changes xr's readiness:
// xr holds the status being written. It hands xr to its claim controller
// unless xr is bound to no claim, its kind has no claim controller, or its
// last status write failed.
func (h *handoffs) offer(xr *unstructured.Unstructured) {
	ref, _, _ := unstructured.NestedStringMap(xr.Object, "spec", "claimRef")
	if ref["name"] == "" || xr.GetUID() == "" {
		return
	}
	h.mu.Lock()
	ch := h.claims[xr.GroupVersionKind()]
	if ch == nil || h.failed[xr.GetUID()] {
		h.mu.Unlock()
		return
	}
	h.xrs[xr.GetUID()] = xr.DeepCopy()
	h.mu.Unlock()
	if !wakeClaim(ch, ref) {
		// The claim controller is behind: the XR's watch event queues
		// the claim, as without a hand-off.
		h.drop(xr.GetUID())
	}
}

// wakeClaim queues the claim ref names with the claim controller that
// listens on ch, unless that controller is behind.
func wakeClaim(ch chan event.GenericEvent, ref map[string]string) bool {
	c := &unstructured.Unstructured{}
	c.SetNamespace(ref["namespace"])
	c.SetName(ref["name"])
	select {
	case ch <- event.GenericEvent{Object: c}:
		return true
	default:
		return false
	}
}

// written is called after every status write of the XR with uid: err is the
// write's error. A failed write takes back what was handed off and queues
// the claim again, to read the XR's status as it is.
func (h *handoffs) written(uid types.UID, err error) {
	h.mu.Lock()
	if err == nil {
		delete(h.failed, uid)
		h.mu.Unlock()
		return
	}
	h.failed[uid] = true
	xr, handed := h.xrs[uid]
	delete(h.xrs, uid)
	var ch chan event.GenericEvent
	if handed {
		ch = h.claims[xr.GroupVersionKind()]
	}
	h.mu.Unlock()
	if ch != nil {
		ref, _, _ := unstructured.NestedStringMap(xr.Object, "spec", "claimRef")
		wakeClaim(ch, ref)
	}
}

// drop forgets what was handed off of the XR with uid: its watch event
// arrived, or the claim controller was not listening.
func (h *handoffs) drop(uid types.UID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.xrs, uid)
}

// forget forgets everything of the XR with uid: it is gone.
func (h *handoffs) forget(uid types.UID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.xrs, uid)
	delete(h.failed, uid)
}

// latest is the handed-off version of cached, or cached.
func (h *handoffs) latest(cached *unstructured.Unstructured) *unstructured.Unstructured {
	if cached.GetUID() == "" {
		return cached
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if xr, ok := h.xrs[cached.GetUID()]; ok {
		return xr.DeepCopy()
	}
	return cached
}

// wake registers the channel that wakes the claim controller of xrGVK.
func (h *handoffs) wake(xrGVK schema.GroupVersionKind) chan event.GenericEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan event.GenericEvent, 1024)
	h.claims[xrGVK] = ch
	return ch
}

// dropping wraps the claim controller's handler of XR events: every event
// first drops the XR's hand-off, a deletion everything kept of it.
func (h *handoffs) dropping(next handler.EventHandler) handler.EventHandler {
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			h.drop(e.Object.GetUID())
			next.Create(ctx, e, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			h.drop(e.ObjectNew.GetUID())
			next.Update(ctx, e, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			h.forget(e.Object.GetUID())
			next.Delete(ctx, e, q)
		},
		GenericFunc: next.Generic,
	}
}

// enqueueFirst queues the object of a generic event with ReadinessPriority.
var enqueueFirst = handler.Funcs{
	GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		r := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(e.Object)}
		if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
			withPriority{PriorityQueue: pq, priority: ReadinessPriority}.Add(r)
			return
		}
		q.Add(r)
	},
}
