package rollout

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
)

// wantPods waits until the Ready pods and the Service's ready endpoints are
// exactly want (by image).
func wantPods(t *testing.T, ns, app string, want map[string]int) {
	t.Helper()
	waitFor(t, "pods and endpoints "+counts(want), func() error {
		pods := readyPods(t, ns, map[string]string{"app": app})
		if counts(pods.byImage) != counts(want) {
			return fmt.Errorf("ready pods %s", counts(pods.byImage))
		}
		if eps := endpointsByImage(t, ns, app); counts(eps) != counts(want) {
			return fmt.Errorf("endpoints %s", counts(eps))
		}
		return nil
	})
}

// TestCanaryPromotes rolls a new image out in steps: 20% → pause →
// analysis → 60% → pause → promotion. At each step the canary's Ready
// pods and the Service's endpoints are counted; the stable pods stay at
// spec.replicas throughout. A scale of the Deployment through its scale
// subresource (what an HPA does) mid-rollout resizes both versions, the
// HPA still targets the Deployment afterwards, and the Deployment keeps its
// name and labels and is paused again, owning the new ReplicaSet.
func TestCanaryPromotes(t *testing.T) {
	startManager(t)
	ctx := context.Background()
	ns := namespace(t)
	verdict := newVerdictServer(t, true)
	ro := canaryRollout(ns, "web", "web", weight(20), pause(),
		deliveryv1.CanaryStep{Analysis: &deliveryv1.RolloutAnalysis{Templates: []deliveryv1.TemplateRef{{Name: "healthy"}}, Args: canaryHashArg}},
		weight(60), pause())
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr.To[int32](5), MaxReplicas: 20,
		},
	}
	create(t, deployment(ns, "web", 5, "web:1"), service(ns, "web", map[string]string{"app": "web"}), verdict.template(ns, "healthy"), hpa, ro)
	waitRollout(t, ro, "healthy on web:1", healthy)
	wantPods(t, ns, "web", map[string]int{"web:1": 5})
	stable := ro.Status.StableRevision.PodTemplateHash
	dep := &appsv1.Deployment{}
	dep.Namespace, dep.Name = ns, "web"
	get(t, dep)
	if !dep.Spec.Paused || dep.Annotations[deliveryv1.RolloutAnnotation] != "web" {
		t.Fatalf("Deployment paused=%v annotations %v; want paused and annotated", dep.Spec.Paused, dep.Annotations)
	}

	setImage(t, ns, "web", "web:2")
	waitRollout(t, ro, "paused at step 1", atStep(1))
	wantPods(t, ns, "web", map[string]int{"web:1": 5, "web:2": 1})
	if ro.Status.Weight != 20 || ro.Status.CanaryRevision == nil || ro.Status.CanaryRevision.PodTemplateHash == stable {
		t.Fatalf("weight %d canary %+v", ro.Status.Weight, ro.Status.CanaryRevision)
	}
	if !conditions.IsTrue(ro, deliveryv1.ConditionPaused) || conditions.IsTrue(ro, conditions.Ready) {
		t.Errorf("conditions %+v; want Paused=True, Ready=False", ro.Status.Conditions)
	}
	canary := ro.Status.CanaryRevision.PodTemplateHash
	rs := &appsv1.ReplicaSet{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-" + canary}, rs); err != nil {
		t.Fatal(err)
	}
	if !metav1.IsControlledBy(rs, ro) {
		t.Errorf("canary ReplicaSet owners %v; want the Rollout", rs.OwnerReferences)
	}

	// What the HPA does: scale the Deployment through its scale
	// subresource. The stable pods follow (the Deployment controller
	// scales a paused Deployment), and the canary stays at 20%.
	scale := &autoscalingv1.Scale{}
	if err := env.Client.SubResource("scale").Get(ctx, dep, scale); err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 10
	if err := env.Client.SubResource("scale").Update(ctx, dep, client.WithSubResourceBody(scale)); err != nil {
		t.Fatal(err)
	}
	wantPods(t, ns, "web", map[string]int{"web:1": 10, "web:2": 2})

	annotate(t, ro, deliveryv1.PromoteAnnotation)
	// The analysis passes at once; the canary goes to 60%.
	waitRollout(t, ro, "paused at step 4", atStep(4))
	wantPods(t, ns, "web", map[string]int{"web:1": 10, "web:2": 6})
	if ro.Status.Weight != 60 || len(ro.Status.AnalysisRuns) != 1 || ro.Status.AnalysisRuns[0].Phase != deliveryv1.PhaseSuccessful {
		t.Fatalf("weight %d analysis runs %+v", ro.Status.Weight, ro.Status.AnalysisRuns)
	}

	annotate(t, ro, deliveryv1.PromoteAnnotation)
	waitRollout(t, ro, "healthy on web:2", func(ro *deliveryv1.Rollout) error {
		if err := healthy(ro); err != nil {
			return err
		}
		if ro.Status.StableRevision.PodTemplateHash != canary {
			return fmt.Errorf("stable %s, want %s", ro.Status.StableRevision.PodTemplateHash, canary)
		}
		return nil
	})
	wantPods(t, ns, "web", map[string]int{"web:2": 10})
	get(t, dep)
	get(t, rs)
	if !dep.Spec.Paused || dep.Labels["app"] != "web" || !metav1.IsControlledBy(rs, dep) {
		t.Errorf("after promotion: Deployment paused=%v labels %v; ReplicaSet owners %v", dep.Spec.Paused, dep.Labels, rs.OwnerReferences)
	}
	get(t, hpa)
	if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != "web" {
		t.Errorf("HPA targets %+v", hpa.Spec.ScaleTargetRef)
	}
	waitFor(t, "an event per step", func() error {
		evs := stepEvents(t, ro)
		for _, want := range []string{
			deliveryv1.EventNewRevision + ": rolling out revision " + canary,
			deliveryv1.EventStepCompleted + ": step 0 (setWeight 20) completed",
			deliveryv1.EventStepCompleted + ": step 2 (analysis) completed",
			deliveryv1.EventStepStarted + ": step 3 (setWeight 60) started",
			deliveryv1.EventPromoted + ": revision " + canary + " promoted",
		} {
			if !strings.Contains(evs, want) {
				return fmt.Errorf("no event %q in:\n%s", want, evs)
			}
		}
		return nil
	})
}

// TestCanaryAbortsOnFailedAnalysis: a canary whose analysis fails is
// aborted at once: its ReplicaSet is kept at zero, every pod and endpoint
// is stable, status.aborted names both revisions and the failed run, and
// the next commit rolls out by itself without a retry.
func TestCanaryAbortsOnFailedAnalysis(t *testing.T) {
	startManager(t)
	ns := namespace(t)
	verdict := newVerdictServer(t, false)
	ro := canaryRollout(ns, "api", "api", weight(40),
		deliveryv1.CanaryStep{Analysis: &deliveryv1.RolloutAnalysis{Templates: []deliveryv1.TemplateRef{{Name: "healthy"}}, Args: canaryHashArg}},
		weight(100))
	create(t, deployment(ns, "api", 4, "api:1"), service(ns, "api", map[string]string{"app": "api"}), verdict.template(ns, "healthy"), ro)
	waitRollout(t, ro, "healthy", healthy)
	stable := ro.Status.StableRevision.PodTemplateHash

	setImage(t, ns, "api", "api:bad")
	waitRollout(t, ro, "aborted", phaseIs(deliveryv1.RolloutPhaseAborted))
	a := ro.Status.Aborted
	if a == nil || a.Reason != deliveryv1.ReasonAnalysisFailed || a.Stable.PodTemplateHash != stable || a.Revision.PodTemplateHash == stable {
		t.Fatalf("aborted %+v", a)
	}
	ready := conditions.Get(ro, conditions.Ready)
	if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != deliveryv1.ReasonRolloutAborted ||
		!strings.Contains(ready.Message, a.Revision.PodTemplateHash) || !strings.Contains(ready.Message, stable) || !strings.Contains(ready.Message, "AnalysisRun") {
		t.Errorf("Ready %+v; want False/RolloutAborted naming both revisions and the run", ready)
	}
	if !conditions.IsTrue(ro, conditions.Stalled) || ro.Status.Weight != 0 {
		t.Errorf("Stalled %v weight %d", conditions.IsTrue(ro, conditions.Stalled), ro.Status.Weight)
	}
	wantPods(t, ns, "api", map[string]int{"api:1": 4})
	rs := &appsv1.ReplicaSet{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "api-" + a.Revision.PodTemplateHash}, rs); err != nil {
		t.Fatalf("the aborted canary's ReplicaSet should be kept: %v", err)
	}
	if *rs.Spec.Replicas != 0 {
		t.Errorf("aborted canary at %d replicas", *rs.Spec.Replicas)
	}

	// The next commit starts a fresh rollout with no retry.
	verdict.pass.Store(true)
	setImage(t, ns, "api", "api:3")
	waitRollout(t, ro, "healthy on api:3", func(ro *deliveryv1.Rollout) error {
		if err := healthy(ro); err != nil {
			return err
		}
		if ro.Status.Aborted != nil || ro.Status.StableRevision.PodTemplateHash == stable {
			return fmt.Errorf("aborted %+v stable %s", ro.Status.Aborted, ro.Status.StableRevision.PodTemplateHash)
		}
		return nil
	})
	wantPods(t, ns, "api", map[string]int{"api:3": 4})
}

// TestAbortAndRetryRequests: the abort annotation (strata rollout abort)
// takes everything back to stable; the retry annotation starts the same
// revision again from the first step; promote-full skips every step.
func TestAbortAndRetryRequests(t *testing.T) {
	startManager(t)
	ns := namespace(t)
	ro := canaryRollout(ns, "shop", "shop", weight(50), pause(), weight(75), pause())
	create(t, deployment(ns, "shop", 2, "shop:1"), service(ns, "shop", map[string]string{"app": "shop"}), ro)
	waitRollout(t, ro, "healthy", healthy)
	setImage(t, ns, "shop", "shop:2")
	waitRollout(t, ro, "paused at step 1", atStep(1))
	wantPods(t, ns, "shop", map[string]int{"shop:1": 2, "shop:2": 1})

	annotate(t, ro, deliveryv1.AbortAnnotation)
	waitRollout(t, ro, "aborted", phaseIs(deliveryv1.RolloutPhaseAborted))
	if ro.Status.Aborted.Reason != deliveryv1.ReasonAbortRequested {
		t.Errorf("aborted %+v", ro.Status.Aborted)
	}
	wantPods(t, ns, "shop", map[string]int{"shop:1": 2})

	annotate(t, ro, deliveryv1.RetryAnnotation)
	waitRollout(t, ro, "paused at step 1 again", atStep(1))
	if ro.Status.Attempt != 1 || ro.Status.Aborted != nil {
		t.Errorf("attempt %d aborted %+v", ro.Status.Attempt, ro.Status.Aborted)
	}
	wantPods(t, ns, "shop", map[string]int{"shop:1": 2, "shop:2": 1})

	annotate(t, ro, deliveryv1.PromoteFullAnnotation)
	waitRollout(t, ro, "healthy on shop:2", healthy)
	wantPods(t, ns, "shop", map[string]int{"shop:2": 2})
}

// TestProgressDeadline: a canary whose pods never become Ready (kwok keeps
// pods Pending on a node selector no node has) is aborted after the
// progress deadline, everything on stable.
func TestProgressDeadline(t *testing.T) {
	startManager(t)
	ns := namespace(t)
	ro := canaryRollout(ns, "slow", "slow", weight(50), pause())
	ro.Spec.ProgressDeadline = &metav1.Duration{Duration: 3e9}
	create(t, deployment(ns, "slow", 2, "slow:1"), service(ns, "slow", map[string]string{"app": "slow"}), ro)
	waitRollout(t, ro, "healthy", healthy)
	d := &appsv1.Deployment{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "slow"}, d); err != nil {
		t.Fatal(err)
	}
	base := d.DeepCopy()
	d.Spec.Template.Spec.NodeSelector = map[string]string{"no-such-node": "x"}
	if err := env.Client.Patch(context.Background(), d, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	waitRollout(t, ro, "aborted", phaseIs(deliveryv1.RolloutPhaseAborted))
	if ro.Status.Aborted.Reason != deliveryv1.ReasonProgressDeadlineExceeded || !strings.Contains(ro.Status.Aborted.Message, "0 of 1 pods") {
		t.Errorf("aborted %+v", ro.Status.Aborted)
	}
	wantPods(t, ns, "slow", map[string]int{"slow:1": 2})
}

// TestRollForward: a commit arriving while a canary is in progress
// supersedes it: the older canary's pods go away (its ReplicaSet, which
// the Rollout created, is deleted) and the new revision starts from the
// first step; the stable pods are untouched throughout.
func TestRollForward(t *testing.T) {
	startManager(t)
	ns := namespace(t)
	ro := canaryRollout(ns, "cart", "cart", weight(50), pause())
	create(t, deployment(ns, "cart", 2, "cart:1"), service(ns, "cart", map[string]string{"app": "cart"}), ro)
	waitRollout(t, ro, "healthy", healthy)
	setImage(t, ns, "cart", "cart:2")
	waitRollout(t, ro, "paused at step 1", atStep(1))
	first := ro.Status.CanaryRevision.PodTemplateHash
	wantPods(t, ns, "cart", map[string]int{"cart:1": 2, "cart:2": 1})

	setImage(t, ns, "cart", "cart:3")
	waitRollout(t, ro, "paused at step 1 with the newer revision", func(ro *deliveryv1.Rollout) error {
		if err := atStep(1)(ro); err != nil {
			return err
		}
		if ro.Status.CanaryRevision.PodTemplateHash == first {
			return fmt.Errorf("still at the older canary %s", first)
		}
		return nil
	})
	wantPods(t, ns, "cart", map[string]int{"cart:1": 2, "cart:3": 1})
	waitFor(t, "the superseded canary's ReplicaSet deleted", func() error {
		rs := &appsv1.ReplicaSet{}
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "cart-" + first}, rs)
		if err == nil {
			return fmt.Errorf("ReplicaSet %s still there with %d replicas", rs.Name, *rs.Spec.Replicas)
		}
		return client.IgnoreNotFound(err)
	})
}

// TestDeleteGivesTheDeploymentBack: deleting a Rollout unpauses its
// Deployment and removes the Rollout's annotation; the Deployment's own
// fields stay what they were, and the next template change rolls out as a
// plain Deployment.
func TestDeleteGivesTheDeploymentBack(t *testing.T) {
	startManager(t)
	ctx := context.Background()
	ns := namespace(t)
	ro := canaryRollout(ns, "blog", "blog", weight(50), pause())
	create(t, deployment(ns, "blog", 2, "blog:1"), service(ns, "blog", map[string]string{"app": "blog"}), ro)
	waitRollout(t, ro, "healthy", healthy)
	if err := env.Client.Delete(ctx, ro); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Deployment given back", func() error {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "blog"}, d); err != nil {
			return err
		}
		if d.Spec.Paused || d.Annotations[deliveryv1.RolloutAnnotation] != "" {
			return fmt.Errorf("paused=%v annotations %v", d.Spec.Paused, d.Annotations)
		}
		if d.Labels["app"] != "blog" || *d.Spec.Replicas != 2 {
			return fmt.Errorf("labels %v replicas %d changed", d.Labels, *d.Spec.Replicas)
		}
		return nil
	})
	setImage(t, ns, "blog", "blog:2")
	wantPods(t, ns, "blog", map[string]int{"blog:2": 2})
}

// stepEvents lists the reasons and notes of the Rollout's events.
func stepEvents(t *testing.T, ro *deliveryv1.Rollout) string {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := env.Client.List(context.Background(), list, client.InNamespace(ro.Namespace)); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range list.Items {
		if e.Regarding.Kind == "Rollout" && e.Regarding.Name == ro.Name {
			fmt.Fprintf(&b, "%s: %s\n", e.Reason, e.Note)
		}
	}
	return b.String()
}
