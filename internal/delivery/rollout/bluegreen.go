package rollout

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

// runBlueGreen runs a blue-green release through its stages
// (deliveryv1.BlueGreenStage*): the preview ReplicaSet beside the stable
// one, reachable by the preview Service; pre-promotion analysis; promotion
// (automatic or requested); the active Service's selector switched to the
// new revision once it runs at full size; post-promotion analysis (a
// failure switches back); after scaleDownDelay the Deployment takes the new
// ReplicaSet and scales the old one down.
func (r *Reconciler) runBlueGreen(ctx context.Context, s *scope) error {
	ro := s.ro
	bg := ro.Spec.Strategy.BlueGreen
	active := ro.Spec.Service
	stable := s.stableHash()
	if s.promoteFull && ptr.Deref(ro.Status.CurrentStep, 0) < deliveryv1.BlueGreenStageSwitch {
		if err := r.terminateRuns(ctx, s, ""); err != nil {
			return err
		}
		r.event(s, corev1.EventTypeNormal, deliveryv1.EventStepCompleted, "full promotion requested: switching to revision %s", s.hash)
		ro.Status.CurrentStep = ptr.To(deliveryv1.BlueGreenStageSwitch)
		ro.Status.StepStartedAt = s.metaNow()
	}
	for guard := 0; guard < 8; guard++ {
		stage := ptr.Deref(ro.Status.CurrentStep, 0)
		// Until the switch the active Service selects the stable pods only:
		// it must before any preview pod exists.
		if stage < deliveryv1.BlueGreenStageSwitch || (stage == deliveryv1.BlueGreenStageSwitch && ro.Status.PromotedAt == nil) {
			if _, err := r.setSelectorHash(ctx, s, active, stable); err != nil {
				return err
			}
		}
		if p := bg.PreviewService; p != "" {
			if _, err := r.setSelectorHash(ctx, s, p, s.hash); err != nil {
				return err
			}
		}
		want := ptr.Deref(bg.PreviewReplicas, s.replicas)
		if stage >= deliveryv1.BlueGreenStageSwitch {
			want = s.replicas
		}
		if err := r.ensureCanary(ctx, s, want); err != nil {
			return err
		}
		ready := s.canaryReady(want, 0)
		name := BlueGreenStageName(stage)
		switch stage {
		case deliveryv1.BlueGreenStagePreview:
			if !ready {
				return r.waitReady(ctx, s, name, want)
			}
		case deliveryv1.BlueGreenStagePrePromotion:
			if a := bg.PrePromotionAnalysis; a != nil {
				done, err := r.gate(ctx, s, deliveryv1.AnalysisKindPrePromotion, a, name)
				if !done || err != nil {
					return err
				}
			}
		case deliveryv1.BlueGreenStageAwaitPromotion:
			if !s.promote {
				ap := bg.AutoPromotion
				if ap == nil || !ap.Enabled {
					r.paused(s, fmt.Sprintf("%s: preview revision %s is Ready, waiting for promotion", name, s.hash))
					return nil
				}
				var after time.Duration
				if ap.After != nil {
					after = ap.After.Duration
				}
				if !s.elapsed(&ro.Status.StepStartedAt.Time, after) {
					r.paused(s, fmt.Sprintf("%s: preview revision %s is Ready, promoting after %s", name, s.hash, after))
					return nil
				}
			}
			s.promote = false
		case deliveryv1.BlueGreenStageSwitch:
			if !ready {
				return r.waitReady(ctx, s, name, want)
			}
			if _, err := r.setSelectorHash(ctx, s, active, s.hash); err != nil {
				return err
			}
			ro.Status.PromotedAt = s.metaNow()
			ro.Status.Weight = 100
			r.event(s, corev1.EventTypeNormal, deliveryv1.EventTrafficSwitch, "Service %s switched from revision %s to %s", active, stable, s.hash)
		case deliveryv1.BlueGreenStagePostPromotion:
			if a := bg.PostPromotionAnalysis; a != nil {
				done, err := r.gate(ctx, s, deliveryv1.AnalysisKindPostPromotion, a, name)
				if !done || err != nil {
					return err
				}
			}
		case deliveryv1.BlueGreenStageScaleDown:
			delay := defaultScaleDownDelay
			if bg.ScaleDownDelay != nil {
				delay = bg.ScaleDownDelay.Duration
			}
			var at *time.Time
			if ro.Status.PromotedAt != nil {
				at = &ro.Status.PromotedAt.Time
			}
			if at != nil && !s.elapsed(at, delay) {
				r.progressing(s, deliveryv1.ReasonRolloutProgressing, fmt.Sprintf("%s: Service %s serves revision %s; revision %s scales down after %s", name, active, s.hash, stable, delay))
				return nil
			}
			return r.promote(ctx, s)
		default:
			return r.promote(ctx, s)
		}
		r.advance(s, name)
	}
	return nil
}

// gate runs an analysis stage: done once it passed; a failure aborts.
func (r *Reconciler) gate(ctx context.Context, s *scope, kind string, a *deliveryv1.RolloutAnalysis, name string) (bool, error) {
	run, err := r.ensureRun(ctx, s, kind, -1, a)
	if err != nil {
		return false, err
	}
	switch {
	case failed(run):
		return false, r.abortRollout(ctx, s, deliveryv1.ReasonAnalysisFailed, fmt.Sprintf("%s: AnalysisRun %s %s: %s", name, run.Name, run.Status.Phase, run.Status.Message))
	case run.Status.Phase != deliveryv1.PhaseSuccessful:
		r.progressing(s, deliveryv1.ReasonAnalysisRunning, fmt.Sprintf("%s: AnalysisRun %s running for revision %s", name, run.Name, s.hash))
		return false, nil
	}
	return true, nil
}

// BlueGreenStageName names a blue-green stage (status.currentStep) for
// messages and the CLI.
func BlueGreenStageName(stage int32) string {
	switch stage {
	case deliveryv1.BlueGreenStagePreview:
		return "preview"
	case deliveryv1.BlueGreenStagePrePromotion:
		return "pre-promotion analysis"
	case deliveryv1.BlueGreenStageAwaitPromotion:
		return "promotion"
	case deliveryv1.BlueGreenStageSwitch:
		return "switch"
	case deliveryv1.BlueGreenStagePostPromotion:
		return "post-promotion analysis"
	case deliveryv1.BlueGreenStageScaleDown:
		return "scale down"
	}
	return fmt.Sprintf("stage %d", stage)
}
