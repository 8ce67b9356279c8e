package controller

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// xrFor is a claim's composite resource with the given conditions
// (type=status pairs) and Ready message.
func xrFor(claim, rv, msg string, conds ...string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetName(claim + "-xr")
	u.SetResourceVersion(rv)
	u.SetLabels(map[string]string{"strata.dev/claim-name": claim, "strata.dev/claim-namespace": "team"})
	var cs []any
	for i := 0; i+1 < len(conds); i += 2 {
		cs = append(cs, map[string]any{"type": conds[i], "status": conds[i+1], "reason": "R", "message": msg})
	}
	if cs != nil {
		u.Object["status"] = map[string]any{"conditions": cs}
	}
	return u
}

// TestReadinessFirst: a claim whose composite resource just became Ready
// (or Stalled, or no longer Ready) is reconciled before claims queued
// earlier for anything else; other changes keep their place in line.
func TestReadinessFirst(t *testing.T) {
	cases := map[string]struct {
		old, new *unstructured.Unstructured
		first    bool // the update's claim is handed out before the one queued earlier
	}{
		"became Ready":       {old: xrFor("b", "1", "waiting", "Ready", "False"), new: xrFor("b", "2", "ready", "Ready", "True"), first: true},
		"first conditions":   {old: xrFor("b", "1", ""), new: xrFor("b", "2", "waiting", "Ready", "False"), first: true},
		"stalled":            {old: xrFor("b", "1", "waiting", "Ready", "False"), new: xrFor("b", "2", "failed", "Ready", "False", "Stalled", "True"), first: true},
		"no longer Ready":    {old: xrFor("b", "1", "ready", "Ready", "True"), new: xrFor("b", "2", "waiting", "Ready", "False"), first: true},
		"message only":       {old: xrFor("b", "1", "waiting for a", "Ready", "False"), new: xrFor("b", "2", "waiting for b", "Ready", "False")},
		"unchanged (resync)": {old: xrFor("b", "1", "ready", "Ready", "True"), new: xrFor("b", "1", "ready", "Ready", "True")},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			q := priorityqueue.New[reconcile.Request]("test")
			defer q.ShutDown()
			h := readinessFirst(handler.EnqueueRequestsFromMapFunc(mapXRToClaim), compositeReadinessChanged)
			// Claim a was queued first, for a change that is not its XR's
			// readiness.
			h.Update(ctx, event.UpdateEvent{ObjectOld: xrFor("a", "1", "x", "Ready", "False"), ObjectNew: xrFor("a", "2", "y", "Ready", "False")}, q)
			h.Update(ctx, event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}, q)
			want := []string{"a", "b"}
			if tc.first {
				want = []string{"b", "a"}
			}
			if tc.old.GetResourceVersion() == tc.new.GetResourceVersion() {
				want = []string{"a", "b"} // a resync: the low priority
			}
			for _, w := range want {
				got, _ := q.Get()
				if got != (reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team", Name: w}}) {
					t.Fatalf("handed out %s, want claim %s next (order %v)", got, w, want)
				}
				q.Done(got)
			}
		})
	}
}

// deployment is a Deployment of one replica, Available or not.
func deployment(available bool, rv string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "team", "generation": int64(1), "resourceVersion": rv},
		"spec":     map[string]any{"replicas": int64(1)},
	}}
	st := map[string]any{"observedGeneration": int64(1), "replicas": int64(1), "updatedReplicas": int64(1)}
	if available {
		st["readyReplicas"], st["availableReplicas"] = int64(1), int64(1)
		st["conditions"] = []any{map[string]any{"type": "Available", "status": "True"}}
	}
	u.Object["status"] = st
	return u
}

func TestHealthChanged(t *testing.T) {
	cases := map[string]struct {
		old, new *unstructured.Unstructured
		want     bool
	}{
		"became Available":    {old: deployment(false, "1"), new: deployment(true, "2"), want: true},
		"no longer Available": {old: deployment(true, "1"), new: deployment(false, "2"), want: true},
		"still rolling out":   {old: deployment(false, "1"), new: deployment(false, "2")},
		"still Available":     {old: deployment(true, "1"), new: deployment(true, "2")},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := healthChanged(tc.old, tc.new); got != tc.want {
				t.Errorf("healthChanged = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestComposedHealthFirst: an XR whose composed resource's health just
// changed is reconciled before XRs queued earlier for anything else, through
// the owner handler the composite controller watches composed kinds with.
func TestComposedHealthFirst(t *testing.T) {
	xrGVK := schema.GroupVersionKind{Group: "example.org", Version: "v1", Kind: "XApp"}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(xrGVK, meta.RESTScopeRoot)
	owner := &unstructured.Unstructured{}
	owner.SetGroupVersionKind(xrGVK)
	ownedBy := func(u *unstructured.Unstructured, xr string) *unstructured.Unstructured {
		u.SetName("web-" + xr)
		u.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "example.org/v1", Kind: "XApp", Name: xr, UID: types.UID(xr), Controller: ptr.To(true)}})
		return u
	}
	ctx := context.Background()
	q := priorityqueue.New[reconcile.Request]("test")
	defer q.ShutDown()
	h := readinessFirst(handler.EnqueueRequestForOwner(runtime.NewScheme(), mapper, owner, handler.OnlyControllerOwner()), healthChanged)
	// XR a's Deployment changed first, but is still rolling out; then XR
	// b's became Available.
	h.Update(ctx, event.UpdateEvent{ObjectOld: ownedBy(deployment(false, "1"), "a"), ObjectNew: ownedBy(deployment(false, "2"), "a")}, q)
	h.Update(ctx, event.UpdateEvent{ObjectOld: ownedBy(deployment(false, "1"), "b"), ObjectNew: ownedBy(deployment(true, "2"), "b")}, q)
	for _, want := range []string{"b", "a"} {
		got, _ := q.Get()
		if got.Name != want {
			t.Fatalf("handed out XR %q, want %q next", got.Name, want)
		}
		q.Done(got)
	}
}
