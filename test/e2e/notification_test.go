package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/gitops/webhook"
	"github.com/strata-dev/strata/internal/testenv/amtest"
	"github.com/strata-dev/strata/internal/testenv/promtest"
)

// messages is a loopback endpoint that records generic-provider messages.
type messages struct {
	mu   sync.Mutex
	list []map[string]any
}

func (m *messages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		http.Error(w, "not JSON", http.StatusBadRequest)
		return
	}
	m.mu.Lock()
	m.list = append(m.list, v)
	m.mu.Unlock()
}

func (m *messages) seen() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, v := range m.list {
		out = append(out, fmt.Sprintf("%v %v", v["transition"], v["reason"]))
	}
	return out
}

func (m *messages) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for len(m.seen()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages within 2m, want %d: %q", len(m.seen()), n, m.seen())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return m.seen()
}

func appConfig(version string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop\ndata:\n  version: %q\n", version)
}

// TestNotificationsAcceptance runs notifications the way a user would, on
// the local cluster of `strata up`:
//   - an Alert in transitions mode delivers exactly one failure and one
//     recovery message for an episode of a failing Sync, with `strata up`
//     restarted between the failure and the recovery;
//   - a Prometheus alert rule over the app's error ratio fires into
//     Alertmanager, which posts to Strata's receiver, and the Sync whose
//     rollback.onAlerts matches rolls back to its previous good revision.
func TestNotificationsAcceptance(t *testing.T) {
	parallel(t, "alertmanager", "prometheus")
	state := t.TempDir()
	inbox := &messages{}
	srv := httptest.NewServer(inbox)
	defer srv.Close()

	repo := gittest.NewRepo(t, t.TempDir(), "shop")
	repo.Commit("first", map[string]string{
		"clusters/local/shop.yaml": `apiVersion: gitops.strata.dev/v1alpha1
kind: Sync
metadata: {name: shop, namespace: default}
spec:
  sourceRef: {kind: GitRepository, name: strata-up}
  path: app
  interval: 10m
  retryInterval: 2s
  prune: enabled
  rollback:
    onAlerts:
    - {name: alertname, value: HighErrorRate}
    - {name: service, value: shop}
`,
		"clusters/local/notifications.yaml": fmt.Sprintf(`apiVersion: notification.strata.dev/v1alpha1
kind: Provider
metadata: {name: inbox, namespace: default}
spec:
  type: generic
  address: %s/in
---
apiVersion: notification.strata.dev/v1alpha1
kind: Alert
metadata: {name: shop, namespace: default}
spec:
  providerRef: {name: inbox}
  mode: transitions
  eventSeverity: error
  eventSources:
  - {kind: Sync, name: shop}
---
apiVersion: v1
kind: Secret
metadata: {name: am-token, namespace: default}
stringData: {token: e2e-alert-token}
---
apiVersion: notification.strata.dev/v1alpha1
kind: Receiver
metadata: {name: alertmanager, namespace: default}
spec:
  type: alertmanager
  secretRef: {name: am-token}
`, srv.URL),
		"app/config.yaml": appConfig("1"),
	})
	up := startUp(t, state, "--sync", repo.Dir+"#clusters/local")
	fetch := func() {
		kubectl(t, state, "annotate", "gitrepository", "strata-up", "-n", "default", "--overwrite",
			"strata.dev/reconcile-requested-at="+time.Now().Format(time.RFC3339Nano))
	}
	version := func() string {
		return kubectl(t, state, "get", "configmap", "shop", "-n", "default", "-o", "jsonpath={.data.version}")
	}
	waitKubectl(t, state, 3*time.Minute, "Sync shop Ready", func(s string) bool { return strings.HasPrefix(s, "True ") }, syncReady("shop")...)
	waitKubectl(t, state, time.Minute, "Alert shop Ready", func(s string) bool { return s == "True" },
		"get", "alert", "shop", "-n", "default", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
	waitKubectl(t, state, time.Minute, "Receiver Ready", func(s string) bool { return strings.HasPrefix(s, "True /hook/alertmanager/default/alertmanager") },
		"get", "receiver", "alertmanager", "-n", "default", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.webhookPath}`)

	good := "main@sha1:" + repo.Commit("two", map[string]string{"app/config.yaml": appConfig("2")})
	fetch()
	waitKubectl(t, state, time.Minute, "Sync shop at two", func(s string) bool { return strings.HasPrefix(s, "True ReconciliationSucceeded "+good) }, syncReady("shop")...)

	// An episode: a broken commit fails (retried every 2s), then a fix
	// recovers it, with strata up restarted in between.
	repo.Commit("broken", map[string]string{"app/config.yaml": strings.Replace(appConfig("3"), "name: shop", "name: Not_A_Valid_Name", 1)})
	fetch()
	waitKubectl(t, state, time.Minute, "Sync shop failing", func(s string) bool { return strings.HasPrefix(s, "False ApplyFailed ") }, syncReady("shop")...)
	if got := inbox.wait(t, 1); got[0] != "failure ApplyFailed" {
		t.Fatalf("first message %q, want the failure", got)
	}
	up.interrupt()
	fixed := "main@sha1:" + repo.Commit("fixed", map[string]string{"app/config.yaml": appConfig("4")})
	// The same command again: --sync also lets the manager read the
	// file:// repository.
	startUp(t, state, "--sync", repo.Dir+"#clusters/local")
	fetch()
	waitKubectl(t, state, 2*time.Minute, "Sync shop at the fix", func(s string) bool { return strings.HasPrefix(s, "True ReconciliationSucceeded "+fixed) }, syncReady("shop")...)
	inbox.wait(t, 2)
	waitKubectl(t, state, time.Minute, "Alert delivered the recovery", func(s string) bool { return s == "ReconciliationSucceeded" },
		"get", "alert", "shop", "-n", "default", "-o", "jsonpath={.status.lastDeliveredEvent.reason}")
	if got, want := inbox.seen(), []string{"failure ApplyFailed", "recovery ReconciliationSucceeded"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("messages %q, want exactly %q", got, want)
	}

	// Rollback on an alert: Prometheus scrapes the app's error ratio, its
	// rule fires into Alertmanager, Alertmanager posts to Strata.
	addr, err := os.ReadFile(filepath.Join(state, "gitops", "receiver-addr"))
	if err != nil {
		t.Fatalf("the webhook receiver address was not written: %v", err)
	}
	app := promtest.NewTarget(t)
	ratio := app.Gauge("shop_error_ratio", "service")
	ratio.WithLabelValues("shop").Set(0.3)
	am := amtest.Start(t, amtest.Config{
		WebhookURL:  "http://" + strings.TrimSpace(string(addr)) + webhook.AlertPathPrefix + "default/alertmanager",
		BearerToken: "e2e-alert-token",
	})
	amtest.StartPrometheus(t, am, `groups:
- name: shop
  interval: 1s
  rules:
  - alert: HighErrorRate
    expr: shop_error_ratio > 0.05
`, app.Addr)
	rolled := waitKubectl(t, state, 2*time.Minute, "Sync shop rolled back on the alert", func(s string) bool { return strings.HasPrefix(s, "True AlertFiring") },
		"get", "sync", "shop", "-n", "default", "-o", `jsonpath={.status.conditions[?(@.type=="RolledBack")].status} {.status.conditions[?(@.type=="RolledBack")].reason} {.status.conditions[?(@.type=="RolledBack")].message}`)
	if want := "alert HighErrorRate fired for revision " + fixed + "; rolled back to " + good; !strings.Contains(rolled, want) {
		t.Errorf("RolledBack: %s, want %q", rolled, want)
	}
	if v := version(); v != "2" {
		t.Errorf("ConfigMap version %q after the rollback, want 2", v)
	}
	if s := kubectl(t, state, syncReady("shop")...); !strings.HasPrefix(s, "False RolledBack "+good) {
		t.Errorf("Sync Ready after the rollback: %s", s)
	}
}
