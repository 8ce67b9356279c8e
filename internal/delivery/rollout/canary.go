package rollout

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

// runCanary runs the canary's steps from status.currentStep: each
// setWeight scales the canary ReplicaSet (and sets route weights) and waits
// for its pods to be Ready, each pause waits, each analysis waits for its
// AnalysisRun's verdict; after the last step the canary is promoted.
// Several steps may complete in one reconcile.
func (r *Reconciler) runCanary(ctx context.Context, s *scope) error {
	ro := s.ro
	c := ro.Spec.Strategy.Canary
	steps := int32(len(c.Steps))
	if s.promoteFull && ptr.Deref(ro.Status.CurrentStep, 0) < steps {
		r.event(s, corev1.EventTypeNormal, deliveryv1.EventStepCompleted, "full promotion requested: skipping to promotion of revision %s", s.hash)
		ro.Status.CurrentStep = ptr.To(steps)
		ro.Status.StepStartedAt = s.metaNow()
		if err := r.terminateRuns(ctx, s, ""); err != nil {
			return err
		}
		if err := r.ensureCanary(ctx, s, canaryState(c, steps, s.replicas).Replicas); err != nil {
			return err
		}
		return r.promote(ctx, s)
	}
	if a := c.Analysis; a != nil && ptr.Deref(ro.Status.CurrentStep, 0) >= ptr.Deref(a.StartingStep, 0) && ptr.Deref(ro.Status.CurrentStep, 0) < steps {
		run, err := r.ensureRun(ctx, s, deliveryv1.AnalysisKindBackground, -1, &a.RolloutAnalysis)
		if err != nil {
			return err
		}
		if failed(run) {
			return r.abortRollout(ctx, s, deliveryv1.ReasonAnalysisFailed, fmt.Sprintf("background AnalysisRun %s %s: %s", run.Name, run.Status.Phase, run.Status.Message))
		}
	}
	for guard := int32(0); guard <= steps+1; guard++ {
		i := ptr.Deref(ro.Status.CurrentStep, 0)
		st := canaryState(c, i, s.replicas)
		if err := r.ensureCanary(ctx, s, st.Replicas); err != nil {
			return err
		}
		ready := s.canaryReady(st.Replicas, scaledValue(c.MaxUnavailable, st.Replicas, 0))
		what := stepName(c, i)
		if st.Capped {
			what += fmt.Sprintf(" (held at maxSurge: %d replicas)", st.Replicas)
		}
		if i >= steps {
			if !ready {
				return r.waitReady(ctx, s, what, st.Replicas)
			}
			return r.promote(ctx, s)
		}
		step := c.Steps[i]
		switch {
		case step.SetWeight != nil || step.SetCanaryScale != nil:
			if !ready {
				return r.waitReady(ctx, s, what, st.Replicas)
			}
			if err := r.routeTraffic(ctx, s, s.stableHash(), st.Weight); err != nil {
				return err
			}
			ro.Status.Weight = st.Weight
		case step.Pause != nil:
			if !s.promote {
				if step.Pause.Duration == nil {
					r.paused(s, fmt.Sprintf("%s: waiting for promotion of revision %s at weight %d", what, s.hash, ro.Status.Weight))
					return nil
				}
				if !s.elapsed(&ro.Status.StepStartedAt.Time, step.Pause.Duration.Duration) {
					r.paused(s, fmt.Sprintf("%s: revision %s at weight %d", what, s.hash, ro.Status.Weight))
					return nil
				}
			}
			s.promote = false
		case step.Analysis != nil:
			if s.promote {
				s.promote = false
				if err := r.terminateRuns(ctx, s, deliveryv1.AnalysisKindStep); err != nil {
					return err
				}
				break
			}
			run, err := r.ensureRun(ctx, s, deliveryv1.AnalysisKindStep, i, step.Analysis)
			if err != nil {
				return err
			}
			switch {
			case failed(run):
				return r.abortRollout(ctx, s, deliveryv1.ReasonAnalysisFailed, fmt.Sprintf("%s: AnalysisRun %s %s: %s", what, run.Name, run.Status.Phase, run.Status.Message))
			case run.Status.Phase != deliveryv1.PhaseSuccessful:
				r.progressing(s, deliveryv1.ReasonAnalysisRunning, fmt.Sprintf("%s: AnalysisRun %s running for revision %s", what, run.Name, s.hash))
				return nil
			}
		}
		r.advance(s, what)
		r.event(s, corev1.EventTypeNormal, deliveryv1.EventStepStarted, "%s started for revision %s", stepName(c, i+1), s.hash)
	}
	return nil
}
