package rollout

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

// ensureRun returns the AnalysisRun of kind (and step) for the canary
// revision's current attempt, creating it when it does not exist. The run's
// subject is the Rollout, so its args can read the revisions by fieldRef,
// and it measures as the Rollout's service account. The AnalysisRun
// controller takes the measurements; the Rollout only reads the verdict.
func (r *Reconciler) ensureRun(ctx context.Context, s *scope, kind string, step int32, a *deliveryv1.RolloutAnalysis) (*deliveryv1.AnalysisRun, error) {
	ro := s.ro
	name := analysisRunName(ro.Name, s.hash, ro.Status.Attempt, kind, step)
	run := &deliveryv1.AnalysisRun{}
	err := r.client.Get(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: name}, run)
	switch {
	case apierrors.IsNotFound(err):
		run = &deliveryv1.AnalysisRun{
			ObjectMeta: metav1.ObjectMeta{Namespace: ro.Namespace, Name: name, Labels: map[string]string{deliveryv1.RolloutNameLabel: ro.Name}},
			Spec: deliveryv1.AnalysisRunSpec{
				Templates:          a.Templates,
				Args:               a.Args,
				Subject:            &deliveryv1.SubjectReference{APIVersion: deliveryv1.GroupVersion.String(), Kind: "Rollout", Name: ro.Name},
				ServiceAccountName: ro.Spec.ServiceAccountName,
			},
		}
		s.owner.SetMark(run)
		if err := r.client.Create(ctx, run); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("cannot create AnalysisRun %s: %w", name, err)
		}
		r.event(s, corev1.EventTypeNormal, deliveryv1.EventStepStarted, "created %s AnalysisRun %s for revision %s", kind, name, s.hash)
	case err != nil:
		return nil, fmt.Errorf("cannot read AnalysisRun %s: %w", name, err)
	case !s.owner.Controls(run):
		return nil, userError(apierrors.NewConflict(deliveryv1.GroupVersion.WithResource("analysisruns").GroupResource(), name,
			fmt.Errorf("AnalysisRun %s/%s exists and is not the Rollout's", ro.Namespace, name)), "create AnalysisRun "+name)
	}
	recordRun(ro, run, kind, step)
	return run, nil
}

// recordRun puts a run's verdict into status.analysisRuns.
func recordRun(ro *deliveryv1.Rollout, run *deliveryv1.AnalysisRun, kind string, step int32) {
	st := deliveryv1.RolloutAnalysisRunStatus{Name: run.Name, Kind: kind, Step: step, Phase: run.Status.Phase, Message: run.Status.Message}
	if st.Phase == "" {
		st.Phase = deliveryv1.PhasePending
	}
	for i := range ro.Status.AnalysisRuns {
		if ro.Status.AnalysisRuns[i].Name == run.Name {
			ro.Status.AnalysisRuns[i] = st
			return
		}
	}
	if len(ro.Status.AnalysisRuns) < 64 {
		ro.Status.AnalysisRuns = append(ro.Status.AnalysisRuns, st)
	}
}

// failed reports whether a run's verdict fails the rollout.
func failed(run *deliveryv1.AnalysisRun) bool {
	return run.Status.Completed() && run.Status.Phase != deliveryv1.PhaseSuccessful
}

// terminateRuns stops the running AnalysisRuns of the current attempt (of
// kind, or all kinds when kind is empty), keeping what they measured.
func (r *Reconciler) terminateRuns(ctx context.Context, s *scope, kind string) error {
	for _, st := range s.ro.Status.AnalysisRuns {
		if kind != "" && st.Kind != kind {
			continue
		}
		run := &deliveryv1.AnalysisRun{}
		if err := r.client.Get(ctx, client.ObjectKey{Namespace: s.ro.Namespace, Name: st.Name}, run); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("cannot read AnalysisRun %s: %w", st.Name, err)
		}
		if run.Status.Completed() || run.Spec.Terminate || !s.owner.Controls(run) {
			continue
		}
		base := run.DeepCopy()
		run.Spec.Terminate = true
		if err := r.client.Patch(ctx, run, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("cannot terminate AnalysisRun %s: %w", st.Name, err)
		}
	}
	return nil
}

// refreshRuns updates the verdicts in status.analysisRuns.
func (r *Reconciler) refreshRuns(ctx context.Context, s *scope) error {
	for i := range s.ro.Status.AnalysisRuns {
		st := &s.ro.Status.AnalysisRuns[i]
		run := &deliveryv1.AnalysisRun{}
		if err := r.client.Get(ctx, client.ObjectKey{Namespace: s.ro.Namespace, Name: st.Name}, run); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("cannot read AnalysisRun %s: %w", st.Name, err)
		}
		if run.Status.Phase != "" {
			st.Phase, st.Message = run.Status.Phase, run.Status.Message
		}
	}
	return nil
}
