package e2e

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/gitops/webhook"
	"github.com/strata-dev/strata/internal/testenv"
)

// waitFor polls kubectl until check accepts its output.
func waitKubectl(t *testing.T, dir string, timeout time.Duration, what string, check func(string) bool, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var out string
	for time.Now().Before(deadline) {
		o, err := kubectlErr(dir, args...)
		out = o
		if err == nil && check(strings.TrimSpace(o)) {
			return strings.TrimSpace(o)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not true within %s; last output of kubectl %s:\n%s", what, timeout, strings.Join(args, " "), out)
	return ""
}

func syncReady(name string) []string {
	return []string{"get", "sync", name, "-n", "default", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason} {.status.lastAppliedRevision} {.status.conditions[?(@.type=="Ready")].message}`}
}

// TestGitOpsAcceptance runs the example layout the way a user would:
// `strata up --sync`, then commits delivered by webhook, a prune, a broken
// commit, and a commit whose Deployment never becomes available.
func TestGitOpsAcceptance(t *testing.T) {
	parallel(t)
	state := t.TempDir()
	repo := gittest.NewRepo(t, t.TempDir(), "shop")
	repo.CopyDir(filepath.Join(testenv.RepoRoot(), "examples", "gitops"), ".")
	// Keep the e2e quick: a short health timeout for the app.
	apps := filepath.Join(repo.Dir, "clusters", "local", "apps.yaml")
	data, err := os.ReadFile(apps)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(apps, bytes.Replace(data, []byte("timeout: 1m"), []byte("timeout: 40s"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	first := repo.Commit("first", nil)
	rev1 := "main@sha1:" + first

	up := startUp(t, state, "--sync", repo.Dir+"#clusters/local")
	if !strings.Contains(up.output(), "syncing file://"+repo.Dir) {
		t.Errorf("strata up did not say it syncs the repository:\n%s", up.output())
	}

	// The whole layout converges; the app waited for its database claim.
	waitKubectl(t, state, 3*time.Minute, "Sync shop Ready", func(s string) bool { return strings.HasPrefix(s, "True ReconciliationSucceeded "+rev1) }, syncReady("shop")...)
	for _, s := range []string{"strata-up", "infrastructure", "shop-database"} {
		waitKubectl(t, state, 30*time.Second, "Sync "+s+" Ready", func(o string) bool { return strings.HasPrefix(o, "True ") }, syncReady(s)...)
	}
	claimReady := kubectl(t, state, "get", "databases.platform.strata.dev", "shop-db", "-n", "shop", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].lastTransitionTime}`)
	deployCreated := kubectl(t, state, "get", "deployment", "shop", "-n", "shop", "-o", "jsonpath={.metadata.creationTimestamp}")
	if claimReady == "" || deployCreated < claimReady {
		t.Errorf("the app Deployment was created at %s, before its database claim was Ready at %s", deployCreated, claimReady)
	}
	if got := kubectl(t, state, "get", "deployment", "shop", "-n", "shop", "-o", "jsonpath={.spec.replicas}"); got != "2" {
		t.Errorf("replicas = %s, want 2 from postBuild substitution", got)
	}
	// strata trace follows a Sync's inventory into the claim, its XR and the
	// composed resources.
	tr, err := strata(t, "trace", "sync/shop-database", "-n", "default", "--kubeconfig", filepath.Join(state, "kubeconfig"))
	if err != nil || !strings.Contains(tr, "Sync/shop-database") || !strings.Contains(tr, "Database/shop-db") || !strings.Contains(tr, "XDatabase/shop-db") || !strings.Contains(tr, "NopResource/") {
		t.Errorf("strata trace sync/shop-database: %v\n%s", err, tr)
	}

	// The SOPS-encrypted Secret was decrypted in memory and applied.
	if got := kubectl(t, state, "get", "secret", "shop-db-credentials", "-n", "shop", "-o", "jsonpath={.data.password}"); got != "czNjcjN0LWRlbW8tcGFzc3dvcmQ=" {
		t.Errorf("decrypted password (base64) = %q", got)
	}
	// The ExternalSecret read the payment API key from the fake store, the
	// Deployment that uses it carries its hash, and trace shows the chain.
	waitKubectl(t, state, 30*time.Second, "ExternalSecret payment-api synced", func(s string) bool { return s == "ZGVtby1wYXltZW50LWtleQ==" },
		"get", "secret", "payment-api", "-n", "shop", "-o", "jsonpath={.data.PAYMENT_API_KEY}")
	waitKubectl(t, state, 30*time.Second, "the secret hash on the shop Deployment", func(s string) bool { return s != "" },
		"get", "deployment", "shop", "-n", "shop", "-o", `jsonpath={.spec.template.metadata.annotations.secrets\.strata\.dev/secret-hash}`)
	if tr, err := strata(t, "trace", "externalsecret/payment-api", "-n", "shop", "--kubeconfig", filepath.Join(state, "kubeconfig")); err != nil ||
		!strings.Contains(tr, "SecretStore/demo-store") || !strings.Contains(tr, "Secret/payment-api") || !strings.Contains(tr, "Deployment/shop") || strings.Contains(tr, "demo-payment-key") {
		t.Errorf("strata trace externalsecret/payment-api: %v\n%s", err, tr)
	}
	cols := kubectl(t, state, "get", "syncs", "-n", "default")
	for _, c := range []string{"REVISION", "READY", "STATUS", "AGE"} {
		if !strings.Contains(cols, c) {
			t.Errorf("kubectl get syncs lacks column %s:\n%s", c, cols)
		}
	}

	// strata diff shows an uncommitted change field by field.
	cfg := filepath.Join(repo.Dir, "apps", "shop", "app", "config.yaml")
	cfgData, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, bytes.Replace(cfgData, []byte("GREETING: hello"), []byte("GREETING: hi"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	diff := exec.Command(filepath.Join(testenv.BinDir(), "strata"), "diff", "sync/shop", "-n", "default", "--path", repo.Dir)
	diff.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(state, "kubeconfig"))
	outb, err := diff.CombinedOutput()
	out := string(outb)
	if diff.ProcessState == nil || diff.ProcessState.ExitCode() != 1 || !strings.Contains(out, "~ ConfigMap/shop/shop-config") || !strings.Contains(out, `data.GREETING: "hello" -> "hi"`) || !strings.Contains(out, "0 to create, 1 to change, 0 to prune") {
		t.Errorf("strata diff (want exit status 1: differences): %v\n%s", err, out)
	}

	// Webhook: unsigned requests are refused; a signed push is applied
	// within seconds (the repository's own interval is 30s).
	kubectl(t, state, "create", "secret", "generic", "hook", "-n", "default", "--from-literal=token=e2e-token")
	kubectl(t, state, "patch", "gitrepository", "strata-up", "-n", "default", "--type=merge", "-p", `{"spec":{"webhookSecretRef":{"name":"hook"}}}`)
	addr, err := os.ReadFile(filepath.Join(state, "gitops", "receiver-addr"))
	if err != nil {
		t.Fatalf("the webhook receiver address was not written: %v", err)
	}
	hookURL := "http://" + strings.TrimSpace(string(addr)) + webhook.PathPrefix + "default/strata-up"
	push := func(signed bool) int {
		body := []byte(`{"ref":"refs/heads/main"}`)
		req, _ := http.NewRequest(http.MethodPost, hookURL, bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		if signed {
			req.Header.Set("X-Hub-Signature-256", webhook.Sign(body, []byte("e2e-token")))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	rev2 := "main@sha1:" + repo.Commit("greeting", nil)
	if code := push(false); code != http.StatusUnauthorized {
		t.Errorf("unsigned webhook: %d, want 401", code)
	}
	began := time.Now()
	if code := push(true); code != http.StatusAccepted {
		t.Fatalf("signed webhook: %d, want 202", code)
	}
	waitKubectl(t, state, 20*time.Second, "the new greeting applied", func(s string) bool { return s == "hi" },
		"get", "configmap", "shop-config", "-n", "shop", "-o", "jsonpath={.data.GREETING}")
	t.Logf("commit applied %.1fs after the webhook", time.Since(began).Seconds())
	waitKubectl(t, state, 30*time.Second, "Sync shop at rev2", func(s string) bool { return strings.HasPrefix(s, "True ReconciliationSucceeded "+rev2) }, syncReady("shop")...)

	// A commit that removes the Service prunes it.
	kust := filepath.Join("apps", "shop", "app", "kustomization.yaml")
	kdata, _ := os.ReadFile(filepath.Join(repo.Dir, kust))
	rev3 := "main@sha1:" + repo.Commit("drop service", map[string]string{
		kust: strings.Replace(string(kdata), "- service.yaml\n", "", 1),
		filepath.Join("apps", "shop", "app", "service.yaml"): "",
	})
	push(true)
	waitKubectl(t, state, 30*time.Second, "Service pruned", func(s string) bool { return s == "" },
		"get", "service", "shop", "-n", "shop", "--ignore-not-found", "-o", "name")
	waitKubectl(t, state, 30*time.Second, "Sync shop at rev3", func(s string) bool { return strings.HasPrefix(s, "True ReconciliationSucceeded "+rev3) }, syncReady("shop")...)

	// A commit with broken YAML changes nothing.
	badRev := "main@sha1:" + repo.Commit("broken", map[string]string{filepath.Join("apps", "shop", "app", "config.yaml"): "data: [unclosed\n"})
	push(true)
	msg := waitKubectl(t, state, 30*time.Second, "broken commit reported", func(s string) bool { return strings.HasPrefix(s, "False BuildFailed "+rev3) }, syncReady("shop")...)
	if !strings.Contains(msg, badRev) || !strings.Contains(msg, "config.yaml") {
		t.Errorf("BuildFailed message %q should name the revision and the file", msg)
	}
	if got := kubectl(t, state, "get", "configmap", "shop-config", "-n", "shop", "-o", "jsonpath={.data.GREETING}"); got != "hi" {
		t.Errorf("a broken commit changed the running config: GREETING=%q", got)
	}

	// A commit whose Deployment can never become available (no node
	// matches) fails its health check early and is rolled back.
	ddata, _ := os.ReadFile(filepath.Join(repo.Dir, "apps", "shop", "app", "deployment.yaml"))
	broken := strings.Replace(string(ddata), "spec:\n  replicas:", "spec:\n  progressDeadlineSeconds: 5\n  replicas:", 1)
	broken = strings.Replace(broken, "    spec:\n      containers:", "    spec:\n      nodeSelector: {strata.dev/no-such-node: \"true\"}\n      containers:", 1)
	rev5 := "main@sha1:" + repo.Commit("unschedulable", map[string]string{
		filepath.Join("apps", "shop", "app", "config.yaml"):     string(bytes.Replace(cfgData, []byte("GREETING: hello"), []byte("GREETING: hi"), 1)),
		filepath.Join("apps", "shop", "app", "deployment.yaml"): broken,
	})
	push(true)
	msg = waitKubectl(t, state, 90*time.Second, "rollback", func(s string) bool { return strings.HasPrefix(s, "False RolledBack "+rev3) }, syncReady("shop")...)
	if !strings.Contains(msg, rev5) || !strings.Contains(msg, "rolled back to "+rev3) {
		t.Errorf("rollback message %q should name %s and %s", msg, rev5, rev3)
	}
	waitKubectl(t, state, 60*time.Second, "the previous Deployment restored and available", func(s string) bool { return s == "2/" },
		"get", "deployment", "shop", "-n", "shop", "-o", "jsonpath={.status.availableReplicas}/{.spec.template.spec.nodeSelector}")
	// strata diff of the fetched (failed) revision shows what the rollback
	// holds back.
	fetched := exec.Command(filepath.Join(testenv.BinDir(), "strata"), "diff", "sync/shop", "-n", "default")
	fetched.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(state, "kubeconfig"))
	if outb, err := fetched.CombinedOutput(); fetched.ProcessState == nil || fetched.ProcessState.ExitCode() != 1 || !strings.Contains(string(outb), "~ Deployment/shop/shop") || !strings.Contains(string(outb), "no-such-node") {
		t.Errorf("strata diff of the fetched revision (want exit status 1: differences): %v\n%s", err, outb)
	}
	events := kubectl(t, state, "get", "events", "-n", "default", "--field-selector", "involvedObject.name=shop,reason=RolledBack")
	if !strings.Contains(events, "rolled back to") {
		t.Errorf("no RolledBack event:\n%s", events)
	}
}
