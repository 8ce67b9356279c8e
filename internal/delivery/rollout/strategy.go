package rollout

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
)

// reconcileStrategy decides what the Deployment's current template needs:
// nothing (the Deployment runs it in a ReplicaSet of its own), or a rollout
// by the Rollout's strategy.
func (r *Reconciler) reconcileStrategy(ctx context.Context, s *scope) error {
	if s.current != nil || s.stable == nil {
		return r.reconcileSteady(ctx, s)
	}
	return r.reconcileNewRevision(ctx, s)
}

// reconcileSteady handles a Deployment whose template has a ReplicaSet of
// its own (or that has never run any pod): there is nothing to roll out
// but what the Deployment controller finishes by itself (after a
// promotion, or a rollout it started before the Rollout existed). The
// Deployment runs unpaused until its older ReplicaSets are scaled down,
// then is paused again so the next template change waits for the Rollout.
func (r *Reconciler) reconcileSteady(ctx context.Context, s *scope) error {
	ro := s.ro
	if s.current == nil {
		// No pod runs any revision: there is no stable version to protect.
		if s.canary != nil {
			return r.handOver(ctx, s)
		}
		if err := r.setPaused(ctx, s, false); err != nil {
			return err
		}
		r.progressing(s, deliveryv1.ReasonRolloutProgressing, fmt.Sprintf("Deployment %s has no pods yet: it creates revision %s by itself", s.dep.Name, s.hash))
		return nil
	}
	hash := s.current.Labels[deliveryv1.PodTemplateHashLabel]
	if ro.Status.StableRevision == nil || ro.Status.StableRevision.PodTemplateHash != hash {
		ro.Status.StableRevision = &deliveryv1.RevisionInfo{PodTemplateHash: hash, GitRevision: s.gitRevision}
	}
	if ro.Status.Aborted != nil && ro.Status.Aborted.Revision.PodTemplateHash != hash {
		// The template went back to a revision the Deployment runs.
		ro.Status.Aborted = nil
	}
	if ro.Status.CanaryRevision != nil && ro.Status.Aborted == nil {
		// The template went back to stable mid-rollout: the canary's
		// analyses stop (its ReplicaSet is scaled down by cleanup).
		if err := r.terminateRuns(ctx, s, ""); err != nil {
			return err
		}
	}
	ro.Status.CanaryRevision = nil
	ro.Status.AnalysisRuns = nil
	ro.Status.Weight = 0
	ro.Status.CanaryReplicas, ro.Status.ReadyCanaryReplicas = 0, 0
	ro.Status.StableReplicas = s.current.Status.ReadyReplicas
	// The Deployment controller has work only while an older ReplicaSet of
	// its own still has replicas (after a promotion, or a rollout it began
	// before the Rollout existed): only then does it run unpaused. Pods
	// that are merely not available (the stable version unhealthy) are the
	// ReplicaSet controller's to replace, and a paused Deployment still
	// scales, so the next commit still waits for the Rollout.
	for _, rs := range s.depOwned {
		if rs != s.current && ptr.Deref(rs.Spec.Replicas, 0) > 0 {
			if err := r.setPaused(ctx, s, false); err != nil {
				return err
			}
			r.progressing(s, deliveryv1.ReasonRolloutProgressing,
				fmt.Sprintf("Deployment %s is rolling out revision %s: %d of %d replicas updated and available",
					s.dep.Name, hash, s.dep.Status.AvailableReplicas, s.replicas))
			return nil
		}
	}
	if err := r.setPaused(ctx, s, true); err != nil {
		return err
	}
	if ro.Spec.Strategy.BlueGreen != nil {
		if _, err := r.setSelectorHash(ctx, s, ro.Spec.Service, hash); err != nil {
			return err
		}
	}
	if err := r.routeTraffic(ctx, s, hash, 0); err != nil {
		return err
	}
	if !deploymentComplete(s.dep) {
		r.progressing(s, deliveryv1.ReasonRolloutProgressing,
			fmt.Sprintf("Deployment %s runs revision %s: %d of %d replicas available", s.dep.Name, hash, s.dep.Status.AvailableReplicas, s.replicas))
		return nil
	}
	msg := fmt.Sprintf("Deployment %s runs revision %s on %d replicas", s.dep.Name, revisionName(hash, ro.Status.StableRevision.GitRevision), s.replicas)
	if ro.Status.Phase != deliveryv1.RolloutPhaseHealthy {
		r.event(s, corev1.EventTypeNormal, deliveryv1.ReasonRolloutHealthy, "%s", msg)
	}
	ro.Status.Phase, ro.Status.Message = deliveryv1.RolloutPhaseHealthy, msg
	conditions.MarkReady(ro, deliveryv1.ReasonRolloutHealthy, msg)
	conditions.Remove(ro, deliveryv1.ConditionPaused)
	return nil
}

// reconcileNewRevision rolls out the Deployment's template, which no
// ReplicaSet of the Deployment runs, beside the stable ReplicaSet.
func (r *Reconciler) reconcileNewRevision(ctx context.Context, s *scope) error {
	ro := s.ro
	if err := r.setPaused(ctx, s, true); err != nil {
		return err
	}
	stable := s.stableHash()
	if ro.Status.StableRevision == nil || ro.Status.StableRevision.PodTemplateHash != stable {
		ro.Status.StableRevision = &deliveryv1.RevisionInfo{PodTemplateHash: stable}
	}
	if ro.Status.CanaryRevision == nil || ro.Status.CanaryRevision.PodTemplateHash != s.hash {
		// A newer revision supersedes the one in progress (roll forward):
		// its analyses stop, its ReplicaSet is scaled down by cleanup.
		if err := r.terminateRuns(ctx, s, ""); err != nil {
			return err
		}
		ro.Status.CanaryRevision = &deliveryv1.RevisionInfo{PodTemplateHash: s.hash, GitRevision: s.gitRevision}
		if ro.Status.Aborted != nil && ro.Status.Aborted.Revision.PodTemplateHash != s.hash {
			ro.Status.Aborted = nil
		}
		r.restart(s, 0)
		r.event(s, corev1.EventTypeNormal, deliveryv1.EventNewRevision, "rolling out revision %s over stable revision %s",
			revisionName(s.hash, s.gitRevision), revisionName(stable, ro.Status.StableRevision.GitRevision))
	}
	if ro.Status.Aborted != nil {
		if !s.retry {
			return r.keepAborted(ctx, s)
		}
		ro.Status.Aborted = nil
		r.restart(s, ro.Status.Attempt+1)
		r.event(s, corev1.EventTypeNormal, deliveryv1.EventRetried, "retrying revision %s (attempt %d)", revisionName(s.hash, s.gitRevision), ro.Status.Attempt)
	}
	switch {
	case s.abort:
		return r.abortRollout(ctx, s, deliveryv1.ReasonAbortRequested, "abort requested")
	case s.abortAlert != "":
		return r.abortRollout(ctx, s, deliveryv1.ReasonAlertFired, fmt.Sprintf("alert %s fired", s.abortAlert))
	}
	if ro.Spec.Strategy.BlueGreen != nil {
		return r.runBlueGreen(ctx, s)
	}
	return r.runCanary(ctx, s)
}

// restart starts the canary revision's steps from the first, for attempt.
func (r *Reconciler) restart(s *scope, attempt int32) {
	ro := s.ro
	ro.Status.Attempt = attempt
	ro.Status.CurrentStep = ptr.To[int32](0)
	ro.Status.StepStartedAt = s.metaNow()
	ro.Status.AnalysisRuns = nil
	ro.Status.PromotedAt = nil
	ro.Status.Weight = 0
}

// advance moves to the next step.
func (r *Reconciler) advance(s *scope, what string) {
	ro := s.ro
	i := ptr.Deref(ro.Status.CurrentStep, 0)
	r.event(s, corev1.EventTypeNormal, deliveryv1.EventStepCompleted, "%s completed for revision %s", what, s.hash)
	ro.Status.CurrentStep = ptr.To(i + 1)
	ro.Status.StepStartedAt = s.metaNow()
}

// progressing marks the Rollout as working towards its goal.
func (r *Reconciler) progressing(s *scope, reason, msg string) {
	ro := s.ro
	ro.Status.Phase, ro.Status.Message = deliveryv1.RolloutPhaseProgressing, msg
	conditions.MarkProgressing(ro, reason, msg)
	conditions.Remove(ro, deliveryv1.ConditionPaused)
}

// paused marks the Rollout as waiting at a pause (for a duration or a
// promotion).
func (r *Reconciler) paused(s *scope, msg string) {
	ro := s.ro
	if ro.Status.Phase != deliveryv1.RolloutPhasePaused {
		r.event(s, corev1.EventTypeNormal, deliveryv1.ReasonRolloutPaused, "%s", msg)
	}
	ro.Status.Phase, ro.Status.Message = deliveryv1.RolloutPhasePaused, msg
	conditions.MarkProgressing(ro, deliveryv1.ReasonRolloutPaused, msg)
	conditions.Set(ro, deliveryv1.ConditionPaused, "True", deliveryv1.ReasonRolloutPaused, msg)
}

// waitReady reports a step waiting for canary pods, and aborts once the
// progress deadline has passed.
func (r *Reconciler) waitReady(ctx context.Context, s *scope, what string, want int32) error {
	ro := s.ro
	deadline := defaultProgressDeadline
	if ro.Spec.ProgressDeadline != nil {
		deadline = ro.Spec.ProgressDeadline.Duration
	}
	msg := fmt.Sprintf("%s: %d of %d pods of revision %s Ready", what, ro.Status.ReadyCanaryReplicas, want, s.hash)
	started := s.now
	if ro.Status.StepStartedAt != nil {
		started = ro.Status.StepStartedAt.Time
	}
	left := started.Add(deadline).Sub(s.now)
	if left <= 0 {
		return r.abortRollout(ctx, s, deliveryv1.ReasonProgressDeadlineExceeded, fmt.Sprintf("%s after the progress deadline of %s", msg, deadline))
	}
	s.after(left)
	r.progressing(s, deliveryv1.ReasonRolloutProgressing, msg)
	return nil
}

// abortRollout takes every pod and all traffic back to stable: the
// canary is scaled to zero (kept for inspection), its analyses stop, the
// Services and routes point at stable, and status.aborted says why.
func (r *Reconciler) abortRollout(ctx context.Context, s *scope, reason, msg string) error {
	ro := s.ro
	stable := s.stableHash()
	if ro.Spec.Strategy.BlueGreen != nil {
		if _, err := r.setSelectorHash(ctx, s, ro.Spec.Service, stable); err != nil {
			return err
		}
	}
	if err := r.routeTraffic(ctx, s, stable, 0); err != nil {
		return err
	}
	if err := r.terminateRuns(ctx, s, ""); err != nil {
		return err
	}
	ro.Status.Aborted = &deliveryv1.AbortStatus{
		Revision: *ro.Status.CanaryRevision,
		Stable:   ptr.Deref(ro.Status.StableRevision, deliveryv1.RevisionInfo{}),
		Reason:   reason,
		Message:  msg,
		At:       *s.metaNow(),
	}
	ro.Status.Weight = 0
	r.event(s, corev1.EventTypeWarning, deliveryv1.EventAborted, "%s", abortMessage(ro.Status.Aborted))
	s.log.Info("rollout aborted", "revision", s.hash, "reason", reason, "message", msg)
	return r.keepAborted(ctx, s)
}

// abortMessage names both revisions and why; it does not change while the
// revision stays aborted.
func abortMessage(a *deliveryv1.AbortStatus) string {
	return fmt.Sprintf("revision %s aborted (%s: %s); all traffic on stable revision %s",
		revisionName(a.Revision.PodTemplateHash, a.Revision.GitRevision), a.Reason, a.Message,
		revisionName(a.Stable.PodTemplateHash, a.Stable.GitRevision))
}

// keepAborted holds an aborted revision: canary at zero, status Aborted,
// until the template changes or a retry.
func (r *Reconciler) keepAborted(ctx context.Context, s *scope) error {
	ro := s.ro
	if s.canary != nil {
		if err := r.scale(ctx, s, s.canary, 0); err != nil {
			return err
		}
		ro.Status.CanaryReplicas, ro.Status.ReadyCanaryReplicas = 0, s.canary.Status.ReadyReplicas
	}
	if err := r.refreshRuns(ctx, s); err != nil {
		return err
	}
	msg := abortMessage(ro.Status.Aborted)
	ro.Status.Phase, ro.Status.Message = deliveryv1.RolloutPhaseAborted, msg
	conditions.MarkStalled(ro, deliveryv1.ReasonRolloutAborted, msg)
	conditions.Remove(ro, deliveryv1.ConditionPaused)
	return nil
}

// promote makes the canary revision stable: background analysis stops, the
// canary ReplicaSet goes to the Deployment, which finishes the rollout.
func (r *Reconciler) promote(ctx context.Context, s *scope) error {
	ro := s.ro
	if err := r.terminateRuns(ctx, s, deliveryv1.AnalysisKindBackground); err != nil {
		return err
	}
	if err := r.handOver(ctx, s); err != nil {
		return err
	}
	rev := *ro.Status.CanaryRevision
	ro.Status.StableRevision = &rev
	ro.Status.CanaryRevision = nil
	ro.Status.Weight = 100
	msg := fmt.Sprintf("revision %s promoted; Deployment %s finishes the rollout", revisionName(rev.PodTemplateHash, rev.GitRevision), s.dep.Name)
	r.event(s, corev1.EventTypeNormal, deliveryv1.EventPromoted, "%s", msg)
	r.progressing(s, deliveryv1.ReasonRolloutProgressing, msg)
	return nil
}

// waitFor asks for a reconcile when d has passed since t and reports
// whether it has.
func (s *scope) elapsed(t *time.Time, d time.Duration) bool {
	if t == nil {
		return false
	}
	left := t.Add(d).Sub(s.now)
	if left <= 0 {
		return true
	}
	s.after(left)
	return false
}
