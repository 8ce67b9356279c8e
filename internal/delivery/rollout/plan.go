package rollout

import (
	"fmt"
	"math"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

// desiredReplicas is the Deployment's spec.replicas (1 when unset).
func desiredReplicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// percentOf is ceil(pct% of n).
func percentOf(pct, n int32) int32 {
	return int32(math.Ceil(float64(pct) * float64(n) / 100))
}

// scaledValue resolves an int-or-percent against n, rounding up; def is
// used when v is nil or invalid.
func scaledValue(v *intstr.IntOrString, n int32, def int32) int32 {
	if v == nil {
		return def
	}
	x, err := intstr.GetScaledValueFromIntOrPercent(v, int(n), true)
	if err != nil || x < 0 {
		return def
	}
	return int32(x)
}

// stepState is what the steps before (and including) step i say about the
// canary: its traffic weight and its replicas.
type stepState struct {
	Weight   int32
	Replicas int32
	// Capped is true when maxSurge held the replicas below what the step
	// asked.
	Capped bool
}

// canaryState computes the canary's weight and replicas at step i (the
// steps 0..i-1 completed and step i in progress; i == len(steps) means all
// steps done) of a canary for a Deployment of n replicas.
func canaryState(c *deliveryv1.CanaryStrategy, i int32, n int32) stepState {
	var weight int32
	var scale *deliveryv1.SetCanaryScale
	for j := int32(0); j < int32(len(c.Steps)) && j <= i; j++ {
		s := c.Steps[j]
		switch {
		case s.SetWeight != nil:
			weight = *s.SetWeight
		case s.SetCanaryScale != nil:
			scale = s.SetCanaryScale
			if scale.MatchTrafficWeight {
				scale = nil
			}
		}
	}
	replicas := percentOf(weight, n)
	if scale != nil {
		switch {
		case scale.Replicas != nil:
			replicas = *scale.Replicas
		case scale.Weight != nil:
			replicas = percentOf(*scale.Weight, n)
		}
	}
	st := stepState{Weight: weight, Replicas: replicas}
	if max := scaledValue(c.MaxSurge, n, n); st.Replicas > max {
		st.Replicas, st.Capped = max, true
	}
	return st
}

// replicaSetReady reports whether rs runs want replicas of its current
// generation with at most maxUnavailable of them not Ready.
func replicaSetReady(rs *appsv1.ReplicaSet, want, maxUnavailable int32) bool {
	if rs == nil {
		return want == 0
	}
	if rs.Status.ObservedGeneration < rs.Generation || rs.Spec.Replicas == nil || *rs.Spec.Replicas != want {
		return false
	}
	return rs.Status.ReadyReplicas >= want-maxUnavailable && rs.Status.Replicas <= want
}

// deploymentComplete reports whether the Deployment controller has
// finished: every replica runs the current template and is available.
func deploymentComplete(d *appsv1.Deployment) bool {
	n := desiredReplicas(d)
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == n && s.Replicas == n && s.AvailableReplicas == n
}

// stepName describes step i for messages and events.
func stepName(c *deliveryv1.CanaryStrategy, i int32) string {
	if i >= int32(len(c.Steps)) {
		return "promotion"
	}
	s := c.Steps[i]
	switch {
	case s.SetWeight != nil:
		return fmt.Sprintf("step %d (setWeight %d)", i, *s.SetWeight)
	case s.Pause != nil && s.Pause.Duration != nil:
		return fmt.Sprintf("step %d (pause %s)", i, s.Pause.Duration.Duration)
	case s.Pause != nil:
		return fmt.Sprintf("step %d (pause until promoted)", i)
	case s.Analysis != nil:
		return fmt.Sprintf("step %d (analysis)", i)
	case s.SetCanaryScale != nil:
		return fmt.Sprintf("step %d (setCanaryScale)", i)
	}
	return fmt.Sprintf("step %d", i)
}

// selectorMatches reports whether every key of sel is in labels with the
// same value (a Service selector selects a pod template's pods). An empty
// selector selects nothing: a Service without one has manual endpoints.
func selectorMatches(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if k == deliveryv1.PodTemplateHashLabel {
			continue
		}
		if labels[k] != v {
			return false
		}
	}
	return true
}

// analysisRunName is the deterministic name of one AnalysisRun of a
// revision's attempt, so a reconcile that crashed after creating it finds
// it again instead of creating another.
func analysisRunName(rollout, hash string, attempt int32, kind string, step int32) string {
	suffix := map[string]string{
		deliveryv1.AnalysisKindStep:          fmt.Sprintf("s%d", step),
		deliveryv1.AnalysisKindBackground:    "bg",
		deliveryv1.AnalysisKindPrePromotion:  "pre",
		deliveryv1.AnalysisKindPostPromotion: "post",
	}[kind]
	name := fmt.Sprintf("%s-%s-%d-%s", rollout, hash, attempt, suffix)
	if len(name) > 253 {
		name = name[len(name)-253:]
	}
	return name
}
