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

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
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

// trafficSample is what the data plane would act on at one moment: the
// Rollout's step and the ready endpoints of the Service per version.
type trafficSample struct {
	step           int32
	canaryHash     string
	canaryReplicas int32 // the canary ReplicaSet's spec.replicas
	ready          map[string]int
}

// trafficRecorder samples the Rollout, the canary ReplicaSet and the
// Service's EndpointSlices every 50ms while a rollout runs.
type trafficRecorder struct {
	c       client.Client
	mu      sync.Mutex
	samples []trafficSample
	stop    chan struct{}
	done    chan struct{}
}

func recordTraffic(c client.Client) *trafficRecorder {
	r := &trafficRecorder{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			select {
			case <-r.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if s, err := sampleTraffic(context.Background(), c); err == nil {
				r.mu.Lock()
				r.samples = append(r.samples, s)
				r.mu.Unlock()
			}
		}
	}()
	return r
}

func (r *trafficRecorder) finish() []trafficSample {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.samples
}

func sampleTraffic(ctx context.Context, c client.Client) (trafficSample, error) {
	s := trafficSample{ready: map[string]int{}}
	ro := &deliveryv1.Rollout{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web"}, ro); err != nil {
		return s, err
	}
	s.step = ptr.Deref(ro.Status.CurrentStep, -1)
	if ro.Status.CanaryRevision != nil {
		s.canaryHash = ro.Status.CanaryRevision.PodTemplateHash
		rs := &appsv1.ReplicaSet{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web-" + s.canaryHash}, rs); err == nil {
			s.canaryReplicas = ptr.Deref(rs.Spec.Replicas, 0)
		}
	}
	ready, err := readyEndpoints(ctx, c)
	s.ready = ready
	return s, err
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

	up := startUp(t, state, "--sync", repo.Dir+"#clusters")
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
		waitKubectl(t, state, time.Minute, what+": canary scaled to zero", func(s string) bool { return s == "0" }, "get", "rollout", "web", "-n", "default", "-o", "jsonpath={.status.canaryReplicas}")
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

	// A good commit, step by step.
	rec := recordTraffic(c)
	rev2 := commit("web 2", "2", nil)
	waitKubectl(t, state, time.Minute, "Sync web waits for the rollout of "+rev2, func(s string) bool {
		return strings.HasPrefix(s, "False Progressing") && strings.Contains(s, "is rolling out revision")
	}, syncState...)
	fields = strings.Fields(waitHealthy(rev2, "web:2"))
	stable2 := fields[1]
	samples := rec.finish()
	if stable2 == stable1 {
		t.Fatalf("the stable revision did not change: %s", stable2)
	}
	checkSteps(t, samples, stable1, stable2)
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

// checkSteps checks what the data plane saw at each step of the good
// commit (10 replicas, steps 20% → pause → analysis → 50% → 100%): the
// canary ReplicaSet had ceil(weight × 10 / 100) replicas, the stable
// version kept its 10 ready endpoints throughout, and at the pause and the
// analysis exactly 2 canary endpoints were ready.
func checkSteps(t *testing.T, samples []trafficSample, stable1, stable2 string) {
	t.Helper()
	want := map[int32]int32{0: 2, 1: 2, 2: 2, 3: 5, 4: 10}
	seen := map[int32]bool{}
	maxCanary := map[int32]int{}
	for _, s := range samples {
		if s.canaryHash != stable2 || s.step < 0 || s.step > 4 {
			continue
		}
		seen[s.step] = true
		if s.canaryReplicas != 0 && s.canaryReplicas != want[s.step] {
			t.Errorf("step %d: canary ReplicaSet has %d replicas, want %d", s.step, s.canaryReplicas, want[s.step])
		}
		// (At step 4 the promotion may already hand the pods over before
		// the Rollout's status says so.)
		if s.step < 4 && s.ready[stable1] != 10 {
			t.Errorf("step %d: %d stable endpoints ready, want 10 (the stable version keeps its replicas until promotion)", s.step, s.ready[stable1])
		}
		if n := s.ready[stable2]; n > int(want[s.step]) {
			t.Errorf("step %d: %d canary endpoints ready, more than the step's %d", s.step, n, want[s.step])
		}
		if s.ready[stable2] > maxCanary[s.step] {
			maxCanary[s.step] = s.ready[stable2]
		}
	}
	for step := int32(0); step <= 4; step++ {
		if !seen[step] {
			t.Errorf("step %d was never observed (%d samples)", step, len(samples))
		}
	}
	for _, step := range []int32{1, 2} {
		if maxCanary[step] != 2 {
			t.Errorf("at step %d (%s) %d canary endpoints were ready, want 2", step, map[int32]string{1: "pause", 2: "analysis"}[step], maxCanary[step])
		}
	}
	// The 50% step ends when its 5 pods are Ready: the 100% step starts
	// from them.
	if maxCanary[4] < 5 {
		t.Errorf("the 100%% step never saw the 50%% step's 5 canary endpoints ready (max %d)", maxCanary[4])
	}
}
