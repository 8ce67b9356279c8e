package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/testenv/promtest"
)

// verifyLayout is a repository whose clusters/ folder holds a verified Sync
// and its AnalysisTemplate, and whose app/ folder is the "app": a
// ConfigMap whose errorRate the test's exporter reports to Prometheus.
func verifyLayout(promAddress string) map[string]string {
	return map[string]string{
		"clusters/verify.yaml": fmt.Sprintf(`apiVersion: delivery.strata.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate, namespace: default}
spec:
  args: [{name: app}]
  metrics:
  - name: error-rate
    initialDelay: 2s
    interval: 1s
    count: 2
    noData: Fail
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        address: %s
        query: app_error_rate{app="{{args.app}}"}
---
apiVersion: gitops.strata.dev/v1alpha1
kind: Sync
metadata: {name: web, namespace: default}
spec:
  sourceRef: {kind: GitRepository, name: strata-up}
  path: app
  interval: 10m
  prune: enabled
  verify:
    templates: [{name: error-rate}]
    args: [{name: app, value: web}]
  rollback: {onVerificationFailure: true}
`, promAddress),
		"app/web.yaml": webApp("0.01"),
	}
}

func webApp(rate string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  errorRate: %q\n", rate)
}

// TestVerificationAcceptance is issue 11's verification scenario on the
// local cluster with the real Prometheus: a commit whose app reports a low
// error rate is verified and recorded; a commit whose app reports a high
// error rate fails verification and is rolled back to the last verified
// revision, reported on the Sync with metric and value; `strata analysis
// get` and `strata trace` show the run.
func TestVerificationAcceptance(t *testing.T) {
	parallel(t, "prometheus")
	state := t.TempDir()
	var cl atomic.Pointer[client.Client]
	tg := promtest.NewTarget(t)
	tg.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "app_error_rate", Help: "error rate of the deployed app", ConstLabels: prometheus.Labels{"app": "web"},
	}, func() float64 {
		c := cl.Load()
		if c == nil {
			return 0
		}
		cm := &corev1.ConfigMap{}
		if err := (*c).Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "web"}, cm); err != nil {
			return 0
		}
		f, _ := strconv.ParseFloat(cm.Data["errorRate"], 64)
		return f
	}))
	prom := promtest.Start(t, tg.Addr)
	repo := gittest.NewRepo(t, t.TempDir(), "verify")
	rev1 := "main@sha1:" + repo.Commit("good", verifyLayout(prom.Address))

	startUp(t, state, "--sync", repo.Dir+"#clusters")
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(state, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl.Store(&c)
	verified := []string{"get", "sync", "web", "-n", "default", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason} {.status.lastVerifiedRevision} {.status.verification.runName} {.status.conditions[?(@.type=="Ready")].message}`}
	out := waitKubectl(t, state, 3*time.Minute, "Sync web verified", func(s string) bool {
		return strings.HasPrefix(s, "True ReconciliationSucceeded "+rev1)
	}, verified...)
	run1 := strings.Fields(out)[3]

	rev2 := "main@sha1:" + repo.Commit("bad", map[string]string{"app/web.yaml": webApp("0.5")})
	kubectl(t, state, "annotate", "gitrepository", "strata-up", "-n", "default", "--overwrite", "strata.dev/reconcile-requested-at="+time.Now().Format(time.RFC3339Nano))
	out = waitKubectl(t, state, 3*time.Minute, "Sync web rolled back", func(s string) bool {
		return strings.HasPrefix(s, "False VerificationFailed "+rev1) && strings.Contains(s, rev2) && strings.Contains(s, "error-rate") &&
			strings.Contains(s, "[0.5]") && strings.Contains(s, "rolled back to "+rev1)
	}, verified...)
	if got := kubectl(t, state, "get", "configmap", "web", "-n", "default", "-o", "jsonpath={.data.errorRate}"); got != "0.01" {
		t.Errorf("the app runs errorRate %s after the rollback, want 0.01", got)
	}
	run2 := strings.Fields(out)[3]
	if run2 == run1 {
		t.Fatalf("the failed revision has no run of its own: %s", out)
	}

	kc := "--kubeconfig=" + filepath.Join(state, "kubeconfig")
	get, err := strata(t, "analysis", "get", run2, "-n", "default", kc)
	if err != nil || !strings.Contains(get, ": Failed") || !strings.Contains(get, `app_error_rate{app="web"}`) || !strings.Contains(get, "[0.5]") {
		t.Errorf("strata analysis get %s: %v\n%s", run2, err, get)
	}
	tr, err := strata(t, "trace", "sync/web", "-n", "default", kc)
	if err != nil || !strings.Contains(tr, "AnalysisRun/"+run2) {
		t.Errorf("strata trace sync/web does not show the verification run %s: %v\n%s", run2, err, tr)
	}
	cols := kubectl(t, state, "get", "analysisruns", "-n", "default")
	for _, col := range []string{"PHASE", "READY", "STATUS", "Failed", "Successful"} {
		if !strings.Contains(cols, col) {
			t.Errorf("kubectl get analysisruns lacks %s:\n%s", col, cols)
		}
	}
}
