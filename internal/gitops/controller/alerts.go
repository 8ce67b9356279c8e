package controller

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/webhook"
)

// reconcileAlertRollback rolls a Sync back when the webhook receiver
// recorded a firing alert that matches spec.rollback.onAlerts
// (gitopsv1.AlertRollbackAnnotation) for the revision it has applied, and
// keeps the earlier revision applied while the source is still at the
// rolled-back one. A new source revision ends the rollback.
func (r *SyncReconciler) reconcileAlertRollback(ctx context.Context, sc *syncScope) (ctrl.Result, bool) {
	s := sc.sync
	enabled := s.Spec.Rollback != nil && len(s.Spec.Rollback.OnAlerts) > 0
	if ar := s.Status.AlertRollback; ar != nil {
		if enabled && sc.revision == ar.Revision {
			return r.holdAlertRollback(ctx, sc)
		}
		// The source moved on (or onAlerts was removed): apply as usual.
		s.Status.AlertRollback = nil
		conditions.Remove(s, gitopsv1.RolledBack)
		return ctrl.Result{}, false
	}
	if !enabled {
		return ctrl.Result{}, false
	}
	var req webhook.AlertRequest
	if err := json.Unmarshal([]byte(s.Annotations[gitopsv1.AlertRollbackAnnotation]), &req); err != nil || req.Revision == "" {
		return ctrl.Result{}, false
	}
	// Only a request about the revision applied now, still the source's,
	// rolls back; an older one is stale.
	if req.Revision != s.Status.LastAppliedRevision || req.Revision != sc.revision {
		return ctrl.Result{}, false
	}
	target := alertRollbackTarget(s, req.Revision)
	if target == "" {
		msg := fmt.Sprintf("alert %s fired for revision %s, but there is no earlier healthy revision to roll back to", req.Alert, req.Revision)
		if c := conditions.Get(s, gitopsv1.RolledBack); c == nil || c.Message != msg {
			r.recorder.Eventf(s, nil, corev1.EventTypeWarning, gitopsv1.ReasonAlertFiring, "Rollback", "%s", msg)
		}
		conditions.Set(s, gitopsv1.RolledBack, metav1.ConditionFalse, gitopsv1.ReasonAlertFiring, msg)
		return ctrl.Result{}, false
	}
	s.Status.AlertRollback = &gitopsv1.AlertRollback{Alert: req.Alert, Revision: req.Revision, Target: target, RequestedAt: req.At}
	sc.log.Info("rolling back on alert", "alert", req.Alert, "revision", req.Revision, "target", target)
	res, done := r.holdAlertRollback(ctx, sc)
	if conditions.IsTrue(s, gitopsv1.RolledBack) {
		r.recorder.Eventf(s, nil, corev1.EventTypeWarning, gitopsv1.EventRolledBack, "Rollback", "%s", conditions.Get(s, gitopsv1.RolledBack).Message)
		r.addHistory(sc, req.Revision, gitopsv1.ReasonRolledBack)
	}
	return res, done
}

// holdAlertRollback applies the rollback's target revision and reports it.
func (r *SyncReconciler) holdAlertRollback(ctx context.Context, sc *syncScope) (ctrl.Result, bool) {
	s := sc.sync
	ar := s.Status.AlertRollback
	digest, ok := r.store.Lookup(repoKey(sc.repo.Namespace, sc.repo.Name), ar.Target)
	if !ok {
		msg := fmt.Sprintf("alert %s fired for revision %s; cannot roll back to %s: it is no longer in the artifact store", ar.Alert, ar.Revision, ar.Target)
		conditions.Set(s, gitopsv1.RolledBack, metav1.ConditionFalse, gitopsv1.ReasonAlertFiring, msg)
		conditions.MarkFailed(s, gitopsv1.ReasonRolledBack, msg)
		return r.retry(s), true
	}
	if _, err := r.applyRevision(ctx, sc, ar.Target, digest); err != nil {
		return r.retry(s), true
	}
	msg := fmt.Sprintf("alert %s fired for revision %s; rolled back to %s", ar.Alert, ar.Revision, ar.Target)
	conditions.Set(s, gitopsv1.RolledBack, metav1.ConditionTrue, gitopsv1.ReasonAlertFiring, msg)
	conditions.Set(s, conditions.Ready, metav1.ConditionFalse, gitopsv1.ReasonRolledBack, msg)
	conditions.Remove(s, conditions.Reconciling)
	conditions.Set(s, conditions.Stalled, metav1.ConditionTrue, gitopsv1.ReasonRolledBack, msg)
	return ctrl.Result{RequeueAfter: jitter(s.Spec.Interval.Duration)}, true
}

// alertRollbackTarget picks the revision an alert rolls back to from bad:
// the last verified revision (spec.verify) when set and not bad, else the
// last healthy revision when it is not bad, else the newest revision in the
// history that succeeded.
func alertRollbackTarget(s *gitopsv1.Sync, bad string) string {
	if v := s.Status.LastVerifiedRevision; v != "" && v != bad {
		return v
	}
	if h := s.Status.LastHealthyRevision; h != "" && h != bad {
		return h
	}
	for _, h := range s.Status.History {
		if h.Revision != bad && h.Result == gitopsv1.ReasonReconciliationSucceeded {
			return h.Revision
		}
	}
	return ""
}

// recordRecovery records a Normal ReconciliationSucceeded event when a Sync
// becomes Ready (it was not when the reconcile read it): the recovery that
// Alerts in transitions mode send after a failure. A new Sync's first
// reconcile that applied objects has nothing to recover from and has said
// what it did in its Applied event, so it records no second event (one
// write fewer per new Sync).
func (r *SyncReconciler) recordRecovery(sc *syncScope, revision string) {
	if sc.status == nil {
		return
	}
	base, ok := sc.status.Base().(*gitopsv1.Sync)
	if ok && conditions.IsTrue(base, conditions.Ready) {
		return
	}
	if ok && sc.announced && len(base.Status.History) == 0 {
		return
	}
	r.recorder.Eventf(sc.sync, nil, corev1.EventTypeNormal, gitopsv1.ReasonReconciliationSucceeded, "Reconcile", "applied revision %s", revision)
}
