package promotion

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
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
)

// Observation: which revision the stage's Sync runs and which revisions are
// verified here. The Sync's own verification (spec.verify) verifies a
// revision when its AnalysisRun succeeds; the Stage's verification runs
// after that, once the Sync is Ready at the revision; without either, the
// Sync being Ready at a revision verifies it. A failed verification, or a
// Sync rollback away from a revision, withdraws it.

const maxKept = 20

// Results of history entries.
const (
	resultPromoted   = "Promoted"
	resultRolledBack = "RolledBack"
	resultWithdrawn  = "Withdrawn"
)

func isFailedPhase(p string) bool {
	return p == deliveryv1.PhaseFailed || p == deliveryv1.PhaseInconclusive || p == deliveryv1.PhaseError
}

// sourceRevision maps a commit the Sync applies to the source revision it
// carries: the write-back commit of a promotion, or the commit itself.
func sourceRevision(st *deliveryv1.Stage, commit string) string {
	if commit == "" {
		return ""
	}
	if f := st.Status.InFlight; f != nil && f.Commit == commit {
		return f.Revision
	}
	for _, h := range st.Status.History {
		if h.Commit == commit {
			return h.Revision
		}
	}
	return commit
}

// syncReadyAt says whether the Sync has applied its latest spec, is Ready,
// and applies commit.
func syncReady(s *gitopsv1.Sync) bool {
	c := conditions.Get(s, conditions.Ready)
	return c != nil && c.Status == metav1.ConditionTrue && s.Status.ObservedGeneration == s.Generation && s.Status.LastAppliedRevision != ""
}

func (r *Reconciler) observe(ctx context.Context, sc *scope) error {
	st, s := sc.stage, sc.sync
	applied := commitOf(s.Status.LastAppliedRevision)
	cur := sourceRevision(st, applied)
	st.Status.CurrentRevision = cur

	// Withdrawals: a failed verification of a revision, or a rollback away
	// from it.
	if v := s.Status.Verification; v != nil && isFailedPhase(v.Phase) {
		rev := sourceRevision(st, commitOf(v.Revision))
		r.withdraw(sc, rev, fmt.Sprintf("its verification by AnalysisRun %s in Sync %s ended %s: %s", v.RunName, s.Name, v.Phase, v.Message))
		if s.Status.RolledBackRevision != "" && commitOf(s.Status.RolledBackRevision) == commitOf(v.Revision) {
			target := sourceRevision(st, commitOf(s.Status.LastVerifiedRevision))
			r.verificationFailed(sc, rev, fmt.Sprintf("revision %s failed its verification by AnalysisRun %s (%s); Sync %s rolled back to %s",
				short(rev), v.RunName, v.Message, s.Name, short(target)))
		}
	}
	if rb := s.Status.RolledBackRevision; rb != "" {
		r.withdraw(sc, sourceRevision(st, commitOf(rb)), fmt.Sprintf("Sync %s rolled it back", s.Name))
	}
	if ar := s.Status.AlertRollback; ar != nil {
		r.withdraw(sc, sourceRevision(st, commitOf(ar.Revision)), fmt.Sprintf("Sync %s rolled it back on alert %s", s.Name, ar.Alert))
	}
	if cur == "" || !syncReady(s) {
		return nil
	}
	if st.Spec.Verification == nil {
		if isVerified(st, cur) {
			return nil
		}
		vr := deliveryv1.VerifiedRevision{Revision: cur, VerifiedAt: metaNow(r.now())}
		if s.Spec.Verify != nil {
			run, ok := syncVerified(s, applied)
			if !ok {
				return nil
			}
			vr.Run = run
			if run != "" {
				ar := &deliveryv1.AnalysisRun{}
				if err := r.client.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: run}, ar); err == nil && ar.Status.CompletedAt != nil {
					vr.VerifiedAt = *ar.Status.CompletedAt
				}
			}
		}
		if sc.following {
			vr.Author = r.authorOf(ctx, sc, sc.repo, cur)
		}
		r.addVerified(sc, vr)
		return nil
	}
	return r.ownVerification(ctx, sc, cur)
}

// syncVerified says whether a Sync that verifies (spec.verify) has verified
// the commit it applies, and names the AnalysisRun that did when its
// verdict is about that commit. The commit is verified once the Sync records
// it as its last verified one and, while the Sync's verdict is about it,
// once that verdict is a success. A Sync rolled back to a commit it
// verified before holds the failed commit's verdict: the run is then not
// known.
func syncVerified(s *gitopsv1.Sync, applied string) (run string, ok bool) {
	if applied == "" || commitOf(s.Status.LastVerifiedRevision) != applied {
		return "", false
	}
	v := s.Status.Verification
	if v == nil || commitOf(v.Revision) != applied {
		return "", true
	}
	if v.Phase != deliveryv1.PhaseSuccessful {
		return "", false
	}
	return v.RunName, true
}

// verifyRunName is the Stage's AnalysisRun for a revision (and a
// re-verification request), so a restarted manager finds the run it made.
func verifyRunName(st *deliveryv1.Stage, rev, token string) string {
	sum := sha256.Sum256([]byte(rev + "/" + token))
	name := st.Name
	if len(name) > 40 {
		name = strings.TrimRight(name[:40], "-.")
	}
	return name + "-verify-" + hex.EncodeToString(sum[:])[:10]
}

// ownVerification runs the Stage's verification of the current revision.
func (r *Reconciler) ownVerification(ctx context.Context, sc *scope, cur string) error {
	st := sc.stage
	token := st.Annotations[deliveryv1.AnnotationReverify]
	reverify := token != "" && token != st.Status.LastHandledReverifyAt
	if isVerified(st, cur) && !reverify {
		return nil
	}
	if !reverify {
		token = st.Status.LastHandledReverifyAt
	}
	name := verifyRunName(st, cur, token)
	run := &deliveryv1.AnalysisRun{}
	err := r.client.Get(ctx, types.NamespacedName{Namespace: st.Namespace, Name: name}, run)
	switch {
	case apierrors.IsNotFound(err):
		run = r.verifyRun(sc, name, cur)
		if err := r.client.Create(ctx, run); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("cannot create AnalysisRun %s to verify revision %s: %w", name, short(cur), err)
		}
		st.Status.Verification = &deliveryv1.StageVerificationStatus{Revision: cur, Run: name, Phase: deliveryv1.PhaseRunning}
		return nil
	case err != nil:
		return fmt.Errorf("cannot read AnalysisRun %s: %w", name, err)
	case !metav1.IsControlledBy(run, st):
		return fmt.Errorf("AnalysisRun %s exists and was not created by Stage %s; it does not verify revision %s", name, st.Name, short(cur))
	}
	phase := run.Status.Phase
	if phase == "" {
		phase = deliveryv1.PhaseRunning
	}
	st.Status.Verification = &deliveryv1.StageVerificationStatus{Revision: cur, Run: name, Phase: phase}
	switch {
	case phase == deliveryv1.PhaseSuccessful:
		defer r.pruneRuns(ctx, st)
		st.Status.LastHandledReverifyAt = token
		at := metaNow(r.now())
		if run.Status.CompletedAt != nil {
			at = *run.Status.CompletedAt
		}
		if !isVerified(st, cur) {
			vr := deliveryv1.VerifiedRevision{Revision: cur, VerifiedAt: at, Run: name}
			if sc.following {
				vr.Author = r.authorOf(ctx, sc, sc.repo, cur)
			}
			r.addVerified(sc, vr)
		}
	case isFailedPhase(phase):
		defer r.pruneRuns(ctx, st)
		st.Status.LastHandledReverifyAt = token
		r.withdraw(sc, cur, fmt.Sprintf("its verification by AnalysisRun %s ended %s: %s", name, phase, run.Status.Message))
		return r.rollback(ctx, sc, cur, name, run.Status.Message)
	}
	return nil
}

func (r *Reconciler) verifyRun(sc *scope, name, rev string) *deliveryv1.AnalysisRun {
	st := sc.stage
	v := st.Spec.Verification
	args := append([]deliveryv1.Argument(nil), v.Args...)
	has := map[string]bool{}
	for _, a := range args {
		has[a.Name] = true
	}
	for k, val := range map[string]string{"revision": rev, "stage": st.Name} {
		if !has[k] {
			args = append(args, deliveryv1.Argument{Name: k, Value: &val})
		}
	}
	sa := st.Spec.ServiceAccountName
	if sa == "" {
		sa = sc.sync.Spec.ServiceAccountName
	}
	run := &deliveryv1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: st.Namespace,
			Labels: map[string]string{deliveryv1.LabelStage: st.Name, deliveryv1.LabelRevision: short(rev)}},
		Spec: deliveryv1.AnalysisRunSpec{
			Templates:          v.Templates,
			Args:               args,
			Subject:            &deliveryv1.SubjectReference{APIVersion: deliveryv1.GroupVersion.String(), Kind: "Stage", Name: st.Name},
			ServiceAccountName: sa,
		},
	}
	_ = controllerutil.SetControllerReference(st, run, r.client.Scheme())
	return run
}

// rollback returns a pinned stage to its previous verified revision after
// the Stage's own verification of rev failed. A stage that follows its
// GitRepository, or writes back, is only reported (its Sync's rollback
// settings apply).
func (r *Reconciler) rollback(ctx context.Context, sc *scope, rev, run, why string) error {
	st := sc.stage
	target := ""
	for _, v := range st.Status.VerifiedRevisions {
		if v.Revision != rev {
			target = v.Revision
			break
		}
	}
	if sc.following || sc.policy.Mode != deliveryv1.PromotionModePin || target == "" {
		r.verificationFailed(sc, rev, fmt.Sprintf("revision %s failed its verification by AnalysisRun %s (%s); no earlier verified revision to roll back to in this mode", short(rev), run, why))
		return nil
	}
	// Recorded once: the history, not the GitRepository (whose pin may
	// have been written by a reconcile whose status write then lost a
	// conflict), says whether this rollback was reported.
	already := len(st.Status.History) > 0 && st.Status.History[0].Result == resultRolledBack && st.Status.History[0].Revision == target
	if err := r.pin(ctx, sc, target); err != nil {
		return err
	}
	msg := fmt.Sprintf("revision %s failed its verification by AnalysisRun %s (%s); rolled back to %s", short(rev), run, why, short(target))
	if !already {
		for _, h := range st.Status.History {
			if h.Revision == rev && h.Result == resultPromoted && h.Promotion != "" {
				p := &deliveryv1.Promotion{}
				if err := r.client.Get(ctx, types.NamespacedName{Namespace: st.Namespace, Name: h.Promotion}, p); err == nil {
					r.setPhase(ctx, p, deliveryv1.PromotionFailed, deliveryv1.ReasonVerificationFailed, msg)
				}
				break
			}
		}
		r.addHistory(st, deliveryv1.StageHistoryEntry{Revision: target, Result: resultRolledBack, Time: metaNow(r.now()), Message: msg})
		r.recorder.Eventf(st, nil, corev1.EventTypeWarning, deliveryv1.EventRolledBack, "Rollback", "%s", eventmsg.Truncate(msg))
	}
	r.verificationFailed(sc, rev, msg)
	return nil
}

// verificationFailed reports, for this reconcile, that the stage's current
// revision failed its verification (summarize makes it the Ready reason
// unless a promotion is under way).
func (r *Reconciler) verificationFailed(sc *scope, _ string, msg string) {
	sc.failed = msg
}

func (r *Reconciler) addVerified(sc *scope, v deliveryv1.VerifiedRevision) {
	st := sc.stage
	st.Status.VerifiedRevisions = append([]deliveryv1.VerifiedRevision{v}, st.Status.VerifiedRevisions...)
	if len(st.Status.VerifiedRevisions) > maxKept {
		st.Status.VerifiedRevisions = st.Status.VerifiedRevisions[:maxKept]
	}
	st.Status.LastVerifiedRevision = v.Revision
	msg := fmt.Sprintf("revision %s verified in stage %s", short(v.Revision), st.Name)
	if v.Run != "" {
		msg += " by AnalysisRun " + v.Run
	}
	r.recorder.Eventf(st, nil, corev1.EventTypeNormal, deliveryv1.EventRevisionVerified, "Verify", "%s", msg)
}

// withdraw removes rev from the verified revisions.
func (r *Reconciler) withdraw(sc *scope, rev, why string) {
	st := sc.stage
	if rev == "" || !isVerified(st, rev) {
		return
	}
	kept := st.Status.VerifiedRevisions[:0:0]
	for _, v := range st.Status.VerifiedRevisions {
		if v.Revision != rev {
			kept = append(kept, v)
		}
	}
	st.Status.VerifiedRevisions = kept
	st.Status.LastVerifiedRevision = ""
	if len(kept) > 0 {
		st.Status.LastVerifiedRevision = kept[0].Revision
	}
	msg := fmt.Sprintf("revision %s withdrawn from the verified revisions of stage %s: %s", short(rev), st.Name, why)
	r.addHistory(st, deliveryv1.StageHistoryEntry{Revision: rev, Result: resultWithdrawn, Time: metaNow(r.now()), Message: msg})
	r.recorder.Eventf(st, nil, corev1.EventTypeWarning, deliveryv1.EventRevisionWithdrawn, "Withdraw", "%s", eventmsg.Truncate(msg))
}

func (r *Reconciler) addHistory(st *deliveryv1.Stage, h deliveryv1.StageHistoryEntry) {
	st.Status.History = append([]deliveryv1.StageHistoryEntry{h}, st.Status.History...)
	if len(st.Status.History) > maxKept {
		st.Status.History = st.Status.History[:maxKept]
	}
}

// runsKept is how many finished verification runs of a Stage are kept
// besides those its verified revisions name.
const runsKept = 5

// pruneRuns deletes the Stage's oldest finished verification runs that no
// verified revision names, keeping runsKept; only runs the Stage created
// (controlled by it) are considered.
func (r *Reconciler) pruneRuns(ctx context.Context, st *deliveryv1.Stage) {
	var l deliveryv1.AnalysisRunList
	if err := r.client.List(ctx, &l, client.InNamespace(st.Namespace), client.MatchingLabels{deliveryv1.LabelStage: st.Name}); err != nil {
		return
	}
	named := map[string]bool{}
	for _, v := range st.Status.VerifiedRevisions {
		named[v.Run] = true
	}
	if v := st.Status.Verification; v != nil {
		named[v.Run] = true
	}
	var done []deliveryv1.AnalysisRun
	for _, run := range l.Items {
		if metav1.IsControlledBy(&run, st) && run.Status.Completed() && !named[run.Name] && run.DeletionTimestamp.IsZero() {
			done = append(done, run)
		}
	}
	if len(done) <= runsKept {
		return
	}
	sort.Slice(done, func(i, j int) bool { return done[i].CreationTimestamp.Before(&done[j].CreationTimestamp) })
	for _, run := range done[:len(done)-runsKept] {
		uid := run.UID
		if err := r.client.Delete(ctx, &run, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			r.log.V(1).Info("cannot prune a verification run", "analysisRun", client.ObjectKeyFromObject(&run), "error", err.Error())
		}
	}
}
