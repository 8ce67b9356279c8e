package promotion

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	"github.com/strata-dev/strata/internal/kit/ownership"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
)

// fieldManager is the server-side apply field manager a Stage writes its
// GitRepository's spec.ref.commit with.
func fieldManager(st *deliveryv1.Stage) string {
	return ownership.Owner{Kind: "Stage", Namespace: st.Namespace, Name: st.Name}.FieldManager()
}

// pin sets the stage's GitRepository spec.ref.commit to rev, as the tenant,
// with the Stage's own field manager. It is idempotent.
func (r *Reconciler) pin(ctx context.Context, sc *scope, rev string) error {
	if sc.repo.Spec.Ref != nil && sc.repo.Spec.Ref.Commit == rev {
		return nil
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(gitopsv1.GroupVersion.String())
	u.SetKind("GitRepository")
	u.SetNamespace(sc.repo.Namespace)
	u.SetName(sc.repo.Name)
	u.SetResourceVersion(sc.repo.ResourceVersion)
	if err := unstructured.SetNestedField(u.Object, rev, "spec", "ref", "commit"); err != nil {
		return err
	}
	err := sc.tenant.Patch(ctx, u, client.Apply, client.FieldOwner(fieldManager(sc.stage)), client.ForceOwnership)
	switch {
	case apierrors.IsForbidden(err):
		return kitreconcile.Reasoned(deliveryv1.ReasonAccessDenied, fmt.Errorf("%s may not patch GitRepository %s/%s to pin revision %s", userName(sc.user), sc.repo.Namespace, sc.repo.Name, short(rev)))
	case err != nil:
		return kitreconcile.Reasoned(deliveryv1.ReasonPromotionFailed, fmt.Errorf("cannot pin GitRepository %s to revision %s: %w", sc.repo.Name, short(rev), err))
	}
	if sc.repo.Spec.Ref == nil {
		sc.repo.Spec.Ref = &gitopsv1.GitRepositoryRef{}
	}
	sc.repo.Spec.Ref.Commit = rev
	sc.repo.ResourceVersion = u.GetResourceVersion()
	return nil
}

// finish writes the in-flight promotion (again, idempotently, after a
// restart) and completes it once the stage's Sync applies it.
func (r *Reconciler) finish(ctx context.Context, sc *scope, p *deliveryv1.Promotion, _ []deliveryv1.Approval) error {
	st := sc.stage
	f := st.Status.InFlight
	st.Status.Pending = nil
	if p == nil {
		// The Promotion was deleted while in flight: the write may have
		// happened; the stage keeps what its Sync applies.
		st.Status.InFlight = nil
		return nil
	}
	if st.Status.CurrentRevision == f.Revision {
		r.succeeded(ctx, sc, p)
		return nil
	}
	switch sc.policy.Mode {
	case deliveryv1.PromotionModeGitWriteBack:
		commit := f.Commit
		if commit == "" {
			c, err := r.writeBack(ctx, sc, f.Revision)
			if err != nil {
				return err
			}
			commit = c
		}
		if f.Commit != commit {
			f.Commit = commit
			p.Status.Commit = commit
			r.setPhase(ctx, p, deliveryv1.PromotionPromoting, deliveryv1.ReasonPromoting, fmt.Sprintf("pushed commit %s to branch %s; waiting for Sync %s to apply it", short(commit), sc.policy.WriteBack.Branch, sc.sync.Name))
		}
		if commitOf(sc.sync.Status.LastAppliedRevision) == commit {
			st.Status.CurrentRevision = f.Revision
			r.succeeded(ctx, sc, p)
		}
	default:
		if err := r.pin(ctx, sc, f.Revision); err != nil {
			return err
		}
	}
	if rb := sc.sync.Status.RolledBackRevision; rb != "" && (commitOf(rb) == f.Revision || (f.Commit != "" && commitOf(rb) == f.Commit)) {
		msg := fmt.Sprintf("Sync %s rolled revision %s back", sc.sync.Name, short(f.Revision))
		r.addHistory(st, deliveryv1.StageHistoryEntry{Revision: f.Revision, Promotion: p.Name, Result: resultRolledBack, Time: metaNow(r.now()), Commit: f.Commit, Message: msg})
		st.Status.InFlight = nil
		r.setPhase(ctx, p, deliveryv1.PromotionFailed, deliveryv1.ReasonPromotionFailed, msg)
	}
	return nil
}

func (r *Reconciler) succeeded(ctx context.Context, sc *scope, p *deliveryv1.Promotion) {
	st := sc.stage
	f := st.Status.InFlight
	h := deliveryv1.StageHistoryEntry{Revision: f.Revision, Promotion: p.Name, Result: resultPromoted, Time: metaNow(r.now()),
		Commit: f.Commit, ApprovedBy: p.Status.ApprovedBy, OverriddenBy: p.Status.OverriddenBy}
	r.addHistory(st, h)
	st.Status.InFlight = nil
	msg := fmt.Sprintf("revision %s promoted to stage %s and applied by Sync %s", short(f.Revision), st.Name, sc.sync.Name)
	if len(h.ApprovedBy) > 0 {
		msg += fmt.Sprintf(" (approved by %v)", h.ApprovedBy)
	}
	if h.OverriddenBy != "" {
		msg += " (window overridden by " + h.OverriddenBy + ")"
	}
	r.setPhase(ctx, p, deliveryv1.PromotionSucceeded, deliveryv1.ReasonPromotionSucceeded, msg)
	r.recorder.Eventf(st, p, corev1.EventTypeNormal, deliveryv1.EventPromoted, "Promote", "%s", eventmsg.Truncate(msg))
}
