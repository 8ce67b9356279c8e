package promotion

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/testenv/managedtest"
)

// pipeline is staging and production in two namespaces, deploying one Git
// repository: staging follows main, production is pinned by its Stage.
type pipeline struct {
	repo          *gittest.Repo
	staging, prod string
	c0            string
}

type pipelineOptions struct {
	production        deliveryv1.PromotionPolicy
	stagingVerify     *deliveryv1.StageVerification
	productionAccount bool // give the production Stage a service account with the rights it needs
	stagingSync       func(*gitopsv1.Sync)
}

func newPipeline(t *testing.T, o pipelineOptions) *pipeline {
	t.Helper()
	p := &pipeline{repo: newRepo(t, "app"), staging: newNamespace(t, "staging"), prod: newNamespace(t, "production")}
	p.c0 = p.repo.Commit("c0", appFiles("c0"))
	create(t, gitRepository(p.staging, "app", p.repo.URL(), &gitopsv1.GitRepositoryRef{Branch: "main"}))
	ss := syncOf(p.staging, "app", "app", "app")
	if o.stagingSync != nil {
		o.stagingSync(ss)
	}
	create(t, ss)
	create(t, &deliveryv1.Stage{ObjectMeta: metav1.ObjectMeta{Namespace: p.staging, Name: "staging"},
		Spec: deliveryv1.StageSpec{Pipeline: "web", SyncRef: deliveryv1.LocalReference{Name: "app"},
			Source: deliveryv1.StageSource{GitRepository: "app"}, Verification: o.stagingVerify}})

	create(t, gitRepository(p.prod, "app", p.repo.URL(), &gitopsv1.GitRepositoryRef{Branch: "main", Commit: p.c0}))
	create(t, syncOf(p.prod, "app", "app", "app"))
	spec := deliveryv1.StageSpec{Pipeline: "web", SyncRef: deliveryv1.LocalReference{Name: "app"},
		Source: deliveryv1.StageSource{Stage: "staging", Namespace: p.staging}, Promotion: o.production}
	if o.productionAccount {
		create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: p.prod, Name: "promoter"}})
		sa := serviceAccount(p.prod, "promoter")
		grant(t, p.prod, "promoter", sa, rbacv1.PolicyRule{APIGroups: []string{"gitops.strata.dev"}, Resources: []string{"gitrepositories"}, Verbs: []string{"get", "patch"}})
		grant(t, p.staging, "read-stages", sa, rbacv1.PolicyRule{APIGroups: []string{"delivery.strata.dev"}, Resources: []string{"stages"}, Verbs: []string{"get"}})
		spec.ServiceAccountName = "promoter"
	}
	if spec.Promotion.Mode == "" {
		spec.Promotion.Mode = deliveryv1.PromotionModePin
	}
	create(t, &deliveryv1.Stage{ObjectMeta: metav1.ObjectMeta{Namespace: p.prod, Name: "production"}, Spec: spec})
	allowApprovals(t, p.prod)
	return p
}

// push commits to main and has staging fetch it.
func (p *pipeline) push(t *testing.T, version string) string {
	t.Helper()
	h := p.repo.Commit(version, appFiles(version))
	fetchNow(t, p.staging, "app")
	return h
}

func (p *pipeline) waitVerifiedInStaging(t *testing.T, rev string) *deliveryv1.Stage {
	t.Helper()
	return waitStage(t, p.staging, "staging", "verified "+short(rev), func(st *deliveryv1.Stage) bool {
		return st.Status.CurrentRevision == rev && verified(st, rev)
	})
}

func (p *pipeline) waitProduction(t *testing.T, rev string) *deliveryv1.Stage {
	t.Helper()
	st := waitStage(t, p.prod, "production", "runs "+short(rev), func(st *deliveryv1.Stage) bool {
		return st.Status.CurrentRevision == rev && st.Status.InFlight == nil && verified(st, rev)
	})
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: p.prod, Name: "web"}, cm); err != nil {
		t.Fatal(err)
	}
	if got := repoCommit(t, p.prod, "app"); got != rev {
		t.Fatalf("production GitRepository spec.ref.commit = %s, want %s", got, rev)
	}
	return st
}

// TestAutoPromotionWithApprovals: a commit reaches staging on its own and
// is verified there; production, with auto promotion and an approval gate
// (a group and a user, two approvals), waits with AwaitingApproval naming
// the revision; an outsider's approval does not count, a repeated approval
// counts once; two approvers promote it by pinning production's
// GitRepository as production's service account; a rejected revision never
// reaches production.
func TestAutoPromotionWithApprovals(t *testing.T) {
	startDeployers(t)
	startPromotion(t)
	p := newPipeline(t, pipelineOptions{productionAccount: true, production: deliveryv1.PromotionPolicy{
		Auto: true,
		Approval: &deliveryv1.ApprovalPolicy{Required: true, MinApprovals: 2,
			Approvers: deliveryv1.Approvers{Users: []string{"carol"}, Groups: []string{"release-managers"}}},
	}})
	waitStage(t, p.prod, "production", "runs c0", func(st *deliveryv1.Stage) bool { return st.Status.CurrentRevision == p.c0 })

	c1 := p.push(t, "c1")
	p.waitVerifiedInStaging(t, c1)
	st := waitStage(t, p.prod, "production", "awaits approval of c1", func(st *deliveryv1.Stage) bool {
		return st.Status.Pending != nil && st.Status.Pending.Revision == c1 && readyReason(st) == deliveryv1.ReasonAwaitingApproval
	})
	msg := conditions.Get(st, conditions.Ready).Message
	if !strings.Contains(msg, short(c1)) || !strings.Contains(msg, "stage staging") || !strings.Contains(msg, "0 of 2 approvals") || !strings.Contains(msg, "soaked") {
		t.Errorf("AwaitingApproval message %q does not name the revision, where it was verified, its soak and the approvals", msg)
	}
	if st.Status.Pending.WaitingFor != deliveryv1.WaitingForApproval {
		t.Errorf("pending.waitingFor = %s", st.Status.Pending.WaitingFor)
	}
	prom := promotionName(st, c1)
	managedtest.HasEvent(t, env.Client, "production", deliveryv1.ReasonAwaitingApproval)

	bob := approve(t, p.prod, "production", c1[:7], deliveryv1.DecisionApprove, "bob", "developers")
	waitCounted(t, bob, metav1.ConditionFalse, deliveryv1.ReasonNotAnApprover)
	alice := approve(t, p.prod, "production", c1, deliveryv1.DecisionApprove, "alice", "release-managers")
	waitCounted(t, alice, metav1.ConditionTrue, deliveryv1.ReasonCounted)
	again := approve(t, p.prod, "production", c1, deliveryv1.DecisionApprove, "alice", "release-managers")
	waitCounted(t, again, metav1.ConditionTrue, deliveryv1.ReasonCounted)
	st = waitStage(t, p.prod, "production", "1 of 2 approvals", func(st *deliveryv1.Stage) bool {
		c := conditions.Get(st, conditions.Ready)
		return c != nil && c.Reason == deliveryv1.ReasonAwaitingApproval && strings.Contains(c.Message, "1 of 2 approvals")
	})
	if repoCommit(t, p.prod, "app") != p.c0 {
		t.Fatal("production was pinned before it was approved")
	}

	approve(t, p.prod, "production", c1, deliveryv1.DecisionApprove, "carol")
	st = p.waitProduction(t, c1)
	if hasHistory(st, c1, "Promoted") != 1 {
		t.Errorf("history: %+v", st.Status.History)
	}
	if got := st.Status.History[0].ApprovedBy; strings.Join(got, ",") != "alice,carol" {
		t.Errorf("history approvedBy = %v, want alice and carol", got)
	}
	pr := waitPromotion(t, p.prod, prom, deliveryv1.PromotionSucceeded)
	if pr.Spec.Revision != c1 {
		t.Errorf("promotion revision %s", pr.Spec.Revision)
	}
	managedtest.HasEvent(t, env.Client, "production", deliveryv1.EventPromoted)

	// A rejected revision never reaches production.
	c2 := p.push(t, "c2")
	p.waitVerifiedInStaging(t, c2)
	waitStage(t, p.prod, "production", "awaits approval of c2", func(st *deliveryv1.Stage) bool {
		return st.Status.Pending != nil && st.Status.Pending.Revision == c2
	})
	approve(t, p.prod, "production", c2, deliveryv1.DecisionApprove, "carol")
	approve(t, p.prod, "production", c2, deliveryv1.DecisionReject, "alice", "release-managers")
	waitPromotion(t, p.prod, promotionName(st, c2), deliveryv1.PromotionRejected)
	approve(t, p.prod, "production", c2, deliveryv1.DecisionApprove, "dave", "release-managers")
	st = waitStage(t, p.prod, "production", "nothing pending after the rejection", func(st *deliveryv1.Stage) bool {
		return st.Status.Pending == nil && st.Status.CurrentRevision == c1 && readyReason(st) == deliveryv1.ReasonStageReady
	})
	if repoCommit(t, p.prod, "app") != c1 {
		t.Fatalf("production pinned to %s after c2 was rejected", repoCommit(t, p.prod, "app"))
	}

	// A Promotion naming no Stage says so.
	orphan := &deliveryv1.Promotion{ObjectMeta: metav1.ObjectMeta{Namespace: p.prod, Name: "orphan"},
		Spec: deliveryv1.PromotionSpec{Stage: "missing", Revision: c2}}
	create(t, orphan)
	managedtest.Eventually(t, 30*time.Second, "orphan promotion reported", func() error {
		o := getPromotion(t, p.prod, "orphan")
		if c := conditions.Get(o, conditions.Ready); c != nil && c.Reason == deliveryv1.ReasonStageNotFound && strings.Contains(c.Message, "missing") {
			return nil
		}
		return errorf("status %+v", o.Status)
	})
}

// TestVerificationSoakAndWithdrawal: staging verifies each revision with
// its own AnalysisRun (a kubernetes metric over a smoke-test ConfigMap);
// production promotes automatically after a soak, requeued to the moment
// it ends; a newer revision does not reset a pending soak; a revision
// whose re-verification fails in staging is withdrawn, and its pending
// promotion stops even when approved afterwards.
func TestVerificationSoakAndWithdrawal(t *testing.T) {
	startDeployers(t)
	startPromotion(t)
	verify := &deliveryv1.StageVerification{Templates: []deliveryv1.TemplateRef{{Name: "smoke"}}}
	p := newPipeline(t, pipelineOptions{productionAccount: true, stagingVerify: verify, production: deliveryv1.PromotionPolicy{
		Auto: true, RequiredSoakTime: &metav1.Duration{Duration: 3 * time.Second},
	}})
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: p.staging, Name: "smoke"}, Data: map[string]string{"result": "pass"}})
	create(t, &deliveryv1.AnalysisTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: p.staging, Name: "smoke"},
		Spec: deliveryv1.AnalysisTemplateSpec{
			Args: []deliveryv1.Argument{{Name: "revision"}, {Name: "stage"}},
			Metrics: []deliveryv1.Metric{{Name: "smoke", NoData: deliveryv1.NoDataFail,
				Provider: deliveryv1.MetricProvider{Kubernetes: &deliveryv1.KubernetesMetric{APIVersion: "v1", Kind: "ConfigMap", Name: "smoke",
					Condition: `objects.all(o, o.data.result == "pass")`}}}}}})

	c1 := p.push(t, "c1")
	st := p.waitVerifiedInStaging(t, c1)
	if st.Status.VerifiedRevisions[0].Run == "" {
		t.Errorf("verified revision without its run: %+v", st.Status.VerifiedRevisions[0])
	}
	run := &deliveryv1.AnalysisRun{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: p.staging, Name: st.Status.VerifiedRevisions[0].Run}, run); err != nil || run.Status.Phase != deliveryv1.PhaseSuccessful {
		t.Fatalf("verification run: %v %s", err, run.Status.Phase)
	}
	verifiedAt := st.Status.VerifiedRevisions[0].VerifiedAt
	// Soak: pending until verifiedAt+3s, then promoted by the requeue alone.
	prod := getStage(t, p.prod, "production")
	if pend := prod.Status.Pending; pend != nil && pend.Revision == c1 {
		if pend.WaitingFor != deliveryv1.WaitingForSoak || pend.Until == nil || !pend.Until.Time.Equal(verifiedAt.Add(3*time.Second)) {
			t.Errorf("pending = %+v, want Soak until %s", pend, verifiedAt.Add(3*time.Second))
		}
	}
	p.waitProduction(t, c1)

	// A newer revision does not reset a pending soak.
	patchStage(t, p.prod, "production", func(s *deliveryv1.Stage) {
		s.Spec.Promotion.RequiredSoakTime = &metav1.Duration{Duration: time.Hour}
	})
	c2 := p.push(t, "c2")
	st2 := p.waitVerifiedInStaging(t, c2)
	prod = waitStage(t, p.prod, "production", "c2 soaks", func(st *deliveryv1.Stage) bool {
		return st.Status.Pending != nil && st.Status.Pending.Revision == c2 && st.Status.Pending.WaitingFor == deliveryv1.WaitingForSoak
	})
	until := prod.Status.Pending.Until.DeepCopy()
	if !until.Time.Equal(st2.Status.VerifiedRevisions[0].VerifiedAt.Add(time.Hour)) {
		t.Errorf("soak until %s, want verifiedAt+1h", until)
	}
	c3 := p.push(t, "c3")
	p.waitVerifiedInStaging(t, c3)
	prod = waitStage(t, p.prod, "production", "c2 still pending", func(st *deliveryv1.Stage) bool {
		return st.Status.Pending != nil && st.Status.Pending.Revision == c2
	})
	if !prod.Status.Pending.Until.Equal(until) {
		t.Errorf("the soak of c2 was reset by c3: until %s, was %s", prod.Status.Pending.Until, until)
	}
	if p3 := waitPromotion(t, p.prod, promotionName(prod, c3), deliveryv1.PromotionPending); conditions.Get(p3, conditions.Ready).Reason != deliveryv1.ReasonQueued {
		t.Errorf("c3's promotion is %+v, want queued behind c2", conditions.Get(p3, conditions.Ready))
	}

	// Withdrawal: c3's re-verification fails in staging; its promotion stops.
	patchStage(t, p.prod, "production", func(s *deliveryv1.Stage) {
		s.Spec.Promotion.RequiredSoakTime = nil
		s.Spec.Promotion.Approval = &deliveryv1.ApprovalPolicy{Required: true, MinApprovals: 1}
	})
	approve(t, p.prod, "production", c2, deliveryv1.DecisionApprove, "alice")
	p.waitProduction(t, c2)
	prod = waitStage(t, p.prod, "production", "c3 awaits approval", func(st *deliveryv1.Stage) bool {
		return st.Status.Pending != nil && st.Status.Pending.Revision == c3 && st.Status.Pending.WaitingFor == deliveryv1.WaitingForApproval
	})
	if msg := conditions.Get(prod, conditions.Ready).Message; prod.Status.Pending.Run == "" || !strings.Contains(msg, "AnalysisRun "+prod.Status.Pending.Run) || !strings.Contains(msg, "soaked") {
		t.Errorf("AwaitingApproval message %q (pending run %q) does not name the verification run and the soak", msg, prod.Status.Pending.Run)
	}
	smoke := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: p.staging, Name: "smoke"}, smoke); err != nil {
		t.Fatal(err)
	}
	smoke.Data["result"] = "fail"
	if err := env.Client.Update(context.Background(), smoke); err != nil {
		t.Fatal(err)
	}
	patchStage(t, p.staging, "staging", func(s *deliveryv1.Stage) {
		s.Annotations = map[string]string{deliveryv1.AnnotationReverify: time.Now().Format(time.RFC3339Nano)}
	})
	st = waitStage(t, p.staging, "staging", "c3 withdrawn", func(st *deliveryv1.Stage) bool {
		return !verified(st, c3) && readyReason(st) == deliveryv1.ReasonVerificationFailed
	})
	if hasHistory(st, c3, "Withdrawn") != 1 {
		t.Errorf("staging history: %+v", st.Status.History)
	}
	waitPromotion(t, p.prod, promotionName(prod, c3), deliveryv1.PromotionWithdrawn)
	approve(t, p.prod, "production", c3, deliveryv1.DecisionApprove, "alice")
	prod = waitStage(t, p.prod, "production", "nothing pending", func(st *deliveryv1.Stage) bool {
		return st.Status.Pending == nil && st.Status.CurrentRevision == c2
	})
	if repoCommit(t, p.prod, "app") != c2 {
		t.Fatalf("production pinned to %s, want c2", repoCommit(t, p.prod, "app"))
	}
}

func patchStage(t *testing.T, ns, name string, mutate func(*deliveryv1.Stage)) {
	t.Helper()
	managedtest.Eventually(t, 10*time.Second, "update stage "+name, func() error {
		st := getStage(t, ns, name)
		mutate(st)
		return env.Client.Update(context.Background(), st)
	})
}

var _ = ptr.To[int]

// TestSyncVerificationRollback: staging's Sync verifies each revision
// (spec.verify) and rolls back on failure; the Stage takes the verified
// revisions and their runs from the Sync, reports the rollback with
// VerificationFailed naming both revisions, and the failed revision never
// reaches production.
func TestSyncVerificationRollback(t *testing.T) {
	startDeployers(t)
	startPromotion(t)
	p := newPipeline(t, pipelineOptions{productionAccount: true, production: deliveryv1.PromotionPolicy{Auto: true},
		stagingSync: func(s *gitopsv1.Sync) {
			s.Spec.Verify = &gitopsv1.Verify{Templates: []deliveryv1.TemplateRef{{Name: "version"}}}
			s.Spec.Rollback = &gitopsv1.Rollback{OnVerificationFailure: true}
		}})
	create(t, &deliveryv1.AnalysisTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: p.staging, Name: "version"},
		Spec: deliveryv1.AnalysisTemplateSpec{
			Args: []deliveryv1.Argument{{Name: "revision"}},
			Metrics: []deliveryv1.Metric{{Name: "version", NoData: deliveryv1.NoDataFail,
				Provider: deliveryv1.MetricProvider{Kubernetes: &deliveryv1.KubernetesMetric{APIVersion: "v1", Kind: "ConfigMap", Name: "web",
					Condition: `objects.all(o, o.data.version != "bad")`}}}}}})
	c1 := p.push(t, "c1")
	st := p.waitVerifiedInStaging(t, c1)
	if run := st.Status.VerifiedRevisions[0].Run; !strings.Contains(run, "-verify-") {
		t.Errorf("c1 verified by %q, want the Sync's AnalysisRun", run)
	}
	p.waitProduction(t, c1)

	bad := p.push(t, "bad")
	st = waitStage(t, p.staging, "staging", "bad rolled back", func(st *deliveryv1.Stage) bool {
		return readyReason(st) == deliveryv1.ReasonVerificationFailed
	})
	msg := conditions.Get(st, conditions.Ready).Message
	if !strings.Contains(msg, short(bad)) || !strings.Contains(msg, "rolled back to "+short(c1)) {
		t.Errorf("VerificationFailed message %q does not name both revisions", msg)
	}
	if verified(st, bad) {
		t.Fatal("the failed revision is verified")
	}
	prod := getStage(t, p.prod, "production")
	if prod.Status.CurrentRevision != c1 || repoCommit(t, p.prod, "app") != c1 || (prod.Status.Pending != nil && prod.Status.Pending.Revision == bad) {
		t.Fatalf("production moved towards the failed revision: %s", describe(prod))
	}
	var l deliveryv1.PromotionList
	if err := env.Client.List(context.Background(), &l, client.InNamespace(p.prod)); err != nil {
		t.Fatal(err)
	}
	for _, pr := range l.Items {
		if matches(bad, pr.Spec.Revision) {
			t.Errorf("a Promotion of the failed revision exists: %s", pr.Name)
		}
	}
}

// TestPinnedStageRollsBackOnFailedVerification: production verifies each
// revision with its own AnalysisRun; a revision that fails there is
// withdrawn and production's GitRepository is pinned back to its previous
// verified revision, which its Sync applies again; the stage reports both.
func TestPinnedStageRollsBackOnFailedVerification(t *testing.T) {
	startDeployers(t)
	startPromotion(t)
	p := newPipeline(t, pipelineOptions{productionAccount: true, production: deliveryv1.PromotionPolicy{Auto: true}})
	create(t, &deliveryv1.AnalysisTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: p.prod, Name: "version"},
		Spec: deliveryv1.AnalysisTemplateSpec{
			Metrics: []deliveryv1.Metric{{Name: "version", NoData: deliveryv1.NoDataFail,
				Provider: deliveryv1.MetricProvider{Kubernetes: &deliveryv1.KubernetesMetric{APIVersion: "v1", Kind: "ConfigMap", Name: "web",
					Condition: `objects.all(o, o.data.version != "bad")`}}}}}})
	// The run reads as production's service account.
	grant(t, p.prod, "read-configmaps", serviceAccount(p.prod, "promoter"), ruleFor("", "configmaps", "get", "list"))
	patchStage(t, p.prod, "production", func(s *deliveryv1.Stage) {
		s.Spec.Verification = &deliveryv1.StageVerification{Templates: []deliveryv1.TemplateRef{{Name: "version"}}}
	})
	c1 := p.push(t, "c1")
	p.waitVerifiedInStaging(t, c1)
	st := p.waitProduction(t, c1)
	if st.Status.VerifiedRevisions[0].Run == "" {
		t.Errorf("c1 verified in production without its run: %+v", st.Status.VerifiedRevisions[0])
	}
	bad := p.push(t, "bad")
	p.waitVerifiedInStaging(t, bad) // staging does not verify beyond its Sync being Ready
	t.Logf("c0 %s c1 %s bad %s", short(p.c0), short(c1), short(bad))
	st = waitStage(t, p.prod, "production", "rolled back to c1", func(st *deliveryv1.Stage) bool {
		return readyReason(st) == deliveryv1.ReasonVerificationFailed && st.Status.CurrentRevision == c1 && hasHistory(st, c1, "RolledBack") == 1
	})
	msg := conditions.Get(st, conditions.Ready).Message
	if !strings.Contains(msg, short(bad)) || !strings.Contains(msg, "rolled back to "+short(c1)) {
		t.Errorf("message %q does not name both revisions", msg)
	}
	waitPromotion(t, p.prod, promotionName(st, bad), deliveryv1.PromotionFailed)
	if verified(st, bad) || repoCommit(t, p.prod, "app") != c1 {
		t.Fatalf("after the rollback: %s, pinned to %s", describe(st), repoCommit(t, p.prod, "app"))
	}
	cm := &corev1.ConfigMap{}
	managedtest.Eventually(t, 30*time.Second, "c1 applied again", func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: p.prod, Name: "web"}, cm); err != nil {
			return err
		}
		if cm.Data["version"] != "c1" {
			return errorf("version %s", cm.Data["version"])
		}
		return nil
	})
}

// TestVerificationRunsPruned: of eight failed re-verifications (and c1's
// run, withdrawn by the first), runsKept unnamed runs stay besides the
// current one and that of the verified revision c0.
func TestVerificationRunsPruned(t *testing.T) {
	startDeployers(t)
	startPromotion(t)
	verify := &deliveryv1.StageVerification{Templates: []deliveryv1.TemplateRef{{Name: "smoke"}}}
	p := newPipeline(t, pipelineOptions{productionAccount: true, stagingVerify: verify})
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: p.staging, Name: "smoke"}, Data: map[string]string{"result": "pass"}})
	create(t, &deliveryv1.AnalysisTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: p.staging, Name: "smoke"},
		Spec: deliveryv1.AnalysisTemplateSpec{Metrics: []deliveryv1.Metric{{Name: "smoke", NoData: deliveryv1.NoDataFail,
			Provider: deliveryv1.MetricProvider{Kubernetes: &deliveryv1.KubernetesMetric{APIVersion: "v1", Kind: "ConfigMap", Name: "smoke",
				Condition: `objects.all(o, o.data.result == "pass")`}}}}}})
	st := p.waitVerifiedInStaging(t, p.c0)
	kept := st.Status.VerifiedRevisions[0].Run // c0 stays verified: its run is kept
	p.waitVerifiedInStaging(t, p.push(t, "c1"))
	smoke := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: p.staging, Name: "smoke"}, smoke); err != nil {
		t.Fatal(err)
	}
	smoke.Data["result"] = "fail"
	if err := env.Client.Update(context.Background(), smoke); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < runsKept+3; i++ {
		token := fmt.Sprintf("attempt-%d", i)
		patchStage(t, p.staging, "staging", func(s *deliveryv1.Stage) {
			s.Annotations = map[string]string{deliveryv1.AnnotationReverify: token}
		})
		waitStage(t, p.staging, "staging", "reverification "+token+" handled", func(st *deliveryv1.Stage) bool {
			return st.Status.LastHandledReverifyAt == token
		})
	}
	var l deliveryv1.AnalysisRunList
	managedtest.Eventually(t, 30*time.Second, "runs pruned", func() error {
		if err := env.Client.List(context.Background(), &l, client.InNamespace(p.staging), client.MatchingLabels{deliveryv1.LabelStage: "staging"}); err != nil {
			return err
		}
		// runsKept unnamed ones, c0's and the current (failed) one.
		if len(l.Items) != runsKept+2 {
			return errorf("%d runs", len(l.Items))
		}
		return nil
	})
	found := false
	for _, r := range l.Items {
		found = found || r.Name == kept
	}
	if !found {
		t.Errorf("the run of a revision verified before (%s) was pruned", kept)
	}
}
