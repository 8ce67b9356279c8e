package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/scheme"
	"github.com/strata-dev/strata/internal/testenv"
	"github.com/strata-dev/strata/internal/testenv/promtest"
)

// rolloutApp reads examples/rollout/canary, with the test's Prometheus and
// the web container's image (and pod annotations) of one commit.
func rolloutApp(t *testing.T, promAddress, version string, podAnnotations map[string]string) map[string]string {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(), "examples", "rollout", "canary")
	files := map[string]string{}
	for _, f := range []string{"deployment.yaml", "rollout.yaml"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(data), "http://prometheus.monitoring:9090", promAddress)
		s = strings.Replace(s, "image: example.com/web:1", "image: example.com/web:"+version, 1)
		if len(podAnnotations) > 0 {
			var keys []string
			for k := range podAnnotations {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			ann := "      annotations:\n"
			for _, k := range keys {
				ann += fmt.Sprintf("        %s: %q\n", k, podAnnotations[k])
			}
			s = strings.Replace(s, "      labels: {app: web}\n", "      labels: {app: web}\n"+ann, 1)
		}
		files["apps/web/"+f] = s
	}
	return files
}

const rolloutSync = `apiVersion: gitops.strata.dev/v1alpha1
kind: Sync
metadata: {name: web, namespace: default}
spec:
  sourceRef: {kind: GitRepository, name: strata-up}
  path: apps/web
  interval: 10m
  prune: enabled
  wait: true
`

// stepRecord is one status write of the Rollout while it rolls a canary
// out: its step, weight and the canary ReplicaSet's replicas it set.
type stepRecord struct {
	step, weight, canaryReplicas, readyCanary int32
	canaryHash                                string
}

// recordSteps watches Rollout web and records every status write that has
// a canary: a watch delivers each write, so no step is missed however short.
func recordSteps(t *testing.T, cfg *rest.Config) func() []stepRecord {
	t.Helper()
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(context.Background(), &deliveryv1.RolloutList{}, client.InNamespace("default"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out []stepRecord
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			ro, ok := ev.Object.(*deliveryv1.Rollout)
			if !ok || ro.Name != "web" || ro.Status.CanaryRevision == nil {
				continue
			}
			mu.Lock()
			out = append(out, stepRecord{step: ptr.Deref(ro.Status.CurrentStep, -1), weight: ro.Status.Weight, canaryReplicas: ro.Status.CanaryReplicas,
				readyCanary: ro.Status.ReadyCanaryReplicas, canaryHash: ro.Status.CanaryRevision.PodTemplateHash})
			mu.Unlock()
		}
	}()
	return func() []stepRecord {
		w.Stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}

// readyEndpoints counts the ready endpoints of Service web by the
// pod-template-hash of their pods.
func readyEndpoints(ctx context.Context, c client.Client) (map[string]int, error) {
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace("default"), client.MatchingLabels{"app": "web"}); err != nil {
		return nil, err
	}
	hashOf := map[string]string{}
	for _, p := range pods.Items {
		hashOf[p.Name] = p.Labels[deliveryv1.PodTemplateHashLabel]
	}
	slices := &discoveryv1.EndpointSliceList{}
	if err := c.List(ctx, slices, client.InNamespace("default"), client.MatchingLabels{discoveryv1.LabelServiceName: "web"}); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, sl := range slices.Items {
		for _, e := range sl.Endpoints {
			if e.TargetRef != nil && ptr.Deref(e.Conditions.Ready, false) {
				out[hashOf[e.TargetRef.Name]]++
			}
		}
	}
	return out, nil
}

func rolloutField(t *testing.T, state, jsonpath string) string {
	t.Helper()
	return kubectl(t, state, "get", "rollout", "web", "-n", "default", "-o", "jsonpath="+jsonpath)
}

// TestRolloutCanaryAcceptance is issue 12's canary scenario on the local
// cluster, driven by commits as a user would, with the real Prometheus: a
// good commit goes 20% → pause 10s → analysis → 50% → 100% (the canary
// ReplicaSet and the Service's ready endpoints checked at each step); a
// commit whose canary pods crash-loop and one whose metrics fail the
// analysis are aborted with all traffic on the stable version, reported on
// the Rollout and on the Sync; the next good commit rolls out without a
// retry; the HPA still targets the Deployment.
func TestRolloutCanaryAcceptance(t *testing.T) {
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
		err := (*c).List(ctx, pods, client.InNamespace("default"), client.MatchingLabels{"app": "web"})
		return pods.Items, err
	})
	prom := promtest.Start(t, tg.Addr)
	repo := gittest.NewRepo(t, t.TempDir(), "rollout")
	files := rolloutApp(t, prom.Address, "1", nil)
	files["clusters/web.yaml"] = rolloutSync
	rev1 := "main@sha1:" + repo.Commit("web 1", files)

	up := startUp(t, state, "--sync", repo.Dir+"#clusters", "-v", "1")
	if !strings.Contains(up.output(), "Gateway API CRDs") {
		t.Errorf("strata up did not install the Gateway API CRDs:\n%s", up.output())
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(state, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	cl.Store(&c)
	t.Cleanup(func() {
		if t.Failed() {
			// What the Rollout decided from: the Deployment's status and
			// every ReplicaSet and pod of the app.
			for _, args := range [][]string{
				{"get", "deployment", "web", "-n", "default", "-o", "jsonpath=generation {.metadata.generation} paused {.spec.paused} status {.status}"},
				{"get", "replicasets,pods", "-n", "default", "-l", "app=web", "-o", "wide"},
				{"get", "rollout", "web", "-n", "default", "-o", "jsonpath={.status}"},
				// When the Sync last decided, and what it said then.
				{"get", "sync", "web", "-n", "default", "-o", "jsonpath={.status}"},
				{"get", "events", "-n", "default", "--field-selector", "involvedObject.name=web", "--sort-by", ".lastTimestamp"},
			} {
				out, err := kubectlErr(state, args...)
				t.Logf("kubectl %s (err %v):\n%s", strings.Join(args, " "), err, out)
			}
			// The engine's own account (errors and retries of the
			// Sync and the Rollout named web) from the manager's log;
			// the events are above.
			t.Logf("manager log, lines naming web:\n%s", logLines(filepath.Join(state, "logs", "manager.log"), `"web"`, 80, "Event occurred"))
		}
	})
	syncState := syncReady("web")
	commit := func(msg, version string, podAnnotations map[string]string) string {
		t.Helper()
		rev := "main@sha1:" + repo.Commit(msg, rolloutApp(t, prom.Address, version, podAnnotations))
		kubectl(t, state, "annotate", "gitrepository", "strata-up", "-n", "default", "--overwrite", "strata.dev/reconcile-requested-at="+time.Now().Format(time.RFC3339Nano))
		return rev
	}
	waitHealthy := func(rev, what string) string {
		t.Helper()
		waitKubectl(t, state, 3*time.Minute, "Sync web Ready on "+what, func(s string) bool { return strings.HasPrefix(s, "True ReconciliationSucceeded "+rev) }, syncState...)
		return waitKubectl(t, state, time.Minute, "Rollout web healthy on "+what, func(s string) bool { return strings.HasPrefix(s, "Healthy ") && strings.HasSuffix(s, " "+rev) },
			"get", "rollout", "web", "-n", "default", "-o", "jsonpath={.status.phase} {.status.stableRevision.podTemplateHash} {.status.stableRevision.gitRevision}")
	}
	onlyStable := func(stable, what string) {
		t.Helper()
		waitKubectl(t, state, time.Minute, what+": canary scaled to zero", func(s string) bool { return s == "0" || s == "" }, "get", "rollout", "web", "-n", "default", "-o", "jsonpath={.status.canaryReplicas}")
		deadline := time.Now().Add(time.Minute)
		for {
			eps, err := readyEndpoints(ctx, c)
			if err == nil && len(eps) == 1 && eps[stable] == 10 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: ready endpoints %v (err %v), want all 10 on stable %s", what, eps, err, stable)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// The first commit: no stable version to protect, the Deployment
	// creates its pods; the Sync set the Git revision the Rollout records.
	fields := strings.Fields(waitHealthy(rev1, "web:1"))
	stable1 := fields[1]

	// A good commit, step by step. At the pause and at the analysis the
	// Service has exactly 2 ready endpoints of the new version beside the
	// 10 of the stable one.
	steps := recordSteps(t, cfg)
	rev2 := commit("web 2", "2", nil)
	waitKubectl(t, state, time.Minute, "Sync web waits for the rollout of "+rev2, func(s string) bool {
		return strings.HasPrefix(s, "False Progressing") && strings.Contains(s, "is rolling out revision")
	}, syncState...)
	for _, step := range []string{"1", "2"} {
		waitKubectl(t, state, time.Minute, "Rollout web at step "+step, func(s string) bool { return s == step },
			"get", "rollout", "web", "-n", "default", "-o", "jsonpath={.status.currentStep}")
		canary := rolloutField(t, state, "{.status.canaryRevision.podTemplateHash}")
		deadline := time.Now().Add(5 * time.Second)
		for {
			eps, err := readyEndpoints(ctx, c)
			if err == nil && eps[canary] == 2 && eps[stable1] == 10 && len(eps) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("at step %s the ready endpoints are %v (err %v), want 2 of canary %s and 10 of stable %s", step, eps, err, canary, stable1)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	fields = strings.Fields(waitHealthy(rev2, "web:2"))
	stable2 := fields[1]
	if stable2 == stable1 {
		t.Fatalf("the stable revision did not change: %s", stable2)
	}
	checkSteps(t, steps(), stable2)
	onlyStable(stable2, "after promotion")
	if got := rolloutField(t, state, "{.status.stableRevision.gitRevision}"); got != rev2 {
		t.Errorf("stable git revision %q, want %q (from the Sync's annotation)", got, rev2)
	}

	// A commit whose canary pods crash-loop: the 20% step never becomes
	// ready, the progress deadline aborts it.
	rev3 := commit("web 3 (crashes)", "3", map[string]string{cluster.CrashLoopAnnotation: "true"})
	out := waitKubectl(t, state, 2*time.Minute, "Sync web reports the abort of "+rev3, func(s string) bool {
		return strings.HasPrefix(s, "False RolloutAborted "+rev3) && strings.Contains(s, "aborted revision "+rev3) && strings.Contains(s, "stable revision "+rev2)
	}, syncState...)
	if !strings.Contains(out, deliveryv1.ReasonProgressDeadlineExceeded) {
		t.Errorf("the Sync does not say why the rollout aborted: %s", out)
	}
	ro := waitKubectl(t, state, 10*time.Second, "Rollout web aborted", func(s string) bool { return strings.HasPrefix(s, "Aborted RolloutAborted") },
		"get", "rollout", "web", "-n", "default", "-o", `jsonpath={.status.phase} {.status.conditions[?(@.type=="Ready")].reason} {.status.conditions[?(@.type=="Ready")].message}`)
	if !strings.Contains(ro, rev3) || !strings.Contains(ro, rev2) {
		t.Errorf("the Rollout's Ready message does not name both revisions: %s", ro)
	}
	onlyStable(stable2, "after the crash-looping canary")

	// A commit whose metrics fail the analysis: its pods are Ready, but 40%
	// of their requests fail.
	rev4 := commit("web 4 (errors)", "4", map[string]string{promtest.ErrorRatioAnnotation: "0.4"})
	out = waitKubectl(t, state, 2*time.Minute, "Sync web reports the abort of "+rev4, func(s string) bool {
		return strings.HasPrefix(s, "False RolloutAborted "+rev4) && strings.Contains(s, "aborted revision "+rev4) && strings.Contains(s, "stable revision "+rev2)
	}, syncState...)
	if !strings.Contains(out, deliveryv1.ReasonAnalysisFailed) {
		t.Errorf("the Sync does not say the analysis failed: %s", out)
	}
	runs := kubectl(t, state, "get", "analysisruns", "-n", "default", "-o", `jsonpath={range .items[*]}{.status.phase}{" "}{end}`)
	if !strings.Contains(runs, "Failed") || !strings.Contains(runs, "Successful") {
		t.Errorf("analysis runs %q: want the good commit's Successful and this commit's Failed", runs)
	}
	onlyStable(stable2, "after the failed analysis")

	// The next good commit rolls out without a retry.
	rev5 := commit("web 5", "5", nil)
	fields = strings.Fields(waitHealthy(rev5, "web:5"))
	onlyStable(fields[1], "after web:5")

	// The HPA still targets the Deployment, which kept its name and labels
	// and can be scaled through it.
	if got := kubectl(t, state, "get", "hpa", "web", "-n", "default", "-o", "jsonpath={.spec.scaleTargetRef.kind}/{.spec.scaleTargetRef.name}"); got != "Deployment/web" {
		t.Errorf("HPA target %s, want Deployment/web", got)
	}
	waitKubectl(t, state, time.Minute, "the HPA can read the Deployment's scale", func(s string) bool { return s == "True" },
		"get", "hpa", "web", "-n", "default", "-o", `jsonpath={.status.conditions[?(@.type=="AbleToScale")].status}`)
	if got := kubectl(t, state, "get", "deployment", "web", "-n", "default", "-o", "jsonpath={.metadata.labels.strata\\.dev/sync-name} {.spec.selector.matchLabels.app} {.spec.replicas}"); !strings.HasSuffix(got, "web 10") {
		t.Errorf("Deployment web: %q; want its Git selector and replicas", got)
	}
}

// checkSteps checks the canary's replicas at each step of the good commit
// (10 replicas, steps 20% → pause → analysis → 50% → 100%), from the
// Rollout's status writes: each step set ceil(weight × 10 / 100) canary
// replicas, and a setWeight step was left only once all its pods were
// Ready.
func checkSteps(t *testing.T, records []stepRecord, canary string) {
	t.Helper()
	type want struct{ weight, replicas int32 }
	wants := map[int32]want{0: {20, 2}, 1: {20, 2}, 2: {20, 2}, 3: {50, 5}, 4: {100, 10}}
	seen := map[int32]bool{}
	weights := map[int32]bool{}
	maxReady := map[int32]int32{}
	for _, r := range records {
		w, ok := wants[r.step]
		if r.canaryHash != canary || !ok {
			continue
		}
		seen[r.step] = true
		weights[r.weight] = true
		// The weight is the traffic the canary gets: the step's once its
		// pods are Ready, the step before's until then.
		if r.canaryReplicas != w.replicas || r.weight > w.weight {
			t.Errorf("step %d: weight %d with %d canary replicas, want %d replicas and at most %d%%", r.step, r.weight, r.canaryReplicas, w.replicas, w.weight)
		}
		if r.readyCanary > maxReady[r.step] {
			maxReady[r.step] = r.readyCanary
		}
	}
	for step := int32(0); step <= 4; step++ {
		if !seen[step] {
			t.Errorf("step %d was never written (%d status writes recorded)", step, len(records))
		}
	}
	for _, w := range []int32{20, 50} {
		if !weights[w] {
			t.Errorf("the Rollout never reported weight %d%% (weights seen: %v)", w, weights)
		}
	}
	// The pause and the analysis start from the 20% step's 2 Ready pods,
	// and the 100% step from the 50% step's 5.
	for step, ready := range map[int32]int32{1: 2, 2: 2, 4: 5} {
		if maxReady[step] < ready {
			t.Errorf("step %d: at most %d canary pods Ready, want the previous step's %d", step, maxReady[step], ready)
		}
	}
}
