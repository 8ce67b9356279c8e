package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/testenv"
)

// TestPromotionPipeline runs examples/pipeline the way a team would: a
// local cluster (`strata up`), one repository served over smart HTTP with
// credentials, the example's files applied with kubectl, people acting
// with their own identities (impersonation: kubectl --as, a kubeconfig
// with `as:` for strata). Its steps are the acceptance of issue 13:
//   - a commit reaches staging on its own and is verified there, and
//     production waits with AwaitingApproval;
//   - an Approval by a user without RBAC on approvals, and one naming
//     someone else, are refused by the API server; one by a user RBAC
//     allows but who is not an approver is not counted (NotAnApprover);
//   - the release manager approves and production reaches the revision;
//   - a rejected revision never reaches production;
//   - a revision whose staging verification fails is never promoted;
//   - a deny window holds an approved promotion until it closes, and
//     only a person with the override verb on promotions can override it;
//   - in write-back mode, the pushed commit (checked in the bare
//     repository) is what the production Sync applies.
func TestPromotionPipeline(t *testing.T) {
	parallel(t)
	state := t.TempDir()

	// The repository: the example's app/ on main, in a bare repository
	// served by git http-backend with basic auth.
	root := t.TempDir()
	work := gittest.NewRepo(t, t.TempDir(), "work")
	work.CopyDir(filepath.Join(testenv.RepoRoot(), "examples", "pipeline", "app"), "app")
	c0 := work.Commit("shop v1", nil)
	bare := filepath.Join(root, "shop.git")
	gitIn(t, root, "clone", "-q", "--bare", work.Dir, bare)
	gitIn(t, bare, "config", "http.receivepack", "true")
	url := gittest.ServeHTTP(t, root, "git", "e2e-git-password") + "/shop.git"
	cfgPath := filepath.Join("app", "configmap.yaml")
	cfgData, err := os.ReadFile(filepath.Join(work.Dir, cfgPath))
	if err != nil {
		t.Fatal(err)
	}
	commit := func(version string) string {
		t.Helper()
		h := work.Commit("shop "+version, map[string]string{cfgPath: strings.Replace(string(cfgData), "version: v1", "version: "+version, 1)})
		work.Git("push", "-q", bare, "main")
		return h
	}

	// The smoke check staging's verification calls: ok, except for the
	// revisions marked bad.
	var bad sync.Map
	smoke := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := "ok"
		if _, isBad := bad.Load(r.URL.Query().Get("revision")); isBad {
			status = "failing"
		}
		fmt.Fprintf(w, `{"status":%q}`, status)
	}))
	defer smoke.Close()

	startUp(t, state)
	kc := filepath.Join(state, "kubeconfig")

	// The example, with its three values set: the repository URL, the
	// commit production runs today, the smoke check's address.
	files := t.TempDir()
	for _, f := range []string{"namespaces.yaml", "staging.yaml", "production.yaml", "pipeline.yaml"} {
		data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "pipeline", f))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(data), "https://git.example.com/shop.git", url)
		s = strings.Replace(s, "commit: 0000000", "commit: "+c0, 1)
		s = strings.Replace(s, "http://smoke.shop-staging.svc", smoke.URL, 1)
		if err := os.WriteFile(filepath.Join(files, f), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kubectl(t, state, "apply", "-f", filepath.Join(files, "namespaces.yaml"))
	for _, ns := range []string{"shop-staging", "shop-production"} {
		kubectl(t, state, "create", "secret", "generic", "git-credentials", "-n", ns, "--from-literal=username=git", "--from-literal=password=e2e-git-password")
	}
	kubectl(t, state, "apply", "-f", files)

	stage := func(ns, name string) []string {
		return []string{"get", "stage", name, "-n", ns, "-o", `jsonpath={.status.currentRevision}|{.status.lastVerifiedRevision}|{.status.pending.revision}|{.status.pending.waitingFor}|{.status.conditions[?(@.type=="Ready")].reason}|{.status.conditions[?(@.type=="Ready")].message}`}
	}
	// field i of the stage's jsonpath output.
	field := func(s string, i int) string {
		f := strings.SplitN(s, "|", 6)
		if len(f) != 6 {
			return ""
		}
		return f[i]
	}
	waitStage := func(ns, name, what string, timeout time.Duration, ok func(cur, verified, pending, waiting, reason, msg string) bool) string {
		t.Helper()
		return waitKubectl(t, state, timeout, "stage "+ns+"/"+name+": "+what, func(s string) bool {
			return ok(field(s, 0), field(s, 1), field(s, 2), field(s, 3), field(s, 4), field(s, 5))
		}, stage(ns, name)...)
	}
	fetch := func() {
		kubectl(t, state, "annotate", "--overwrite", "gitrepository", "shop", "-n", "shop-staging", "strata.dev/reconcile-requested-at="+time.Now().Format(time.RFC3339Nano))
	}
	verifiedInStaging := func(rev string) {
		t.Helper()
		waitStage("shop-staging", "staging", "verified "+rev[:7], 2*time.Minute, func(cur, verified, _, _, reason, _ string) bool {
			return cur == rev && verified == rev && reason == "Ready"
		})
	}
	awaitingApproval := func(rev string) string {
		t.Helper()
		return waitStage("shop-production", "production", "awaits approval of "+rev[:7], time.Minute, func(_, _, pending, waiting, reason, _ string) bool {
			return pending == rev && waiting == "Approval" && reason == "AwaitingApproval"
		})
	}
	productionAt := func(rev, version string) {
		t.Helper()
		waitStage("shop-production", "production", "runs "+rev[:7], 2*time.Minute, func(cur, _, pending, _, reason, _ string) bool {
			return cur == rev && pending == "" && reason == "Ready"
		})
		if got := kubectl(t, state, "get", "configmap", "shop-config", "-n", "shop-production", "-o", "jsonpath={.data.version}"); got != version {
			t.Errorf("production runs shop-config version %q, want %q", got, version)
		}
	}
	pinned := func() string {
		return kubectl(t, state, "get", "gitrepository", "shop", "-n", "shop-production", "-o", "jsonpath={.spec.ref.commit}")
	}
	alice := userKubeconfig(t, kc, "alice", "release-managers")
	run := func(kubeconfig string, args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(testenv.BinDir(), "strata"), append(args, "--kubeconfig", kubeconfig)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// 1. The first commit runs in both stages; staging verified it.
	verifiedInStaging(c0)
	waitStage("shop-production", "production", "runs c0", 2*time.Minute, func(cur, _, _, _, reason, _ string) bool { return cur == c0 && reason == "Ready" })

	// 2. A commit reaches staging on its own, is verified, and production
	// waits for approval, saying what and why.
	c1 := commit("v2")
	fetch()
	verifiedInStaging(c1)
	st := awaitingApproval(c1)
	t.Logf("production: %s", st)
	if msg := field(st, 5); !strings.Contains(msg, c1[:12]) || !strings.Contains(msg, "stage staging") || !strings.Contains(msg, "0 of 1 approvals") {
		t.Errorf("AwaitingApproval message %q does not name the revision, where it was verified and the approvals", msg)
	}
	if out := kubectl(t, state, "get", "stages", "-A"); !strings.Contains(out, "Approval") || !strings.Contains(out, "PIPELINE") {
		t.Errorf("kubectl get stages does not show what production waits for:\n%s", out)
	}
	if out, err := run(kc, "pipeline", "get", "shop", "-n", "shop-production"); err != nil || !strings.Contains(out, c1[:7]+" for Approval") || !strings.Contains(out, "1 of groups release-managers") {
		t.Errorf("strata pipeline get: %v\n%s", err, out)
	}

	// 3. Approvals by the wrong people.
	approvalFile := func(approver string) string {
		p := filepath.Join(t.TempDir(), "approval.yaml")
		y := fmt.Sprintf("apiVersion: delivery.strata.dev/v1alpha1\nkind: Approval\nmetadata: {generateName: production-, namespace: shop-production}\n"+
			"spec: {stage: production, revision: %s, decision: Approve, approver: %s}\n", c1, approver)
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// mallory has no RBAC on approvals in production.
	out, err := kubectlErr(state, "--as", "mallory", "--as-group", "developers", "create", "-f", approvalFile("mallory"))
	t.Logf("mallory's approval: %s", out)
	if err == nil || !strings.Contains(out, `User "mallory" cannot create resource "approvals"`) {
		t.Errorf("mallory's approval: %v\n%s", err, out)
	}
	// alice may approve, but not in bob's name.
	out, err = kubectlErr(state, "--as", "alice", "--as-group", "release-managers", "create", "-f", approvalFile("bob"))
	t.Logf("alice's approval in bob's name: %s", out)
	if err == nil ||
		!strings.Contains(out, "strata-approvals.delivery.strata.dev") || !strings.Contains(out, `it names "bob" but the request is made by "alice"`) {
		t.Errorf("alice's approval in bob's name: %v\n%s", err, out)
	}
	// quinn (QA) may create Approvals, but is not an approver: not counted.
	kubectl(t, state, "create", "rolebinding", "qa", "-n", "shop-production", "--clusterrole", "strata-promotion-approver", "--group", "qa")
	out, err = run(userKubeconfig(t, kc, "quinn", "qa"), "approve", "stage/production", "-n", "shop-production", "-m", "looks fine to me")
	if err != nil || !strings.Contains(out, "quinn approved revision "+c1[:7]) {
		t.Fatalf("quinn's approve: %v\n%s", err, out)
	}
	waitKubectl(t, state, 30*time.Second, "quinn's approval not counted", func(s string) bool { return s == "False NotAnApprover" },
		"get", "approvals", "-n", "shop-production", "-o", `jsonpath={.items[?(@.spec.approver=="quinn")].status.conditions[?(@.type=="Counted")].status} {.items[?(@.spec.approver=="quinn")].status.conditions[?(@.type=="Counted")].reason}`)
	awaitingApproval(c1)
	if got := pinned(); got != c0 {
		t.Fatalf("production was pinned to %s by approvals that do not count", got)
	}

	// 4. The release manager approves: production reaches the revision.
	if out, err := run(alice, "approve", "stage/production", "-n", "shop-production", "-m", "smoke ok"); err != nil || !strings.Contains(out, "alice approved revision "+c1[:7]) {
		t.Fatalf("alice's approve: %v\n%s", err, out)
	}
	productionAt(c1, "v2")
	if got := pinned(); got != c1 {
		t.Errorf("production GitRepository pinned to %q, want %s", got, c1)
	}
	if got := kubectl(t, state, "get", "stage", "production", "-n", "shop-production", "-o", "jsonpath={.status.history[0].revision} {.status.history[0].approvedBy}"); got != c1+` ["alice"]` {
		t.Errorf("history[0] = %s, want c1 approved by alice", got)
	}

	// 5. A rejected revision never reaches production.
	c2 := commit("v3")
	fetch()
	verifiedInStaging(c2)
	awaitingApproval(c2)
	if out, err := run(alice, "reject", "stage/production", "-n", "shop-production", "-m", "not before the sale"); err != nil || !strings.Contains(out, "alice rejected revision "+c2[:7]) {
		t.Fatalf("alice's reject: %v\n%s", err, out)
	}
	waitKubectl(t, state, 30*time.Second, "the promotion of c2 rejected", func(s string) bool { return s == "Rejected" },
		"get", "promotion", "production-"+c2[:12], "-n", "shop-production", "-o", "jsonpath={.status.phase}")
	waitStage("shop-production", "production", "back to Ready at c1", 30*time.Second, func(cur, _, pending, _, reason, _ string) bool {
		return cur == c1 && pending == "" && reason == "Ready"
	})

	// 6. A revision that fails its verification in staging is never
	// promoted.
	c3 := commit("v4-broken")
	bad.Store(c3, true)
	fetch()
	msg := waitStage("shop-staging", "staging", "c3 failed verification", 2*time.Minute, func(cur, verified, _, _, reason, _ string) bool {
		return cur == c3 && reason == "VerificationFailed"
	})
	if !strings.Contains(field(msg, 5), c3[:12]) || field(msg, 1) != c2 {
		t.Errorf("staging after the failed verification: %s", msg)
	}
	if out := kubectl(t, state, "get", "promotion", "production-"+c3[:12], "-n", "shop-production", "--ignore-not-found", "-o", "name"); out != "" {
		t.Errorf("a promotion of the unverified revision exists: %s", out)
	}

	// 7. A deny window holds an approved promotion until it closes.
	c4 := commit("v5")
	fetch()
	verifiedInStaging(c4)
	awaitingApproval(c4)
	now := time.Now().UTC()
	opened := now.Truncate(time.Minute)
	closes := now.Add(60 * time.Second).Truncate(time.Second).Add(time.Second)
	kubectl(t, state, "patch", "stage", "production", "-n", "shop-production", "--type=merge", "-p",
		fmt.Sprintf(`{"spec":{"promotion":{"windows":[{"kind":"deny","schedule":"%d %d * * *","duration":"%s"}]}}}`, opened.Minute(), opened.Hour(), closes.Sub(opened)))
	if out, err := run(alice, "approve", "stage/production", "-n", "shop-production"); err != nil {
		t.Fatalf("alice's approve of c4: %v\n%s", err, out)
	}
	held := waitStage("shop-production", "production", "held by the deny window", 30*time.Second, func(_, _, pending, waiting, reason, _ string) bool {
		return pending == c4 && waiting == "Window" && reason == "AwaitingWindow"
	})
	t.Logf("production during the window: %s", held)
	if !strings.Contains(field(held, 5), "deny window") || pinned() != c1 {
		t.Errorf("while the window is open: %s (pinned %s)", held, pinned())
	}
	productionAt(c4, "v5")
	promotedAt := kubectl(t, state, "get", "stage", "production", "-n", "shop-production", "-o", "jsonpath={.status.history[0].time}")
	if at, err := time.Parse(time.RFC3339, promotedAt); err != nil || at.Before(closes.Add(-time.Second)) {
		t.Errorf("c4 was promoted at %s, before the window closed at %s", promotedAt, closes.Format(time.RFC3339))
	}
	// Neither the rejected nor the failing revision ever ran in production.
	history := kubectl(t, state, "get", "stage", "production", "-n", "shop-production", "-o", `jsonpath={range .status.history[*]}{.revision} {.result}{"\n"}{end}`)
	for _, rev := range []string{c2, c3} {
		if strings.Contains(history, rev+" Promoted") {
			t.Errorf("revision %s reached production:\n%s", rev[:7], history)
		}
	}

	// 7b. A release lead with the override verb takes an approved
	// revision through a deny window; a release manager without it
	// cannot (the API server warns her, the promotion keeps waiting).
	kubectl(t, state, "create", "rolebinding", "release-leads", "-n", "shop-production", "--clusterrole", "strata-promotion-overrider", "--group", "release-leads")
	kubectl(t, state, "patch", "stage", "production", "-n", "shop-production", "--type=merge", "-p",
		`{"spec":{"promotion":{"windows":[{"kind":"deny","schedule":"0 0 * * *","duration":"24h"}]}}}`)
	c4b := commit("v5.1")
	fetch()
	verifiedInStaging(c4b)
	awaitingApproval(c4b)
	if out, err := run(alice, "approve", "stage/production", "-n", "shop-production"); err != nil {
		t.Fatalf("alice's approve of c4b: %v\n%s", err, out)
	}
	waitStage("shop-production", "production", "c4b held by the all-day window", 30*time.Second, func(_, _, pending, waiting, _, _ string) bool {
		return pending == c4b && waiting == "Window"
	})
	out, err = run(alice, "promote", "stage/production", "-n", "shop-production", "--revision", c4b, "--override-windows")
	if err != nil || !strings.Contains(out, `user "alice" may not override promotion windows`) {
		t.Errorf("alice's override (want accepted with a warning): %v\n%s", err, out)
	}
	olivia := userKubeconfig(t, kc, "olivia", "release-leads")
	if out, err := run(olivia, "promote", "stage/production", "-n", "shop-production", "--revision", c4b[:7], "--override-windows"); err != nil || strings.Contains(out, "may not override") {
		t.Fatalf("olivia's override: %v\n%s", err, out)
	}
	productionAt(c4b, "v5.1")
	if got := kubectl(t, state, "get", "stage", "production", "-n", "shop-production", "-o", "jsonpath={.status.history[0].revision} {.status.history[0].overriddenBy}"); got != c4b+" olivia" {
		t.Errorf("history[0] = %q, want c4b with the override by olivia recorded", got)
	}
	if out := kubectl(t, state, "get", "events", "-n", "shop-production", "--field-selector", "reason=WindowOverridden", "-o", "jsonpath={.items[*].note}{.items[*].message}"); !strings.Contains(out, "olivia overrode the promotion window") {
		t.Errorf("no WindowOverridden event naming olivia: %q", out)
	}

	// 8. Write-back: production follows a branch of its own, and the
	// Stage commits the promoted revision's app/ to it.
	gitIn(t, bare, "branch", "production", c4b)
	kubectl(t, state, "create", "role", "read-git-credentials", "-n", "shop-production", "--verb=get", "--resource=secrets", "--resource-name=git-credentials")
	kubectl(t, state, "create", "rolebinding", "promoter-git-credentials", "-n", "shop-production", "--role=read-git-credentials", "--serviceaccount=shop-production:promoter")
	kubectl(t, state, "patch", "stage", "production", "-n", "shop-production", "--type=merge", "-p",
		`{"spec":{"promotion":{"windows":null,"mode":"gitWriteBack","writeBack":{"branch":"production","copy":{"from":"app","to":"app"},"author":{"name":"Strata Promoter","email":"promoter@shop.example"},"signOff":true}}}}`)
	kubectl(t, state, "patch", "gitrepository", "shop", "-n", "shop-production", "--type=merge", "-p", `{"spec":{"ref":{"branch":"production","commit":null}}}`)
	kubectl(t, state, "annotate", "--overwrite", "gitrepository", "shop", "-n", "shop-production", "strata.dev/reconcile-requested-at="+time.Now().Format(time.RFC3339Nano))
	c5 := commit("v6")
	fetch()
	verifiedInStaging(c5)
	awaitingApproval(c5)
	if out, err := run(alice, "approve", "stage/production", "-n", "shop-production"); err != nil {
		t.Fatalf("alice's approve of c5: %v\n%s", err, out)
	}
	productionAt(c5, "v6")
	pushed := gitIn(t, bare, "rev-parse", "production")
	if got := kubectl(t, state, "get", "stage", "production", "-n", "shop-production", "-o", "jsonpath={.status.history[0].revision} {.status.history[0].commit}"); got != c5+" "+pushed {
		t.Errorf("history[0] = %q, want %s written as the pushed commit %s", got, c5[:7], pushed[:7])
	}
	if parent := gitIn(t, bare, "rev-parse", "production~1"); parent != c4b {
		t.Errorf("the write-back commit's parent is %s, want the production branch's %s", parent, c4b[:7])
	}
	logMsg := gitIn(t, bare, "log", "-1", "--format=%an <%ae>%n%B", "production")
	t.Logf("the write-back commit %s:\n%s", pushed, logMsg)
	if !strings.Contains(logMsg, "Strata Promoter <promoter@shop.example>") || !strings.Contains(logMsg, "Signed-off-by: Strata Promoter <promoter@shop.example>") || !strings.Contains(logMsg, c5) {
		t.Errorf("write-back commit:\n%s", logMsg)
	}
	if got := gitIn(t, bare, "show", "production:"+cfgPath); !strings.Contains(got, "version: v6") {
		t.Errorf("app/configmap.yaml on the production branch:\n%s", got)
	}
	if got := kubectl(t, state, "get", "sync", "shop", "-n", "shop-production", "-o", "jsonpath={.status.lastAppliedRevision}"); !strings.HasSuffix(got, pushed) {
		t.Errorf("the production Sync applies %s, not the pushed commit %s", got, pushed)
	}
	out, err = run(kc, "pipeline", "get", "shop", "-n", "shop-production")
	t.Logf("strata pipeline get shop:\n%s", out)
	if err != nil || !strings.Contains(out, "commit "+pushed[:7]) || !strings.Contains(out, "approved by alice") {
		t.Errorf("strata pipeline get at the end: %v\n%s", err, out)
	}
}

// gitIn runs git in dir and returns its trimmed output.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// userKubeconfig copies the cluster's kubeconfig with every user
// impersonating user and groups (`as:` and `as-groups:`), so strata acts as
// that person.
func userKubeconfig(t *testing.T, kubeconfig, user string, groups ...string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate = user
		a.ImpersonateGroups = groups
	}
	p := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}
