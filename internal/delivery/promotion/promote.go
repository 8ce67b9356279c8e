package promotion

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	"github.com/strata-dev/strata/internal/kit/patch"
)

// Promotion: the stage's Promotions are handled one at a time, oldest
// first. The one in flight (status.inFlight, written with optimistic
// locking before anything is changed) is finished first; otherwise the
// oldest open one passes its gates in order: verified upstream, not
// rejected, soaked, approved, inside the windows. Then it is recorded as
// in flight, and only the next reconcile writes it, so a restart between
// the two resumes the same promotion and writing is idempotent.

func isFinal(phase string) bool {
	switch phase {
	case deliveryv1.PromotionSucceeded, deliveryv1.PromotionRejected, deliveryv1.PromotionWithdrawn,
		deliveryv1.PromotionSuperseded, deliveryv1.PromotionFailed:
		return true
	}
	return false
}

// promotionName is the name of the Promotion Strata creates for rev.
func promotionName(st *deliveryv1.Stage, rev string) string {
	name := st.Name
	if len(name) > 40 {
		name = strings.TrimRight(name[:40], "-.")
	}
	return name + "-" + short(rev)
}

func (r *Reconciler) promote(ctx context.Context, sc *scope) error {
	st := sc.stage
	var pl deliveryv1.PromotionList
	if err := r.client.List(ctx, &pl, client.InNamespace(st.Namespace), client.MatchingFields{indexStage: st.Name}); err != nil {
		return fmt.Errorf("cannot list Promotions: %w", err)
	}
	var al deliveryv1.ApprovalList
	if err := r.client.List(ctx, &al, client.InNamespace(st.Namespace), client.MatchingFields{indexStage: st.Name}); err != nil {
		return fmt.Errorf("cannot list Approvals: %w", err)
	}
	proms := pl.Items
	sortPromotions(proms)

	if f := st.Status.InFlight; f != nil {
		var p *deliveryv1.Promotion
		for i := range proms {
			if proms[i].Name == f.Promotion {
				p = &proms[i]
			}
		}
		return r.finish(ctx, sc, p, al.Items)
	}
	pendingName := ""
	if st.Status.Pending != nil {
		pendingName = st.Status.Pending.Promotion
		sc.prevPending = st.Status.Pending.DeepCopy()
	}
	st.Status.Pending = nil
	if st.Spec.Suspend || sc.following {
		for i := range proms {
			if p := &proms[i]; !isFinal(p.Status.Phase) && sc.following {
				r.setPhase(ctx, p, deliveryv1.PromotionFailed, deliveryv1.ReasonPromotionFailed,
					fmt.Sprintf("stage %s follows GitRepository %s; nothing is promoted into it", st.Name, sc.repo.Name))
			}
		}
		return nil
	}

	if created, err := r.autoPromote(ctx, sc, proms); err != nil {
		return err
	} else if created != nil {
		proms = append(proms, *created)
	}
	sc.order(proms, pendingName)

	first, blocker := true, ""
	for i := range proms {
		p := &proms[i]
		if isFinal(p.Status.Phase) {
			continue
		}
		if !first {
			r.setPhase(ctx, p, deliveryv1.PromotionPending, deliveryv1.ReasonQueued, fmt.Sprintf("waiting for Promotion %s of stage %s", blocker, st.Name))
			continue
		}
		var same []*deliveryv1.Promotion
		for j := range proms {
			if q := &proms[j]; j != i && !isFinal(q.Status.Phase) && q.Spec.Revision != "" && (matches(p.Spec.Revision, q.Spec.Revision) || matches(q.Spec.Revision, p.Spec.Revision)) {
				same = append(same, q)
			}
		}
		done, err := r.gate(ctx, sc, p, same, al.Items)
		if err != nil {
			return err
		}
		if !done {
			first, blocker = false, p.Name
		}
		if st.Status.InFlight != nil {
			// Recorded; the next reconcile writes it, after the record is
			// stored.
			sc.requeueIn(time.Millisecond)
			return nil
		}
	}
	return nil
}

// autoPromote creates the Promotion of the newest revision verified
// upstream when spec.promotion.auto is set.
func (r *Reconciler) autoPromote(ctx context.Context, sc *scope, proms []deliveryv1.Promotion) (*deliveryv1.Promotion, error) {
	st := sc.stage
	if !sc.policy.Auto || len(sc.candidates) == 0 {
		return nil, nil
	}
	rev := sc.candidates[0].Revision
	// Until the Sync has applied a revision, the stage does not know where
	// it stands: nothing is promoted automatically.
	if rev == st.Status.CurrentRevision || st.Status.CurrentRevision == "" {
		return nil, nil
	}
	name := promotionName(st, rev)
	for i := range proms {
		p := &proms[i]
		if p.Name == name || (!isFinal(p.Status.Phase) && matches(rev, p.Spec.Revision)) {
			return nil, nil
		}
	}
	if sc.policy.SupersedePending {
		for i := range proms {
			p := &proms[i]
			if !isFinal(p.Status.Phase) && p.Status.WaitingFor != "" && len(p.Status.ApprovedBy) == 0 {
				r.setPhase(ctx, p, deliveryv1.PromotionSuperseded, deliveryv1.ReasonSuperseded, fmt.Sprintf("revision %s, verified later in %s, replaces it (spec.promotion.supersedePending)", short(rev), sc.upstreamName))
			}
		}
	}
	p := &deliveryv1.Promotion{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: st.Namespace,
			Labels: map[string]string{deliveryv1.LabelStage: st.Name, deliveryv1.LabelRevision: short(rev)}},
		Spec: deliveryv1.PromotionSpec{Stage: st.Name, Revision: rev},
	}
	_ = controllerutil.SetOwnerReference(st, p, r.client.Scheme())
	if err := r.client.Create(ctx, p); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("cannot create Promotion %s: %w", name, err)
	}
	r.recorder.Eventf(st, p, corev1.EventTypeNormal, deliveryv1.EventPromotionStarted, "Promote",
		"%s", fmt.Sprintf("revision %s verified in %s: created Promotion %s", short(rev), sc.upstreamName, name))
	return p, nil
}

// candidate finds the upstream verified revision a Promotion names.
func (sc *scope) candidate(p *deliveryv1.Promotion) *deliveryv1.VerifiedRevision {
	for i := range sc.candidates {
		if matches(sc.candidates[i].Revision, p.Spec.Revision) {
			return &sc.candidates[i]
		}
	}
	return nil
}

// gate moves p through its gates; it returns true when p reached a final
// phase (the next one may go).
func (r *Reconciler) gate(ctx context.Context, sc *scope, p *deliveryv1.Promotion, same []*deliveryv1.Promotion, approvals []deliveryv1.Approval) (bool, error) {
	st := sc.stage
	now := r.now()
	c := sc.candidate(p)
	if c == nil {
		switch {
		case p.Status.Revision == "" && sc.upstreamCurrent != "" && matches(sc.upstreamCurrent, p.Spec.Revision):
			r.wait(ctx, sc, p, sc.upstreamCurrent, deliveryv1.WaitingForVerification, nil, "",
				fmt.Sprintf("revision %s is deployed in %s and not verified there yet", short(sc.upstreamCurrent), sc.upstreamName))
			return false, nil
		case p.Status.Revision != "":
			msg := fmt.Sprintf("revision %s is no longer verified in %s (withdrawn); it is not promoted to stage %s", short(p.Status.Revision), sc.upstreamName, st.Name)
			r.setPhase(ctx, p, deliveryv1.PromotionWithdrawn, deliveryv1.ReasonWithdrawn, msg)
			r.recorder.Eventf(st, p, corev1.EventTypeWarning, deliveryv1.EventRevisionWithdrawn, "Promote", "%s", eventmsg.Truncate(msg))
		default:
			r.setPhase(ctx, p, deliveryv1.PromotionFailed, deliveryv1.ReasonNotVerifiedUpstream,
				fmt.Sprintf("revision %s is not among the verified revisions of %s", p.Spec.Revision, sc.upstreamName))
		}
		return true, nil
	}
	rev := c.Revision
	p.Status.Revision = rev
	if rev == st.Status.CurrentRevision {
		r.setPhase(ctx, p, deliveryv1.PromotionSuperseded, deliveryv1.ReasonSuperseded, fmt.Sprintf("stage %s already runs revision %s", st.Name, short(rev)))
		return true, nil
	}

	// Approvals (a Reject from a counted approver blocks the revision).
	approvedBy, rejectedBy, missing := r.countApprovals(ctx, sc, rev, c.Author, approvals)
	if rejectedBy != "" {
		msg := fmt.Sprintf("revision %s rejected for stage %s by %s", short(rev), st.Name, rejectedBy)
		r.setPhase(ctx, p, deliveryv1.PromotionRejected, deliveryv1.ReasonRevisionRejected, msg)
		r.recorder.Eventf(st, p, corev1.EventTypeNormal, deliveryv1.EventRevisionRejected, "Promote", "%s", eventmsg.Truncate(msg))
		return true, nil
	}
	p.Status.ApprovedBy = approvedBy

	soaked := now.Sub(c.VerifiedAt.Time).Truncate(time.Second)
	runText := ""
	if c.Run != "" {
		runText = " by AnalysisRun " + c.Run
	}
	if d := sc.policy.RequiredSoakTime; d != nil && soaked < d.Duration {
		until := metav1.NewTime(c.VerifiedAt.Add(d.Duration))
		r.wait(ctx, sc, p, rev, deliveryv1.WaitingForSoak, &until, c.Run,
			fmt.Sprintf("revision %s verified in %s%s soaks until %s (required %s)", short(rev), sc.upstreamName, runText, until.UTC().Format(time.RFC3339), d.Duration))
		sc.requeueIn(until.Sub(now))
		return false, nil
	}
	if missing != "" {
		r.wait(ctx, sc, p, rev, deliveryv1.WaitingForApproval, nil, c.Run,
			fmt.Sprintf("revision %s (verified in %s%s, soaked %s) awaits approval: %s", short(rev), sc.upstreamName, runText, soaked.Truncate(time.Minute), missing))
		return false, nil
	}
	if isBlocked, why, until := blocked(sc.windows, now); isBlocked {
		// Any open Promotion of the same revision may carry the override.
		by := ""
		for _, q := range append([]*deliveryv1.Promotion{p}, same...) {
			b, err := r.override(ctx, sc, q)
			if err != nil {
				return false, err
			}
			if b != "" && by == "" {
				by = b
			}
		}
		if by == "" {
			var u *metav1.Time
			msg := fmt.Sprintf("revision %s is ready to promote; %s", short(rev), why)
			if !until.IsZero() {
				t := metav1.NewTime(until)
				u = &t
				msg += " until " + until.UTC().Format(time.RFC3339)
				sc.requeueIn(until.Sub(now))
			}
			r.wait(ctx, sc, p, rev, deliveryv1.WaitingForWindow, u, c.Run, msg)
			return false, nil
		}
		p.Status.OverriddenBy = by
		r.recorder.Eventf(st, p, corev1.EventTypeWarning, deliveryv1.EventWindowOverridden, "Promote", "%s",
			eventmsg.Truncate(fmt.Sprintf("%s overrode the promotion window for revision %s (Promotion %s): %s", by, short(rev), p.Name, why)))
	}

	// Every gate passed: record the promotion as in flight. Nothing is
	// written to Git or the GitRepository before this record is stored.
	st.Status.Pending = nil
	st.Status.InFlight = &deliveryv1.InFlightPromotion{Promotion: p.Name, Revision: rev, StartedAt: metaNow(now)}
	t := metaNow(now)
	p.Status.StartedAt = &t
	p.Status.WaitingFor = ""
	r.setPhase(ctx, p, deliveryv1.PromotionPromoting, deliveryv1.ReasonPromoting, fmt.Sprintf("promoting revision %s to stage %s", short(rev), st.Name))
	return false, nil
}

// wait records what p (and so the stage) waits for.
func (r *Reconciler) wait(ctx context.Context, sc *scope, p *deliveryv1.Promotion, rev, what string, until *metav1.Time, run, msg string) {
	st := sc.stage
	since := metaNow(r.now())
	if old := sc.prevPending; old != nil && old.Promotion == p.Name && old.WaitingFor == what {
		since = old.Since
	} else if c := conditions.Get(p, conditions.Ready); c != nil && p.Status.WaitingFor == what {
		since = c.LastTransitionTime
	}
	if old := sc.prevPending; old == nil || old.Promotion != p.Name || old.WaitingFor != what {
		r.recorder.Eventf(st, p, corev1.EventTypeNormal, reasonOf(what), "Promote", "%s", eventmsg.Truncate(msg))
	}
	st.Status.Pending = &deliveryv1.PendingPromotion{Revision: rev, Promotion: p.Name, WaitingFor: what, Since: since, Until: until, Run: run, Message: msg}
	p.Status.WaitingFor = what
	r.setPhase(ctx, p, deliveryv1.PromotionPending, reasonOf(what), msg)
}

// reasonOf is the Ready reason of waiting for what.
func reasonOf(what string) string {
	return map[string]string{
		deliveryv1.WaitingForApproval:     deliveryv1.ReasonAwaitingApproval,
		deliveryv1.WaitingForSoak:         deliveryv1.ReasonAwaitingSoak,
		deliveryv1.WaitingForWindow:       deliveryv1.ReasonAwaitingWindow,
		deliveryv1.WaitingForVerification: deliveryv1.ReasonAwaitingVerification,
	}[what]
}

// countApprovals returns the approvers counted for rev, the first counted
// rejecter, and what is still missing ("" when approved). It records on
// each Approval whether it counted.
func (r *Reconciler) countApprovals(ctx context.Context, sc *scope, rev, author string, approvals []deliveryv1.Approval) (approvedBy []string, rejectedBy, missing string) {
	pol := sc.policy.Approval
	required := pol != nil && pol.Required
	var approvers deliveryv1.Approvers
	minApprovals := int32(1)
	allowSelf := false
	if pol != nil {
		approvers = pol.Approvers
		if pol.MinApprovals > 0 {
			minApprovals = pol.MinApprovals
		}
		allowSelf = pol.AllowSelfApproval
	}
	others := 0
	var selfApprovals []*deliveryv1.Approval
	for i := range approvals {
		a := &approvals[i]
		if !matches(rev, a.Spec.Revision) {
			continue
		}
		if !isApprover(approvers, a) {
			r.markApproval(ctx, a, metav1.ConditionFalse, deliveryv1.ReasonNotAnApprover,
				fmt.Sprintf("%s is not among the approvers of stage %s (spec.promotion.approval.approvers)", a.Spec.Approver, sc.stage.Name))
			continue
		}
		if a.Spec.Decision == deliveryv1.DecisionReject {
			if rejectedBy == "" {
				rejectedBy = a.Spec.Approver
			}
			r.markApproval(ctx, a, metav1.ConditionTrue, deliveryv1.ReasonCounted, "rejection counted: revision "+short(rev)+" will not be promoted to stage "+sc.stage.Name)
			continue
		}
		if slices.Contains(approvedBy, a.Spec.Approver) {
			r.markApproval(ctx, a, metav1.ConditionTrue, deliveryv1.ReasonCounted, "approval counted (the approver approved before)")
			continue
		}
		if !allowSelf && author != "" && isAuthor(a.Spec.Approver, author) {
			selfApprovals = append(selfApprovals, a)
			approvedBy = append(approvedBy, a.Spec.Approver)
			continue
		}
		others++
		approvedBy = append(approvedBy, a.Spec.Approver)
		r.markApproval(ctx, a, metav1.ConditionTrue, deliveryv1.ReasonCounted, "approval counted for revision "+short(rev))
	}
	for _, a := range selfApprovals {
		if others > 0 {
			r.markApproval(ctx, a, metav1.ConditionTrue, deliveryv1.ReasonCounted, "approval by the commit's author counted with another approver's")
		} else {
			r.markApproval(ctx, a, metav1.ConditionFalse, deliveryv1.ReasonSelfApproval,
				fmt.Sprintf("%s authored revision %s and cannot approve it alone (four-eyes rule)", a.Spec.Approver, short(rev)))
		}
	}
	slices.Sort(approvedBy)
	if !required {
		return approvedBy, rejectedBy, ""
	}
	n := int32(len(approvedBy))
	if len(selfApprovals) > 0 && others == 0 {
		n = 0
	}
	switch {
	case n < minApprovals:
		missing = fmt.Sprintf("%d of %d approvals", n, minApprovals)
		if len(selfApprovals) > 0 && others == 0 {
			missing += fmt.Sprintf(" (the author %s cannot approve alone)", author)
		}
	}
	return approvedBy, rejectedBy, missing
}

// isAuthor says whether the approver is the commit's author (email, or its
// part before @).
func isAuthor(approver, author string) bool {
	if strings.EqualFold(approver, author) {
		return true
	}
	local, _, ok := strings.Cut(author, "@")
	return ok && strings.EqualFold(approver, local)
}

func isApprover(ap deliveryv1.Approvers, a *deliveryv1.Approval) bool {
	if len(ap.Users) == 0 && len(ap.Groups) == 0 {
		return true
	}
	if slices.Contains(ap.Users, a.Spec.Approver) {
		return true
	}
	for _, g := range a.Spec.Groups {
		if slices.Contains(ap.Groups, g) {
			return true
		}
	}
	return false
}

func (r *Reconciler) markApproval(ctx context.Context, a *deliveryv1.Approval, status metav1.ConditionStatus, reason, msg string) {
	h := patch.NewHelper(r.client, a)
	conditions.Set(a, deliveryv1.ConditionCounted, status, reason, msg)
	a.Status.ObservedGeneration = a.Generation
	if c := conditions.Get(h.Base().(*deliveryv1.Approval), deliveryv1.ConditionCounted); c == nil || c.Reason != reason {
		if reason == deliveryv1.ReasonNotAnApprover || reason == deliveryv1.ReasonSelfApproval {
			r.recorder.Eventf(a, nil, corev1.EventTypeWarning, deliveryv1.EventApprovalIgnored, "Count", "%s", eventmsg.Truncate(msg))
		}
	}
	if err := h.Status(ctx, a); err != nil {
		r.log.V(1).Info("cannot write approval status", "approval", client.ObjectKeyFromObject(a), "error", err.Error())
	}
}

// override returns who overrode the windows for p: its requester, when the
// Promotion asks for it and the requester has the override verb on
// promotions in the namespace (a SubjectAccessReview).
func (r *Reconciler) override(ctx context.Context, sc *scope, p *deliveryv1.Promotion) (string, error) {
	if !p.Spec.OverrideWindows {
		return "", nil
	}
	if p.Status.OverriddenBy != "" {
		return p.Status.OverriddenBy, nil
	}
	by := p.Spec.RequestedBy
	if by == nil {
		conditions.Set(p, "OverrideRefused", metav1.ConditionTrue, deliveryv1.ReasonOverrideNotPermitted, "spec.overrideWindows is set without spec.requestedBy")
		return "", nil
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: by.Username, Groups: by.Groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: p.Namespace, Verb: "override", Group: deliveryv1.GroupVersion.Group, Resource: "promotions", Name: p.Name,
		},
	}}
	if err := r.client.Create(ctx, sar); err != nil {
		return "", fmt.Errorf("cannot check the override permission of %s: %w", by.Username, err)
	}
	if !sar.Status.Allowed {
		conditions.Set(p, "OverrideRefused", metav1.ConditionTrue, deliveryv1.ReasonOverrideNotPermitted,
			fmt.Sprintf("%s may not override promotion windows (verb override on promotions.delivery.strata.dev in %s)", by.Username, p.Namespace))
		return "", nil
	}
	conditions.Remove(p, "OverrideRefused")
	return by.Username, nil
}

// setPhase writes p's phase, Ready condition and status (optimistic lock:
// a stale read is retried, never overwrites).
func (r *Reconciler) setPhase(ctx context.Context, p *deliveryv1.Promotion, phase, reason, msg string) {
	// Read live: the phase is what the next step of this promotion
	// relies on, and a write from a stale cache would be refused.
	base := &deliveryv1.Promotion{}
	if err := r.reader.Get(ctx, client.ObjectKeyFromObject(p), base); err != nil {
		base = p.DeepCopy()
	}
	h := patch.NewHelper(r.client, base)
	base.Status = *p.Status.DeepCopy()
	base.Status.Phase = phase
	base.Status.ObservedGeneration = base.Generation
	if isFinal(phase) {
		base.Status.WaitingFor = ""
		if base.Status.CompletedAt == nil {
			t := metaNow(r.now())
			base.Status.CompletedAt = &t
		}
	}
	switch {
	case phase == deliveryv1.PromotionSucceeded:
		conditions.MarkReady(base, reason, msg)
	case phase == deliveryv1.PromotionPromoting:
		conditions.MarkProgressing(base, reason, msg)
	case isFinal(phase):
		conditions.MarkStalled(base, reason, msg)
	case reason == deliveryv1.ReasonAwaitingApproval:
		conditions.MarkFailed(base, reason, msg)
	default:
		conditions.MarkProgressing(base, reason, msg)
	}
	if err := h.Status(ctx, base, patch.WithOptimisticLock()); err != nil {
		r.log.V(1).Info("cannot write promotion status", "promotion", client.ObjectKeyFromObject(p), "error", err.Error())
	}
	p.Status = base.Status
}

// order sorts the open promotions of a stage: the one already pending goes
// first (a newer revision does not reset its soak or its approvals), then
// by creation, then (for Promotions created in the same second) the
// revision verified upstream earlier, then by name.
func (sc *scope) order(ps []deliveryv1.Promotion, pending string) {
	index := func(p *deliveryv1.Promotion) int {
		for i := range sc.candidates {
			if matches(sc.candidates[i].Revision, p.Spec.Revision) {
				return i
			}
		}
		return -1
	}
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := &ps[i], &ps[j]
		if (a.Name == pending) != (b.Name == pending) {
			return a.Name == pending
		}
		ta, tb := a.CreationTimestamp, b.CreationTimestamp
		if !ta.Equal(&tb) {
			return ta.Before(&tb)
		}
		if ia, ib := index(a), index(b); ia != ib {
			return ia > ib
		}
		return a.Name < b.Name
	})
}
