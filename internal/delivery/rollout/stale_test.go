package rollout

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	analysiscontroller "github.com/strata-dev/strata/internal/delivery/controller"
	"github.com/strata-dev/strata/internal/kit/patch"
	"github.com/strata-dev/strata/internal/kit/tenant"
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

// laggingCache is the Rollout controller's client whose reads of Rollouts
// return old, when set: a cache that has not yet seen the controller's own
// last status write.
type laggingCache struct {
	client.Client
	old atomic.Pointer[deliveryv1.Rollout]
}

func (c *laggingCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if ro, ok := obj.(*deliveryv1.Rollout); ok {
		if old := c.old.Load(); old != nil {
			old.DeepCopyInto(ro)
			return nil
		}
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// TestStaleRolloutDoesNotUndoAbort: after a Rollout aborted its canary
// (failed analysis; canary ReplicaSet at zero), a reconcile that starts
// from a cache still holding the Rollout at its first step, before the
// abort was written, leaves the canary at zero instead of scaling it back
// to the step's replicas. The test drives the Rollout controller's
// reconciles itself, so the stale read comes exactly then.
func TestStaleRolloutDoesNotUndoAbort(t *testing.T) {
	ns := namespace(t)
	var r *Reconciler
	cache := &laggingCache{Client: env.Client}
	managedtest.StartManager(t, env.Config, func(mgr ctrl.Manager) error {
		r = &Reconciler{client: cache, recorder: mgr.GetEventRecorder("strata-rollout"), log: mgr.GetLogger(),
			memory: patch.NewMemory(), now: time.Now, clients: tenant.NewClients(mgr.GetConfig(), mgr.GetScheme(), mgr.GetRESTMapper())}
		return analysiscontroller.Setup(mgr, analysiscontroller.Options{Workers: 2})
	})
	verdict := newVerdictServer(t, false)
	ro := canaryRollout(ns, "api", "api", weight(40),
		deliveryv1.CanaryStep{Analysis: &deliveryv1.RolloutAnalysis{Templates: []deliveryv1.TemplateRef{{Name: "healthy"}}, Args: canaryHashArg}},
		weight(100))
	create(t, deployment(ns, "api", 4, "api:1"), service(ns, "api", map[string]string{"app": "api"}), verdict.template(ns, "healthy"), ro)
	drive := func(what string, done func(*deliveryv1.Rollout) error) {
		t.Helper()
		waitFor(t, "rollout "+ro.Name+": "+what, func() error {
			// Errors (a conflict with the ReplicaSet controller) are
			// retried here as the workqueue would.
			_, _ = r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ro)})
			if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ro), ro); err != nil {
				return err
			}
			return done(ro)
		})
	}
	drive("healthy", healthy)

	setImage(t, ns, "api", "api:bad")
	drive("canary at step 0", func(ro *deliveryv1.Rollout) error {
		if ro.Status.CanaryRevision == nil || ptr.Deref(ro.Status.CurrentStep, -1) != 0 {
			return fmt.Errorf("canary %+v at step %d", ro.Status.CanaryRevision, ptr.Deref(ro.Status.CurrentStep, -1))
		}
		return nil
	})
	atFirstStep := ro.DeepCopy()
	drive("aborted", phaseIs(deliveryv1.RolloutPhaseAborted))
	canary := &appsv1.ReplicaSet{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "api-" + ro.Status.Aborted.Revision.PodTemplateHash}, canary); err != nil {
		t.Fatal(err)
	}
	if n := ptr.Deref(canary.Spec.Replicas, -1); n != 0 {
		t.Fatalf("aborted canary at %d replicas", n)
	}

	cache.old.Store(atFirstStep)
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ro)}); err != nil {
		t.Logf("reconcile from the stale Rollout: %v", err)
	}
	get(t, canary)
	if n := ptr.Deref(canary.Spec.Replicas, -1); n != 0 {
		t.Errorf("a reconcile from the Rollout as it was at step 0 scaled the aborted canary to %d replicas", n)
	}
	get(t, ro)
	if ro.Status.Phase != deliveryv1.RolloutPhaseAborted || ro.Status.Aborted == nil {
		t.Errorf("phase %s aborted %+v after the stale reconcile; want it still aborted", ro.Status.Phase, ro.Status.Aborted)
	}
}
