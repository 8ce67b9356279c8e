package controller

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/health"
)

// ReadinessPriority is the work queue priority of an object whose
// dependency's readiness just changed: a claim whose composite resource
// became Ready (or Stalled, or no longer Ready), a composite resource whose
// composed resource did. What such an object has left to do is one status
// write, but without priority it waits behind every object queued before it:
// while a burst of new claims is being bound and composed, for many seconds,
// so the user who waits for Ready waits for everyone else's work. Other
// events keep the default priority (0), the initial list's the low one.
const ReadinessPriority = 10

// readinessFirst wraps a controller's handler of the objects it depends
// on: an update for which changed reports true enqueues what next would
// enqueue, with ReadinessPriority; every other event goes through next
// unchanged. Without controller-runtime's priority queue it changes nothing.
func readinessFirst(next handler.EventHandler, changed func(oldObj, newObj client.Object) bool) handler.EventHandler {
	return handler.Funcs{
		CreateFunc:  next.Create,
		DeleteFunc:  next.Delete,
		GenericFunc: next.Generic,
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok && changed(e.ObjectOld, e.ObjectNew) {
				q = withPriority{PriorityQueue: pq, priority: ReadinessPriority}
			}
			next.Update(ctx, e, q)
		},
	}
}

// withPriority is a priority queue that adds every item with at least
// priority.
type withPriority struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	priority int
}

func (q withPriority) Add(r reconcile.Request) { q.AddWithOpts(priorityqueue.AddOpts{}, r) }

func (q withPriority) AddWithOpts(o priorityqueue.AddOpts, rs ...reconcile.Request) {
	if o.Priority == nil || *o.Priority < q.priority {
		o.Priority = ptr.To(q.priority)
	}
	q.PriorityQueue.AddWithOpts(o, rs...)
}

// compositeReadinessChanged reports whether the Ready or Stalled condition's
// status differs between two versions of a composite resource (what its
// claim copies).
func compositeReadinessChanged(oldObj, newObj client.Object) bool {
	o, ok1 := oldObj.(*unstructured.Unstructured)
	n, ok2 := newObj.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return false
	}
	oc, nc := readConds(o), readConds(n)
	for _, t := range []string{conditions.Ready, conditions.Stalled} {
		if status(conditions.Get(oc, t)) != status(conditions.Get(nc, t)) {
			return true
		}
	}
	return false
}

// healthChanged reports whether a composed resource's health (kit/health:
// Current, InProgress, Failed...) differs between two versions: what its
// composite's readiness is computed from.
func healthChanged(oldObj, newObj client.Object) bool {
	o, ok1 := oldObj.(*unstructured.Unstructured)
	n, ok2 := newObj.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return false
	}
	return health.Compute(o).Status != health.Compute(n).Status
}

// status is a condition's status, "" when it is absent.
func status(c *metav1.Condition) metav1.ConditionStatus {
	if c == nil {
		return ""
	}
	return c.Status
}
