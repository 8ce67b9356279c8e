package promotion

import (
	"context"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/testenv/managedtest"
)

// alwaysDeny is a deny window open at every moment (it opens every minute
// for an hour).
var alwaysDeny = deliveryv1.PromotionWindow{Kind: deliveryv1.WindowDeny, Schedule: "* * * * *", Duration: metav1.Duration{Duration: time.Hour}}

// TestDenyWindowHoldsApprovedPromotion: an approved revision waits while a
// deny window is open; a Promotion asking to override it is refused for a
// requester without the promotions/override permission and accepted, and
// recorded, for one with it.
func TestDenyWindowHoldsApprovedPromotion(t *testing.T) {
	startDeployers(t)
	startPromotion(t)
	p := newPipeline(t, pipelineOptions{productionAccount: true, production: deliveryv1.PromotionPolicy{
		Auto:     true,
		Windows:  []deliveryv1.PromotionWindow{alwaysDeny},
		Approval: &deliveryv1.ApprovalPolicy{Required: true, MinApprovals: 1},
	}})
	c1 := p.push(t, "c1")
	p.waitVerifiedInStaging(t, c1)
	waitStage(t, p.prod, "production", "awaits approval", func(st *deliveryv1.Stage) bool {
		return readyReason(st) == deliveryv1.ReasonAwaitingApproval
	})
	approve(t, p.prod, "production", c1, deliveryv1.DecisionApprove, "alice")
	st := waitStage(t, p.prod, "production", "held by the window", func(st *deliveryv1.Stage) bool {
		return readyReason(st) == deliveryv1.ReasonAwaitingWindow && st.Status.Pending != nil && st.Status.Pending.WaitingFor == deliveryv1.WaitingForWindow
	})
	if msg := conditions.Get(st, conditions.Ready).Message; !strings.Contains(msg, "deny window") || !strings.Contains(msg, "until") {
		t.Errorf("AwaitingWindow message %q names no window and end", msg)
	}
	if st.Status.Pending.Until == nil {
		t.Error("pending.until is not set")
	}

	// bob may create Promotions but not override.
	ask := func(user, name string) *deliveryv1.Promotion {
		pr := &deliveryv1.Promotion{ObjectMeta: metav1.ObjectMeta{Namespace: p.prod, Name: name},
			Spec: deliveryv1.PromotionSpec{Stage: "production", Revision: c1, OverrideWindows: true, RequestedBy: &deliveryv1.RequestUser{Username: user}}}
		if err := as(t, user).Create(context.Background(), pr); err != nil {
			t.Fatal(err)
		}
		return pr
	}
	ask("bob", "bob-override")
	managedtest.Eventually(t, 30*time.Second, "override refused", func() error {
		pr := getPromotion(t, p.prod, promotionName(st, c1))
		_ = pr
		bp := getPromotion(t, p.prod, "bob-override")
		for _, x := range []*deliveryv1.Promotion{pr, bp} {
			if c := conditions.Get(x, "OverrideRefused"); c != nil && c.Reason == deliveryv1.ReasonOverrideNotPermitted {
				return nil
			}
		}
		return errorf("no OverrideRefused yet")
	})
	if repoCommit(t, p.prod, "app") != p.c0 {
		t.Fatal("promoted through a deny window without an override permission")
	}
	grant(t, p.prod, "override", rbacv1.Subject{Kind: "User", Name: "olivia", APIGroup: "rbac.authorization.k8s.io"},
		rbacv1.PolicyRule{APIGroups: []string{"delivery.strata.dev"}, Resources: []string{"promotions"}, Verbs: []string{"create", "override"}})
	ask("olivia", "olivia-override")
	st = p.waitProduction(t, c1)
	if h := st.Status.History[0]; h.OverriddenBy != "olivia" || h.Revision != c1 {
		t.Errorf("history[0] = %+v, want the override by olivia recorded", h)
	}
	managedtest.HasEvent(t, env.Client, "production", deliveryv1.EventWindowOverridden)
}

// TestRestartMidPromotion: a promotion is recorded in flight but cannot be
// written (the stage's service account lacks patch on the GitRepository:
// AccessDenied); the manager stops; the right is granted; a new manager
// resumes the same promotion and completes it exactly once.
func TestRestartMidPromotion(t *testing.T) {
	startDeployers(t)
	stop := startPromotion(t)
	p := newPipeline(t, pipelineOptions{production: deliveryv1.PromotionPolicy{Auto: true}})
	// production's account may read staging but not pin.
	if err := env.Client.Create(context.Background(), serviceAccountObj(p.prod, "promoter")); err != nil {
		t.Fatal(err)
	}
	sa := serviceAccount(p.prod, "promoter")
	grant(t, p.staging, "read-stages", sa, rbacv1.PolicyRule{APIGroups: []string{"delivery.strata.dev"}, Resources: []string{"stages"}, Verbs: []string{"get"}})
	patchStage(t, p.prod, "production", func(s *deliveryv1.Stage) { s.Spec.ServiceAccountName = "promoter" })

	c1 := p.push(t, "c1")
	p.waitVerifiedInStaging(t, c1)
	st := waitStage(t, p.prod, "production", "in flight, access denied", func(st *deliveryv1.Stage) bool {
		return st.Status.InFlight != nil && readyReason(st) == deliveryv1.ReasonAccessDenied
	})
	if msg := conditions.Get(st, conditions.Ready).Message; !strings.Contains(msg, "may not patch GitRepository") {
		t.Errorf("AccessDenied message %q", msg)
	}
	inflight := *st.Status.InFlight
	stop()

	grant(t, p.prod, "promoter", sa, rbacv1.PolicyRule{APIGroups: []string{"gitops.strata.dev"}, Resources: []string{"gitrepositories"}, Verbs: []string{"get", "patch"}})
	startPromotion(t)
	st = p.waitProduction(t, c1)
	if n := hasHistory(st, c1, "Promoted"); n != 1 {
		t.Errorf("promoted %d times: %+v", n, st.Status.History)
	}
	if st.Status.History[0].Promotion != inflight.Promotion {
		t.Errorf("completed %s, the in-flight promotion was %s", st.Status.History[0].Promotion, inflight.Promotion)
	}
	var l deliveryv1.PromotionList
	if err := env.Client.List(context.Background(), &l, client.InNamespace(p.prod)); err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 1 || l.Items[0].Status.Phase != deliveryv1.PromotionSucceeded {
		t.Errorf("promotions after the restart: %d, first %+v", len(l.Items), l.Items[0].Status)
	}
}

// TestHostileTenant: a Stage cannot pin a GitRepository of another
// namespace (through a Sync whose sourceRef names it), nor read a stage of
// another namespace without a service account allowed to; the victim's
// repository is unchanged.
func TestHostileTenant(t *testing.T) {
	startDeployers(t)
	startPromotion(t)
	p := newPipeline(t, pipelineOptions{productionAccount: true, production: deliveryv1.PromotionPolicy{Auto: true}})
	c1 := p.push(t, "c1")
	p.waitVerifiedInStaging(t, c1)
	p.waitProduction(t, c1)

	mallory := newNamespace(t, "mallory")
	// A Sync of mallory's deploying production's GitRepository.
	s := syncOf(mallory, "steal", "app", "app")
	s.Spec.SourceRef.Namespace = p.prod
	s.Spec.Suspend = true
	create(t, s)
	create(t, &deliveryv1.Stage{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: "steal"},
		Spec: deliveryv1.StageSpec{SyncRef: deliveryv1.LocalReference{Name: "steal"}, Source: deliveryv1.StageSource{Stage: "staging", Namespace: p.staging},
			Promotion: deliveryv1.PromotionPolicy{Mode: deliveryv1.PromotionModePin, Auto: true}}})
	st := waitStage(t, mallory, "steal", "stalled", func(st *deliveryv1.Stage) bool {
		return conditions.IsTrue(st, conditions.Stalled) && readyReason(st) == deliveryv1.ReasonAccessDenied
	})
	if msg := conditions.Get(st, conditions.Ready).Message; !strings.Contains(msg, "another namespace") {
		t.Errorf("message %q", msg)
	}
	// A stage of mallory's reading staging without a service account.
	create(t, gitRepository(mallory, "own", p.repo.URL(), &gitopsv1.GitRepositoryRef{Branch: "main", Commit: p.c0}))
	create(t, syncOf(mallory, "own", "own", "app"))
	create(t, &deliveryv1.Stage{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: "peek"},
		Spec: deliveryv1.StageSpec{SyncRef: deliveryv1.LocalReference{Name: "own"}, Source: deliveryv1.StageSource{Stage: "staging", Namespace: p.staging},
			Promotion: deliveryv1.PromotionPolicy{Mode: deliveryv1.PromotionModePin, Auto: true}}})
	waitStage(t, mallory, "peek", "stalled", func(st *deliveryv1.Stage) bool {
		return conditions.IsTrue(st, conditions.Stalled) && readyReason(st) == deliveryv1.ReasonAccessDenied
	})
	// ... nor with a service account that may not get it.
	if err := env.Client.Create(context.Background(), serviceAccountObj(mallory, "nobody")); err != nil {
		t.Fatal(err)
	}
	create(t, &deliveryv1.Stage{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: "peek-sa"},
		Spec: deliveryv1.StageSpec{SyncRef: deliveryv1.LocalReference{Name: "own"}, ServiceAccountName: "nobody",
			Source:    deliveryv1.StageSource{Stage: "staging", Namespace: p.staging},
			Promotion: deliveryv1.PromotionPolicy{Mode: deliveryv1.PromotionModePin, Auto: true}}})
	st = waitStage(t, mallory, "peek-sa", "access denied", func(st *deliveryv1.Stage) bool {
		return readyReason(st) == deliveryv1.ReasonAccessDenied
	})
	if msg := conditions.Get(st, conditions.Ready).Message; !strings.Contains(msg, "may not get Stage") {
		t.Errorf("message %q", msg)
	}
	// The victims are unchanged.
	if repoCommit(t, p.prod, "app") != c1 || repoCommit(t, mallory, "own") != p.c0 {
		t.Fatalf("pins changed: production %s, mallory's %s", repoCommit(t, p.prod, "app"), repoCommit(t, mallory, "own"))
	}
	// Approvals are immutable.
	a := approve(t, p.prod, "production", c1, deliveryv1.DecisionApprove, "alice")
	a.Spec.Approver = "mallory"
	if err := env.Client.Update(context.Background(), a); err == nil || !strings.Contains(err.Error(), "immutable") {
		t.Errorf("changing an Approval: %v, want refused as immutable", err)
	}
}

// TestFourEyes: staging records the author of each verified commit; the
// author's approval alone does not promote it to production (reason
// SelfApproval on the Approval), with another approver's it does. The
// approval gate comes from the Pipeline's defaults.
func TestFourEyes(t *testing.T) {
	startDeployers(t)
	startPromotion(t)
	p := newPipeline(t, pipelineOptions{productionAccount: true, production: deliveryv1.PromotionPolicy{Auto: true}})
	create(t, &deliveryv1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: p.prod, Name: "web"},
		Spec: deliveryv1.PipelineSpec{Stages: []string{p.staging + "/staging", "production"},
			Defaults: &deliveryv1.PipelineDefaults{Approval: &deliveryv1.ApprovalPolicy{Required: true, MinApprovals: 1}}}})
	c1 := p.push(t, "c1")
	st := p.waitVerifiedInStaging(t, c1)
	if got := st.Status.VerifiedRevisions[0].Author; got != "test@strata.dev" {
		t.Fatalf("author of c1 = %q, want the commit's author test@strata.dev", got)
	}
	waitStage(t, p.prod, "production", "awaits approval", func(st *deliveryv1.Stage) bool {
		return readyReason(st) == deliveryv1.ReasonAwaitingApproval
	})
	self := approve(t, p.prod, "production", c1, deliveryv1.DecisionApprove, "test@strata.dev")
	waitCounted(t, self, metav1.ConditionFalse, deliveryv1.ReasonSelfApproval)
	prod := waitStage(t, p.prod, "production", "still awaits approval", func(st *deliveryv1.Stage) bool {
		c := conditions.Get(st, conditions.Ready)
		return c != nil && c.Reason == deliveryv1.ReasonAwaitingApproval && strings.Contains(c.Message, "cannot approve alone")
	})
	if repoCommit(t, p.prod, "app") != p.c0 {
		t.Fatalf("the author's approval alone promoted c1: %s", describe(prod))
	}
	approve(t, p.prod, "production", c1, deliveryv1.DecisionApprove, "alice")
	p.waitProduction(t, c1)
	waitCounted(t, self, metav1.ConditionTrue, deliveryv1.ReasonCounted)
}
