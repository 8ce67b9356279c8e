package rollout

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/testenv/managedtest"
)

// touchFirst is a tenant client whose first scale of a ReplicaSet to
// replicas finds the ReplicaSet changed since it was read: another writer
// (in a cluster, the ReplicaSet controller writing its status) gets there
// first, so the Rollout's optimistically locked patch is refused.
type touchFirst struct {
	client.Client
	ns       string
	replicas int32
	done     *atomic.Bool
	t        *testing.T
}

func (c touchFirst) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
	if rs, ok := obj.(*appsv1.ReplicaSet); ok && rs.Namespace == c.ns && ptr.Deref(rs.Spec.Replicas, 0) == c.replicas && c.done.CompareAndSwap(false, true) {
		cur := &appsv1.ReplicaSet{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(rs), cur); err != nil {
			c.t.Errorf("read ReplicaSet %s: %v", rs.Name, err)
		}
		base := cur.DeepCopy()
		if cur.Annotations == nil {
			cur.Annotations = map[string]string{}
		}
		cur.Annotations["test.strata.dev/touched"] = "true"
		if err := env.Client.Patch(ctx, cur, client.MergeFrom(base)); err != nil {
			c.t.Errorf("touch ReplicaSet %s: %v", rs.Name, err)
		}
	}
	return c.Client.Patch(ctx, obj, p, opts...)
}

// TestStaleReadIsRetriedNotReported: the canary ReplicaSet changes between
// the Rollout's read and its scale to the next step's replicas, so the
// scale is refused with a Conflict. The Rollout starts again from a fresh
// read: no status write says the next step started while its replicas
// were not set, and the conflict is never reported as a failure.
func TestStaleReadIsRetriedNotReported(t *testing.T) {
	ns := namespace(t)
	var touched atomic.Bool
	managedtest.StartManager(t, env.Config, func(mgr ctrl.Manager) error {
		return Setup(mgr, Options{Workers: 2, wrapTenant: func(c client.Client) client.Client {
			return touchFirst{Client: c, ns: ns, replicas: 6, done: &touched, t: t}
		}})
	})
	ro := canaryRollout(ns, "web", "web", weight(20), weight(60), pause())
	create(t, deployment(ns, "web", 10, "web:1"), service(ns, "web", map[string]string{"app": "web"}), ro)
	waitRollout(t, ro, "healthy on web:1", healthy)

	// Every status write of the Rollout, as a watch delivers it.
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(context.Background(), &deliveryv1.RolloutList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var writes []deliveryv1.RolloutStatus
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if got, ok := ev.Object.(*deliveryv1.Rollout); ok {
				mu.Lock()
				writes = append(writes, *got.Status.DeepCopy())
				mu.Unlock()
			}
		}
	}()

	setImage(t, ns, "web", "web:2")
	waitRollout(t, ro, "paused at step 2", atStep(2))
	w.Stop()
	<-done
	if !touched.Load() {
		t.Fatal("the scale to 6 replicas was never made: the test did not stand a writer in its way")
	}
	if ro.Status.CanaryReplicas != 6 || ro.Status.Weight != 60 {
		t.Errorf("paused with %d canary replicas at weight %d, want 6 at 60", ro.Status.CanaryReplicas, ro.Status.Weight)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, st := range writes {
		if st.CanaryRevision == nil {
			continue
		}
		step := ptr.Deref(st.CurrentStep, -1)
		if step >= 1 && st.CanaryReplicas != 6 {
			t.Errorf("a status write at step %d with %d canary replicas, want 6 (the step's) in every write from step 1", step, st.CanaryReplicas)
		}
		for _, c := range st.Conditions {
			if c.Reason == conditions.ReasonReconcileError {
				t.Errorf("condition %s=%s %s: %s; a stale read is retried, not reported", c.Type, c.Status, c.Reason, c.Message)
			}
		}
	}
}
