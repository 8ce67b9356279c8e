package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
)

// Verification of a Sync's revisions: after a revision is applied and
// healthy, the Sync creates an AnalysisRun (owned by the Sync) from
// spec.verify and waits for its verdict through the API server; the
// delivery subsystem runs it. This file knows the AnalysisRun API, never
// the code that runs it.

// verifyRunsKept is how many of a Sync's finished verification runs are
// kept for `strata trace` and `strata analysis get`.
const verifyRunsKept = 5

// verifyRunName is the AnalysisRun that verifies revision: one per Sync and
// revision, so a restarted manager finds the run it created.
func verifyRunName(s *gitopsv1.Sync, revision string) string {
	sum := sha256.Sum256([]byte(revision))
	name := s.Name
	if len(name) > 40 {
		name = strings.TrimRight(name[:40], "-.")
	}
	return name + "-verify-" + hex.EncodeToString(sum[:])[:10]
}

// rollbackTarget is the revision a rollback returns to: the last verified
// one for a Sync that verifies, else the last healthy one.
func rollbackTarget(s *gitopsv1.Sync) string {
	if s.Spec.Verify != nil && s.Status.LastVerifiedRevision != "" {
		return s.Status.LastVerifiedRevision
	}
	return s.Status.LastHealthyRevision
}

// holdReason is the Ready reason and message of a Sync that keeps a
// rolled-back revision out: its verification failed, or its health check.
func holdReason(s *gitopsv1.Sync, revision string) (string, string) {
	if v := s.Status.Verification; v != nil && v.Revision == s.Status.RolledBackRevision && isFailedPhase(v.Phase) {
		return gitopsv1.ReasonVerificationFailed, fmt.Sprintf("verification of revision %s %s: %s; rolled back to %s", v.Revision, strings.ToLower(v.Phase), v.Message, revision)
	}
	return gitopsv1.ReasonRolledBack, fmt.Sprintf("revision %s failed its health check; rolled back to %s", s.Status.RolledBackRevision, revision)
}

func isFailedPhase(p string) bool {
	return p == deliveryv1.PhaseFailed || p == deliveryv1.PhaseInconclusive || p == deliveryv1.PhaseError
}

// cancelVerification deletes the run verifying a revision the source has
// moved on from (or of a Sync that no longer verifies): a new commit cancels
// a running verification.
func (r *SyncReconciler) cancelVerification(ctx context.Context, sc *syncScope) (ctrl.Result, bool) {
	s := sc.sync
	v := s.Status.Verification
	if v == nil || v.Phase != deliveryv1.PhaseRunning || (s.Spec.Verify != nil && v.Revision == sc.revision) {
		return ctrl.Result{}, false
	}
	run := &deliveryv1.AnalysisRun{}
	err := r.client.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: v.RunName}, run)
	if err == nil && metav1.IsControlledBy(run, s) {
		if err := r.client.Delete(ctx, run, client.Preconditions{UID: &run.UID}); err != nil && !apierrors.IsNotFound(err) {
			conditions.MarkFailed(s, gitopsv1.ReasonProgressing, fmt.Sprintf("cannot cancel the verification of revision %s (AnalysisRun %s): %v", v.Revision, v.RunName, err))
			return r.retry(s), true
		}
		r.recorder.Eventf(s, nil, corev1.EventTypeNormal, gitopsv1.EventVerificationFailed, "Verify", "%s",
			eventmsg.Truncate(fmt.Sprintf("verification of revision %s cancelled: the source moved on to %s", v.Revision, sc.revision)))
	}
	v.Phase, v.Message = "Cancelled", "the source moved on to "+sc.revision
	return ctrl.Result{}, false
}

// reconcileVerify runs after the revision is applied and healthy: it
// creates the revision's AnalysisRun, waits for it, and records the
// verdict. A failed verification rolls back to the last verified revision
// when rollback.onVerificationFailure says so.
func (r *SyncReconciler) reconcileVerify(ctx context.Context, sc *syncScope) (ctrl.Result, bool) {
	s := sc.sync
	if s.Spec.Verify == nil {
		return ctrl.Result{}, false
	}
	rev := s.Status.LastAppliedRevision
	if rev == "" {
		return ctrl.Result{}, false
	}
	if s.Status.LastVerifiedRevision == rev {
		conditions.MarkReady(s, gitopsv1.ReasonReconciliationSucceeded, "applied and verified revision "+rev)
		return ctrl.Result{}, false
	}
	name := verifyRunName(s, rev)
	run := &deliveryv1.AnalysisRun{}
	err := r.client.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: name}, run)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.createVerifyRun(ctx, sc, name, rev); err != nil {
			conditions.MarkFailed(s, gitopsv1.ReasonVerificationFailed, fmt.Sprintf("cannot start the verification of revision %s: %v", rev, err))
			return r.retry(s), true
		}
		s.Status.Verification = &gitopsv1.VerificationStatus{Revision: rev, RunName: name, Phase: deliveryv1.PhaseRunning}
		conditions.MarkProgressing(s, gitopsv1.ReasonVerifying, fmt.Sprintf("revision %s applied and healthy; verifying with AnalysisRun %s", rev, name))
		return ctrl.Result{RequeueAfter: jitter(s.Spec.Interval.Duration)}, true
	case err != nil:
		conditions.MarkFailed(s, gitopsv1.ReasonVerificationFailed, fmt.Sprintf("cannot read AnalysisRun %s: %v", name, err))
		return r.retry(s), true
	case !metav1.IsControlledBy(run, s):
		r.failed(sc, rev, gitopsv1.ReasonVerificationFailed, fmt.Errorf("AnalysisRun %s exists and was not created by this Sync; it does not verify revision %s", name, rev), true)
		return r.retry(s), true
	}
	v := &gitopsv1.VerificationStatus{Revision: rev, RunName: name, Phase: run.Status.Phase, Message: run.Status.Message}
	if v.Phase == "" || v.Phase == deliveryv1.PhasePending {
		v.Phase = deliveryv1.PhaseRunning
	}
	s.Status.Verification = v
	switch {
	case v.Phase == deliveryv1.PhaseSuccessful:
		s.Status.LastVerifiedRevision = rev
		msg := "applied and verified revision " + rev
		conditions.MarkReady(s, gitopsv1.ReasonReconciliationSucceeded, msg)
		r.recorder.Eventf(s, nil, corev1.EventTypeNormal, gitopsv1.EventVerified, "Verify", "%s", eventmsg.Truncate(fmt.Sprintf("revision %s verified by AnalysisRun %s: %s", rev, name, run.Status.Message)))
		return ctrl.Result{}, false
	case isFailedPhase(v.Phase):
		return r.verificationFailed(ctx, sc, rev, v)
	}
	conditions.MarkProgressing(s, gitopsv1.ReasonVerifying, fmt.Sprintf("revision %s applied and healthy; verifying with AnalysisRun %s", rev, name))
	return ctrl.Result{RequeueAfter: jitter(s.Spec.Interval.Duration)}, true
}

// verificationFailed reports the verdict, naming metric and value, and
// rolls back to the last verified revision with the same code path a
// failed health check uses.
func (r *SyncReconciler) verificationFailed(ctx context.Context, sc *syncScope, rev string, v *gitopsv1.VerificationStatus) (ctrl.Result, bool) {
	s := sc.sync
	detail := fmt.Sprintf("verification of revision %s %s: %s", rev, strings.ToLower(v.Phase), v.Message)
	good := s.Status.LastVerifiedRevision
	if s.Spec.Rollback != nil && s.Spec.Rollback.OnVerificationFailure && good != "" && good != rev {
		if digest, ok := r.store.Lookup(repoKey(sc.repo.Namespace, sc.repo.Name), good); ok {
			if _, err := r.applyRevision(ctx, sc, good, digest); err != nil {
				return r.retry(s), true
			}
			s.Status.RolledBackRevision = rev
			_, msg := holdReason(s, good)
			conditions.Set(s, conditions.Ready, metav1.ConditionFalse, gitopsv1.ReasonVerificationFailed, msg)
			conditions.Remove(s, conditions.Reconciling)
			conditions.Set(s, conditions.Stalled, metav1.ConditionTrue, gitopsv1.ReasonVerificationFailed, msg)
			r.recorder.Eventf(s, nil, corev1.EventTypeWarning, gitopsv1.EventRolledBack, "Rollback", "%s", eventmsg.Truncate(msg))
			r.addHistory(sc, rev, gitopsv1.ReasonVerificationFailed)
			return ctrl.Result{RequeueAfter: jitter(s.Spec.Interval.Duration)}, true
		}
		sc.log.Info("cannot roll back: the last verified revision is no longer in the store", "revision", good)
	}
	r.failed(sc, rev, gitopsv1.ReasonVerificationFailed, fmt.Errorf("%s", detail), true)
	return ctrl.Result{RequeueAfter: jitter(s.Spec.Interval.Duration)}, true
}

// createVerifyRun creates the AnalysisRun of revision, owned by the Sync,
// acting as the Sync's service account, and prunes old finished runs.
func (r *SyncReconciler) createVerifyRun(ctx context.Context, sc *syncScope, name, rev string) error {
	s := sc.sync
	args := append([]deliveryv1.Argument(nil), s.Spec.Verify.Args...)
	hasRevision := false
	for _, a := range args {
		hasRevision = hasRevision || a.Name == "revision"
	}
	if !hasRevision {
		args = append(args, deliveryv1.Argument{Name: "revision", Value: &rev})
	}
	run := &deliveryv1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: name, Labels: map[string]string{gitopsv1.LabelVerifySync: s.Name}},
		Spec: deliveryv1.AnalysisRunSpec{
			Templates:          s.Spec.Verify.Templates,
			Args:               args,
			Subject:            &deliveryv1.SubjectReference{APIVersion: gitopsv1.GroupVersion.String(), Kind: "Sync", Name: s.Name},
			ServiceAccountName: s.Spec.ServiceAccountName,
		},
	}
	if err := controllerutil.SetControllerReference(s, run, r.client.Scheme()); err != nil {
		return err
	}
	if err := r.client.Create(ctx, run); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("cannot create AnalysisRun %s: %w", name, err)
	}
	r.pruneVerifyRuns(ctx, sc, name)
	return nil
}

// pruneVerifyRuns deletes this Sync's finished verification runs beyond the
// newest verifyRunsKept, never the one just created.
func (r *SyncReconciler) pruneVerifyRuns(ctx context.Context, sc *syncScope, keep string) {
	s := sc.sync
	list := &deliveryv1.AnalysisRunList{}
	if err := r.client.List(ctx, list, client.InNamespace(s.Namespace), client.MatchingLabels{gitopsv1.LabelVerifySync: s.Name}); err != nil {
		sc.log.V(1).Info("cannot list verification runs", "error", err.Error())
		return
	}
	var done []deliveryv1.AnalysisRun
	for _, run := range list.Items {
		if run.Name != keep && metav1.IsControlledBy(&run, s) && run.Status.Completed() {
			done = append(done, run)
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[j].CreationTimestamp.Before(&done[i].CreationTimestamp) })
	for i := verifyRunsKept; i < len(done); i++ {
		if err := r.client.Delete(ctx, &done[i], client.Preconditions{UID: &done[i].UID}); err != nil && !apierrors.IsNotFound(err) {
			sc.log.V(1).Info("cannot delete an old verification run", "analysisRun", done[i].Name, "error", err.Error())
		}
	}
}

// runPhaseChanged passes AnalysisRun updates that change its phase, so a
// Sync hears of its verdict at once and not of every measurement.
type runPhaseChanged struct{ predicate.Funcs }

func (runPhaseChanged) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*deliveryv1.AnalysisRun)
	n, ok2 := e.ObjectNew.(*deliveryv1.AnalysisRun)
	return ok1 && ok2 && o.Status.Phase != n.Status.Phase
}
