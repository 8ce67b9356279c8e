package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/scheme"
	"github.com/strata-dev/strata/internal/testenv/promtest"
)

// siteApp is a blue-green release of Deployment site: the preview Service
// reaches the new version, the active Service switches to it only after the
// pre-promotion analysis (the error rate of the new pods in Prometheus)
// passes.
func siteApp(promAddress, version, errorRatio string) map[string]string {
	ann := ""
	if errorRatio != "" {
		ann = fmt.Sprintf("      annotations: {%s: %q}\n", promtest.ErrorRatioAnnotation, errorRatio)
	}
	return map[string]string{"apps/site/site.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: site}
spec:
  replicas: 3
  selector: {matchLabels: {app: site}}
  template:
    metadata:
      labels: {app: site}
` + ann + `    spec:
      containers: [{name: site, image: "example.com/site:` + version + `"}]
---
apiVersion: v1
kind: Service
metadata: {name: site}
spec:
  selector: {app: site}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: site-preview}
spec:
  selector: {app: site}
  ports: [{port: 80}]
---
apiVersion: delivery.strata.dev/v1alpha1
kind: Rollout
metadata: {name: site}
spec:
  targetRef: {kind: Deployment, name: site}
  service: site
  strategy:
    blueGreen:
      previewService: site-preview
      autoPromotion: {enabled: true}
      scaleDownDelay: 2s
      prePromotionAnalysis:
        templates: [{name: site-errors}]
        args:
        - name: hash
          valueFrom: {fieldRef: {fieldPath: "{.status.canaryRevision.podTemplateHash}"}}
---
apiVersion: delivery.strata.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: site-errors}
spec:
  args: [{name: hash}]
  metrics:
  - name: error-rate
    initialDelay: 3s
    interval: 1s
    count: 3
    noData: Fail
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        address: ` + promAddress + `
        query: sum(rate(http_requests_total{pod_template_hash="{{args.hash}}",code="500"}[5s])) / sum(rate(http_requests_total{pod_template_hash="{{args.hash}}"}[5s]))
`}
}

// apiApp is a canary of Deployment api whose traffic is split by the
// weights of HTTPRoute api (Gateway API) between the Services api-stable
// and api-canary that the Rollout manages.
func apiApp(version string) map[string]string {
	return map[string]string{"apps/api/api.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 4
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: "example.com/api:` + version + `"}]
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{name: gateway}]
  rules:
  - backendRefs: [{name: api, port: 80}]
---
apiVersion: delivery.strata.dev/v1alpha1
kind: Rollout
metadata: {name: api}
spec:
  targetRef: {kind: Deployment, name: api}
  service: api
  strategy:
    canary:
      trafficRouting:
        gatewayAPI: {httpRoutes: [api]}
      steps:
      - setWeight: 25
      - pause: {duration: 8s}
      - setWeight: 50
      - pause: {duration: 8s}
`}
}

const siteAndAPISyncs = `apiVersion: gitops.strata.dev/v1alpha1
kind: Sync
metadata: {name: site, namespace: default}
spec:
  sourceRef: {kind: GitRepository, name: strata-up}
  path: apps/site
  interval: 10m
  prune: enabled
  wait: true
---
apiVersion: gitops.strata.dev/v1alpha1
kind: Sync
metadata: {name: api, namespace: default}
spec:
  sourceRef: {kind: GitRepository, name: strata-up}
  path: apps/api
  interval: 10m
  prune: enabled
  wait: true
`

// TestRolloutBlueGreenAndGatewayAcceptance: a blue-green commit whose new
// pods fail the pre-promotion analysis never gets the active Service (it
// is aborted and reported on the Sync); the next commit's passes and only
// then the active Service switches; a canary with Gateway API routing sets
// the HTTPRoute's backend weights step by step and ends all on stable.
func TestRolloutBlueGreenAndGatewayAcceptance(t *testing.T) {
	parallel(t, "prometheus")
	state := t.TempDir()
	ctx := context.Background()
	var cl atomic.Pointer[client.Client]
	tg := promtest.NewTarget(t)
	tg.Traffic(func(ctx context.Context) ([]corev1.Pod, error) {
		c := cl.Load()
		if c == nil {
			return nil, nil
		}
		pods := &corev1.PodList{}
		err := (*c).List(ctx, pods, client.InNamespace("default"))
		return pods.Items, err
	})
	prom := promtest.Start(t, tg.Addr)
	repo := gittest.NewRepo(t, t.TempDir(), "bluegreen")
	files := map[string]string{"clusters/apps.yaml": siteAndAPISyncs}
	for k, v := range siteApp(prom.Address, "1", "") {
		files[k] = v
	}
	for k, v := range apiApp("1") {
		files[k] = v
	}
	rev1 := "main@sha1:" + repo.Commit("site 1, api 1", files)
	startUp(t, state, "--sync", repo.Dir+"#clusters")
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(state, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	cl.Store(&c)
	commit := func(msg string, files map[string]string) string {
		t.Helper()
		rev := "main@sha1:" + repo.Commit(msg, files)
		kubectl(t, state, "annotate", "gitrepository", "strata-up", "-n", "default", "--overwrite", "strata.dev/reconcile-requested-at="+time.Now().Format(time.RFC3339Nano))
		return rev
	}
	for _, s := range []string{"site", "api"} {
		waitKubectl(t, state, 3*time.Minute, "Sync "+s+" Ready", func(o string) bool { return strings.HasPrefix(o, "True ReconciliationSucceeded "+rev1) }, syncReady(s)...)
	}
	selector := func(svc string) string {
		s := &corev1.Service{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: svc}, s); err != nil {
			t.Fatal(err)
		}
		return s.Spec.Selector[deliveryv1.PodTemplateHashLabel]
	}
	stable := strings.TrimSpace(waitKubectl(t, state, time.Minute, "Rollout site healthy", func(s string) bool { return strings.HasPrefix(s, "Healthy ") },
		"get", "rollout", "site", "-n", "default", "-o", "jsonpath={.status.phase} {.status.stableRevision.podTemplateHash}"))
	stable = strings.Fields(stable)[1]
	waitFor := func(what string, f func() error) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			err := f()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("the active Service selects the stable pods", func() error {
		if got := selector("site"); got != stable {
			return fmt.Errorf("active selector hash %q, want %q", got, stable)
		}
		return nil
	})

	// A commit whose new pods fail the analysis: the preview Service
	// reaches them, the active Service never does.
	rev2 := commit("site 2 (errors)", siteApp(prom.Address, "2", "0.4"))
	out := waitKubectl(t, state, 2*time.Minute, "Sync site reports the abort of "+rev2, func(s string) bool {
		return strings.HasPrefix(s, "False RolloutAborted "+rev2) && strings.Contains(s, "stable revision "+rev1)
	}, syncReady("site")...)
	if !strings.Contains(out, deliveryv1.ReasonAnalysisFailed) {
		t.Errorf("the Sync does not say the analysis failed: %s", out)
	}
	if got := selector("site"); got != stable {
		t.Errorf("after the failed analysis the active Service selects %q, want the stable %q", got, stable)
	}

	// The next commit passes; the active Service switches to it only once
	// its pre-promotion run is Successful.
	rev3 := commit("site 3", siteApp(prom.Address, "3", ""))
	var preview string
	waitFor("site 3 in preview", func() error {
		preview = rolloutCanaryHash(ctx, c, "site", rev3)
		if preview == "" {
			return fmt.Errorf("the Rollout has no canary of %s yet", rev3)
		}
		return nil
	})
	switchedBeforeRun := false
	waitFor("the active Service switched to site 3", func() error {
		active := selector("site")
		if active == preview {
			if !runSuccessful(ctx, c, preview) {
				switchedBeforeRun = true
			}
			return nil
		}
		if active != stable {
			return fmt.Errorf("active selector %q is neither stable %q nor preview %q", active, stable, preview)
		}
		return fmt.Errorf("active still on stable")
	})
	if switchedBeforeRun {
		t.Errorf("the active Service switched to %s before its pre-promotion analysis succeeded", preview)
	}
	waitKubectl(t, state, 2*time.Minute, "Sync site Ready on "+rev3, func(s string) bool { return strings.HasPrefix(s, "True ReconciliationSucceeded "+rev3) }, syncReady("site")...)

	// Gateway API: the canary's weights on the HTTPRoute, step by step.
	weights := []string{"get", "httproute", "api", "-n", "default", "-o", `jsonpath={range .spec.rules[0].backendRefs[*]}{.name}={.weight} {end}`}
	waitKubectl(t, state, time.Minute, "route all on stable", func(s string) bool { return s == "api-stable=100 api-canary=0" }, weights...)
	rev4 := commit("api 2", apiApp("2"))
	waitKubectl(t, state, time.Minute, "route at 25%", func(s string) bool { return s == "api-stable=75 api-canary=25" }, weights...)
	waitKubectl(t, state, time.Minute, "route at 50%", func(s string) bool { return s == "api-stable=50 api-canary=50" }, weights...)
	waitKubectl(t, state, 2*time.Minute, "Sync api Ready on "+rev4, func(s string) bool { return strings.HasPrefix(s, "True ReconciliationSucceeded "+rev4) }, syncReady("api")...)
	waitKubectl(t, state, time.Minute, "route all on the new stable", func(s string) bool { return s == "api-stable=100 api-canary=0" }, weights...)
}

// rolloutCanaryHash is the pod-template hash of the Rollout's canary (the
// blue-green preview) when the Git revision rev brought it.
func rolloutCanaryHash(ctx context.Context, c client.Client, name, rev string) string {
	ro := &deliveryv1.Rollout{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, ro); err != nil || ro.Status.CanaryRevision == nil || ro.Status.CanaryRevision.GitRevision != rev {
		return ""
	}
	return ro.Status.CanaryRevision.PodTemplateHash
}

// runSuccessful reports whether a Successful AnalysisRun of Rollout site
// measured revision hash (the Rollout names its runs after the revision).
func runSuccessful(ctx context.Context, c client.Client, hash string) bool {
	runs := &deliveryv1.AnalysisRunList{}
	if err := c.List(ctx, runs, client.InNamespace("default"), client.MatchingLabels{deliveryv1.RolloutNameLabel: "site"}); err != nil {
		return false
	}
	for _, r := range runs.Items {
		if strings.Contains(r.Name, hash) && r.Status.Phase == deliveryv1.PhaseSuccessful {
			return true
		}
	}
	return false
}
