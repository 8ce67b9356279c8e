package controller

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// The hand-off of a composite resource's readiness to its claim.
//
// A claim learns that its XR became Ready (or Stalled, or no longer Ready)
// from the XR's watch event, which on a busy API server arrives up to 0.3 s
// after the XR's status write returned (docs/benchmarks.md, seventh
// session), and only then starts the claim's one status write. So when the
// composite controller's write changes an XR's readiness, it hands the XR
// as the API server answered it to the claim controller and queues the
// claim at once, with ReadinessPriority. The claim's reconcile reads the XR
// from the cache as ever, and takes the handed-off XR instead only while no
// watch event of that XR has arrived since the write was sent: then the
// cache is older than the hand-off. The XR's next watch event drops the
// hand-off (before it queues the claim), so the claim controller never reads
// an XR older than its cache. The claim is still written by the claim
// controller alone, one reconcile at a time: no write is added.

// handoffs holds the XRs whose status the composite controller wrote and
// whose watch event has not arrived yet, by UID.
type handoffs struct {
	mu sync.Mutex
	// pending counts, per XR with a write in flight, the watch events seen
	// since the write was sent.
	pending map[types.UID]int
	xrs     map[types.UID]*unstructured.Unstructured
	// claims wakes the claim controller of each XR kind.
	claims map[schema.GroupVersionKind]chan event.GenericEvent
}

func newHandoffs() *handoffs {
	return &handoffs{pending: map[types.UID]int{}, xrs: map[types.UID]*unstructured.Unstructured{},
		claims: map[schema.GroupVersionKind]chan event.GenericEvent{}}
}

// begin is called before a status write of the XR with uid.
func (h *handoffs) begin(uid types.UID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending[uid] = 0
}

// end is called after that write: xr is the API server's answer, nil when
// the write failed. The XR is kept, and its claim queued, only when no watch
// event of it arrived in between: an event that did carried this write or a
// later one, and the cache has it.
func (h *handoffs) end(uid types.UID, xr *unstructured.Unstructured) {
	h.mu.Lock()
	seen, ok := h.pending[uid]
	delete(h.pending, uid)
	if !ok || seen > 0 || xr == nil {
		h.mu.Unlock()
		return
	}
	// Only an XR bound to a claim, of a kind with a claim controller (whose
	// XR events drop what is kept here), is kept.
	ch := h.claims[xr.GroupVersionKind()]
	ref, _, _ := unstructured.NestedStringMap(xr.Object, "spec", "claimRef")
	if ch == nil || ref["name"] == "" {
		h.mu.Unlock()
		return
	}
	h.xrs[uid] = xr.DeepCopy()
	h.mu.Unlock()
	c := &unstructured.Unstructured{}
	c.SetNamespace(ref["namespace"])
	c.SetName(ref["name"])
	select {
	case ch <- event.GenericEvent{Object: c}:
	default:
		// The claim controller is behind: the watch event queues the claim.
	}
}

// seen drops what is kept of the XR with uid: its watch event arrived.
func (h *handoffs) seen(uid types.UID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.pending[uid]; ok {
		h.pending[uid]++
	}
	delete(h.xrs, uid)
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

// forgetting wraps the claim controller's handler of XR events: every event
// first drops the XR's hand-off.
func (h *handoffs) forgetting(next handler.EventHandler) handler.EventHandler {
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			h.seen(e.Object.GetUID())
			next.Create(ctx, e, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			h.seen(e.ObjectNew.GetUID())
			next.Update(ctx, e, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			h.seen(e.Object.GetUID())
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
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(ReadinessPriority)}, r)
			return
		}
		q.Add(r)
	},
}
