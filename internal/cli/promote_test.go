package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/install"
)

const (
	revA = "3f2a9c1d0e5b6a7980c1d2e3f4a5b6c7d8e9f001"
	revB = "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"
)

// kubeconfigAs writes a kubeconfig for the test API server that
// impersonates user with groups, as `kubectl --as USER --as-group GROUP`.
func kubeconfigAs(t *testing.T, user string, groups ...string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData,
		Impersonate: user, ImpersonateGroups: groups}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// promotionFixture creates a namespace with the install's approver role
// bound to group release-managers, and the Stages staging and production
// of pipeline shop, production waiting for approval of revA.
func promotionFixture(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	newNamespace(t, ns)
	// The gate as the test environment installs it (again: another test
	// of this package uninstalls Strata).
	if err := install.ApprovalGate(ctx, env.Config); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "release-managers"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: install.ApproverRole},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "release-managers"}}}
	if err := env.Client.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &deliveryv1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec: deliveryv1.PipelineSpec{Description: "the shop, staging to production", Stages: []string{"staging", "production"}}}); err != nil {
		t.Fatal(err)
	}
	now := metav1.NewTime(time.Now().Add(-10 * time.Minute))
	staging := &deliveryv1.Stage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "staging"},
		Spec: deliveryv1.StageSpec{Pipeline: "shop", SyncRef: deliveryv1.LocalReference{Name: "shop-staging"},
			Source: deliveryv1.StageSource{GitRepository: "shop"}, Promotion: deliveryv1.PromotionPolicy{Auto: true}}}
	production := &deliveryv1.Stage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "production"},
		Spec: deliveryv1.StageSpec{Pipeline: "shop", SyncRef: deliveryv1.LocalReference{Name: "shop-production"},
			Source: deliveryv1.StageSource{Stage: "staging"},
			Promotion: deliveryv1.PromotionPolicy{Auto: true, Approval: &deliveryv1.ApprovalPolicy{Required: true, MinApprovals: 1,
				Approvers: deliveryv1.Approvers{Groups: []string{"release-managers"}}}}}}
	for _, st := range []*deliveryv1.Stage{staging, production} {
		if err := env.Client.Create(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	staging.Status = deliveryv1.StageStatus{CurrentRevision: revA, LastVerifiedRevision: revA,
		VerifiedRevisions: []deliveryv1.VerifiedRevision{{Revision: revA, VerifiedAt: now, Run: "staging-3f2a9c1-x7k2p"}},
		Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: deliveryv1.ReasonStageReady,
			Message: "revision 3f2a9c1 is verified", LastTransitionTime: now}}}
	production.Status = deliveryv1.StageStatus{CurrentRevision: revB,
		Pending: &deliveryv1.PendingPromotion{Revision: revA, WaitingFor: deliveryv1.WaitingForApproval, Since: now, Run: "staging-3f2a9c1-x7k2p",
			Message: "0 of 1 approvals"},
		History: []deliveryv1.StageHistoryEntry{{Revision: revB, Result: "Promoted", Time: now, ApprovedBy: []string{"dora"}}},
		Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: deliveryv1.ReasonAwaitingApproval,
			Message: "revision 3f2a9c1 waits for approval (0 of 1)", LastTransitionTime: now}}}
	for _, st := range []*deliveryv1.Stage{staging, production} {
		if err := env.Client.Status().Update(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
}

// TestApproveRejectPromote runs the commands as other users
// (impersonating kubeconfigs) against the API server with the install's
// admission policies: the approver is whoever the API server says, RBAC
// decides who may approve at all, and the refusal reaches the user.
func TestApproveRejectPromote(t *testing.T) {
	ctx := context.Background()
	const ns = "cli-promotion"
	promotionFixture(t, ns)
	alice := kubeconfigAs(t, "alice", "release-managers")
	mallory := kubeconfigAs(t, "mallory", "developers")

	// alice approves the pending revision.
	code, out, errOut := strata(t, "approve", "stage/production", "-n", ns, "--kubeconfig", alice, "-m", "load test ok")
	if code != 0 || !strings.Contains(out, "alice approved revision 3f2a9c1 for stage "+ns+"/production") {
		t.Fatalf("approve: exit %d\n%s%s", code, out, errOut)
	}
	// and rejects another one.
	if code, out, errOut := strata(t, "reject", "stage/production", "-n", ns, "--kubeconfig", alice, "--revision", revB[:7]); code != 0 || !strings.Contains(out, "alice rejected revision 1b2c3d4") {
		t.Fatalf("reject: exit %d\n%s%s", code, out, errOut)
	}
	list := &deliveryv1.ApprovalList{}
	if err := env.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	got := map[string]deliveryv1.ApprovalSpec{}
	for _, a := range list.Items {
		got[a.Spec.Decision] = a.Spec
	}
	if a := got[deliveryv1.DecisionApprove]; a.Approver != "alice" || a.Revision != revA || a.Stage != "production" || a.Comment != "load test ok" ||
		!contains(a.Groups, "release-managers") {
		t.Errorf("approval %+v", a)
	}
	if r := got[deliveryv1.DecisionReject]; r.Approver != "alice" || r.Revision != revB[:7] {
		t.Errorf("rejection %+v", r)
	}

	// mallory has no RBAC in the namespace: she cannot read the Stage, and
	// naming the revision herself, the API server refuses her Approval.
	if code, out, errOut := strata(t, "approve", "stage/production", "-n", ns, "--kubeconfig", mallory); code != 2 ||
		!strings.Contains(errOut, "cannot get Stage "+ns+"/production") || !strings.Contains(errOut, "forbidden") {
		t.Errorf("approve as mallory: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := strata(t, "approve", "stage/production", "-n", ns, "--kubeconfig", mallory, "--revision", revA); code != 2 ||
		!strings.Contains(errOut, "the API server refused the Approval") || !strings.Contains(errOut, `User "mallory" cannot create resource "approvals"`) {
		t.Errorf("approve --revision as mallory: exit %d\n%s%s", code, out, errOut)
	}

	// promote records who asked; an override by someone without the verb
	// is accepted with the API server's warning.
	code, out, errOut = strata(t, "promote", "stage/production", "-n", ns, "--kubeconfig", alice, "--revision", revA, "--override-windows")
	if code != 0 || !strings.Contains(out, "requested by alice") || !strings.Contains(errOut, `user "alice" may not override promotion windows`) {
		t.Errorf("promote: exit %d\n%s%s", code, out, errOut)
	}
	promotions := &deliveryv1.PromotionList{}
	if err := env.Client.List(ctx, promotions, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(promotions.Items) != 1 || promotions.Items[0].Spec.RequestedBy == nil || promotions.Items[0].Spec.RequestedBy.Username != "alice" ||
		promotions.Items[0].Spec.Revision != revA || !promotions.Items[0].Spec.OverrideWindows {
		t.Errorf("promotions %+v", promotions.Items)
	}

	// Usage errors.
	for name, tc := range map[string]struct {
		args []string
		code int
		want string
	}{
		"not a stage":      {[]string{"approve", "sync/production", "-n", ns}, 2, "argument must be stage/NAME"},
		"no slash":         {[]string{"reject", "production", "-n", ns}, 2, "argument must be stage/NAME"},
		"missing revision": {[]string{"promote", "stage/production", "-n", ns}, 2, "--revision is required"},
		"no such stage":    {[]string{"approve", "stage/nope", "-n", ns}, 2, "cannot get Stage " + ns + "/nope"},
		"nothing pending":  {[]string{"approve", "stage/staging", "-n", ns}, 1, "waits for no revision"},
		"bad revision":     {[]string{"promote", "stage/production", "-n", ns, "--revision", "main"}, 2, "spec.revision"},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := strata(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d (want %d), stderr lacks %q:\n%s%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
}

// TestPipelineGet prints the fixture's pipeline: stages side by side, who
// approved what, what waits for what.
func TestPipelineGet(t *testing.T) {
	ctx := context.Background()
	const ns = "cli-pipeline"
	promotionFixture(t, ns)
	alice := kubeconfigAs(t, "alice", "release-managers")
	if code, out, errOut := strata(t, "approve", "stage/production", "-n", ns, "--kubeconfig", alice, "-m", "ship it"); code != 0 {
		t.Fatalf("approve: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := strata(t, "promote", "stage/production", "-n", ns, "--kubeconfig", alice, "--revision", revA); code != 0 {
		t.Fatalf("promote: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut := strata(t, "pipeline", "get", "shop", "-n", ns, "--kubeconfig", alice)
	if code != 0 {
		t.Fatalf("pipeline get: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("strata pipeline get shop:\n%s", out)
	lines := strings.Split(out, "\n")
	row := func(label string) []string {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == label {
				return f
			}
		}
		t.Errorf("no row %s in:\n%s", label, out)
		return nil
	}
	if r := row("STAGE"); len(r) != 3 || r[1] != "staging" || r[2] != "production" {
		t.Errorf("stage columns %v", r)
	}
	if r := row("REVISION"); len(r) != 3 || r[1] != "3f2a9c1" || r[2] != "1b2c3d4" {
		t.Errorf("revisions %v", r)
	}
	for _, want := range []string{
		"Pipeline " + ns + "/shop: the shop, staging to production",
		"3f2a9c1 10m ago (staging-3f2a9c1-x7k2p)", // verified in staging, by which run
		"3f2a9c1 for Approval 10m ago",            // production waits for it
		"1 of groups release-managers",            // the gate
		"False AwaitingApproval: revision 3f2a9c1 waits for approval (0 of 1)",
		"alice  Approve  3f2a9c1  not counted yet", // who approved what
		`"ship it"`,
		"requested by alice",
		"1b2c3d4  Promoted  10m ago  approved by dora",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// -o json has the objects.
	code, out, errOut = strata(t, "pipeline", "get", "shop", "-n", ns, "-o", "json")
	if code != 0 {
		t.Fatalf("pipeline get -o json: exit %d\n%s", code, errOut)
	}
	var v pipelineView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Stages) != 2 || v.Stages[1].Stage.Name != "production" || len(v.Stages[1].Approvals) != 1 || len(v.Stages[1].Promotions) != 1 {
		t.Errorf("json view: %+v", v)
	}

	// Without a Pipeline object, the stages that name it, in promotion order.
	if err := env.Client.Delete(ctx, &deliveryv1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	poll(t, "pipeline deleted", func() error {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &deliveryv1.Pipeline{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errString("still there")
	})
	code, out, _ = strata(t, "pipeline", "get", "shop", "-n", ns)
	if r := strings.Fields(strings.Split(out, "\n")[2]); code != 0 || len(r) != 3 || r[1] != "staging" || r[2] != "production" {
		t.Errorf("stages without a Pipeline: exit %d\n%s", code, out)
	}
	if code, _, errOut := strata(t, "pipeline", "get", "nope", "-n", ns); code != 1 || !strings.Contains(errOut, "no Pipeline "+ns+"/nope") {
		t.Errorf("unknown pipeline: exit %d, %s", code, errOut)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
