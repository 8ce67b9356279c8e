package delivery

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/kit/health"
	"github.com/strata-dev/strata/test/bench/benchutil"
)

// app is one app of 4 objects; %[1]s is its name.
const app = `apiVersion: v1
kind: ServiceAccount
metadata: {name: %[1]s}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: %[1]s}
data: {greeting: hello}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  selector: {app: %[1]s}
  clusterIP: None
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: 0
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      serviceAccountName: %[1]s
      containers: [{name: app, image: nginx}]
`

// kustomization lists a path's app files, as a Flux user's path would.
const kustomization = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
%s`

// poll is how often the benchmark looks at its trackers (in memory).
const poll = 20 * time.Millisecond

// workload is one delivery run: syncs Syncs, each applying appsPerSync apps
// of 4 objects from a path of its own, with or without a kustomization.yaml,
// and with or without waiting for the objects' health (spec.wait).
type workload struct {
	name        string
	syncs       int
	appsPerSync int
	kustomize   bool
	wait        bool
}

func (w workload) objects() int { return w.syncs * w.appsPerSync * 4 }

// files is the repository content: apps/<name>/s<i>/app<j>.yaml.
func (w workload) files() map[string]string {
	files := map[string]string{}
	for s := 0; s < w.syncs; s++ {
		var res strings.Builder
		for a := 0; a < w.appsPerSync; a++ {
			files[fmt.Sprintf("apps/%s/s%d/app%d.yaml", w.name, s, a)] = fmt.Sprintf(app, fmt.Sprintf("s%d-a%d", s, a))
			fmt.Fprintf(&res, "- app%d.yaml\n", a)
		}
		if w.kustomize {
			files[fmt.Sprintf("apps/%s/s%d/kustomization.yaml", w.name, s)] = fmt.Sprintf(kustomization, res.String())
		}
	}
	return files
}

// lowerBound creates what the workload writes directly, in namespace ns,
// through the unthrottled client: the same 4 objects per app and one
// ConfigMap standing for each Sync. Its Phase is the creates alone, the
// issue's lower bound. For a workload that waits for health, rolledOut is
// how long, from the same start, the cluster took until every Deployment
// created was healthy by the same check a Sync makes (kit/health): such a
// Sync cannot be Ready before kube-controller-manager has rolled its
// Deployment out.
func lowerBound(b *testing.B, up *benchutil.Up, c client.Client, w workload, ns string) (creates benchutil.Phase, rolledOut time.Duration) {
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	healthy := benchutil.NewFirstMatch(func(u *unstructured.Unstructured) bool { return health.Compute(u).Ready() })
	deployments := up.Track(b, appsv1.SchemeGroupVersion.WithKind("Deployment"), ns, healthy.Observe)
	defer deployments.Stop()
	var objs []*unstructured.Unstructured
	for s := 0; s < w.syncs; s++ {
		for a := 0; a < w.appsPerSync; a++ {
			for _, doc := range bytes.Split([]byte(fmt.Sprintf(app, fmt.Sprintf("s%d-a%d", s, a))), []byte("\n---\n")) {
				u := &unstructured.Unstructured{}
				if err := yaml.Unmarshal(doc, &u.Object); err != nil {
					b.Fatal(err)
				}
				u.SetNamespace(ns)
				objs = append(objs, u)
			}
		}
		cm := &unstructured.Unstructured{Object: map[string]any{"data": map[string]any{"path": fmt.Sprintf("s%d", s)}}}
		cm.SetAPIVersion("v1")
		cm.SetKind("ConfigMap")
		cm.SetNamespace(ns)
		cm.SetName(fmt.Sprintf("sync-s%d", s))
		objs = append(objs, cm)
	}
	var start time.Time
	creates = up.Measure(b, func() {
		start = time.Now()
		benchutil.Parallel(b, len(objs), benchutil.Workers, func(i int) error { return c.Create(ctx, objs[i]) })
	})
	if !w.wait {
		return creates, 0
	}
	apps := w.syncs * w.appsPerSync
	benchutil.WaitUntilEvery(b, 10*time.Minute, poll, "all lower-bound Deployments healthy", func() (bool, string) {
		n := healthy.Len()
		return n == apps, fmt.Sprintf("%d/%d healthy", n, apps)
	})
	return creates, healthy.Last().Sub(start)
}

// run creates the workload's GitRepository and then its Syncs (32 workers,
// one burst), until all Syncs are Ready.
func run(b *testing.B, up *benchutil.Up, c client.Client, repo *gittest.Repo, w workload) (benchutil.Row, time.Duration) {
	ctx := context.Background()
	// The previous workload's Deployments keep kube-controller-manager busy
	// after their Syncs are Ready.
	up.SettleWithin(b, 5*time.Minute)
	lb, rolledOut := lowerBound(b, up, c, w, "lower-bound-"+w.name)
	ns := w.name
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	g := &gitopsv1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
		Spec: gitopsv1.GitRepositorySpec{URL: repo.URL(), Interval: metav1.Duration{Duration: time.Hour}}}
	if err := c.Create(ctx, g); err != nil {
		b.Fatal(err)
	}
	benchutil.WaitUntilEvery(b, time.Minute, poll, "GitRepository ready", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(g), g); err != nil {
			return false, err.Error()
		}
		return conditions.IsTrue(g, conditions.Ready), ""
	})
	syncs := up.Track(b, gitopsv1.GroupVersion.WithKind("Sync"), ns, nil)
	defer syncs.Stop()
	// The lower bound's Deployments keep kube-controller-manager busy too.
	up.SettleWithin(b, 5*time.Minute)
	up.ResetPeakRSS()
	p := up.Measure(b, func() {
		benchutil.Parallel(b, w.syncs, benchutil.Workers, func(s int) error {
			return c.Create(ctx, &gitopsv1.Sync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("s%d", s)},
				Spec: gitopsv1.SyncSpec{SourceRef: gitopsv1.SourceReference{Name: "apps"}, Path: fmt.Sprintf("apps/%s/s%d", w.name, s),
					Interval: metav1.Duration{Duration: time.Hour}, Prune: gitopsv1.PruneEnabled, Wait: w.wait}})
		})
		benchutil.WaitUntilEvery(b, 20*time.Minute, poll, "all Syncs Ready", func() (bool, string) {
			ready, _ := syncs.Count(benchutil.IsReady)
			return ready == w.syncs, fmt.Sprintf("%d/%d ready", ready, w.syncs)
		})
	})
	step := fmt.Sprintf("%d Syncs × %d objects → all Ready", w.syncs, w.appsPerSync*4)
	if w.kustomize {
		step += ", kustomization.yaml in each path"
	}
	if w.wait {
		step += ", wait: true"
	}
	r := benchutil.Row{Step: step, Who: "Strata", N: w.syncs, Unit: "Sync", Phase: p, Bound: lb,
		BoundWhat: fmt.Sprintf("%d object creates, unthrottled", w.objects()+w.syncs), Own: w.syncs}
	r.Print()
	if w.wait {
		fmt.Printf("Strata %s: lower bound until its Deployments were healthy %.1fs, %.2fx of it\n", step, rolledOut.Seconds(), p.Took.Seconds()/rolledOut.Seconds())
		b.ReportMetric(p.Took.Seconds()/rolledOut.Seconds(), "x-rolledout")
	}
	fmt.Printf("Strata %s: manager peak RSS %.0f MiB (VmHWM of the strata up process)\n", step, up.PeakRSSMiB())
	b.ReportMetric(p.Took.Seconds(), "s-to-ready")
	b.ReportMetric(r.Ratio(), "x-lowerbound")
	b.ReportMetric(p.Per(w.syncs), "writes/Sync")
	return r, rolledOut
}

// BenchmarkDelivery runs N Syncs of one 4-object app each (N from
// STRATA_BENCH_N, default 1000), the same with a kustomization.yaml in every
// path, the same waiting for health (wait: true), and one Sync of N apps (4N
// objects), in one cluster.
func BenchmarkDelivery(b *testing.B) {
	load := benchutil.LoadAverage()
	n := benchutil.Sizes("1000")[0]
	workloads := []workload{
		{name: "plain", syncs: n, appsPerSync: 1},
		{name: "kustomize", syncs: n, appsPerSync: 1, kustomize: true},
		{name: "wait", syncs: n, appsPerSync: 1, wait: true},
		{name: "one", syncs: 1, appsPerSync: n},
	}
	up := benchutil.StartUp(b, "gitops")
	c := up.Unthrottled(b)
	repo := gittest.NewRepo(b, b.TempDir(), "apps")
	files := map[string]string{}
	for _, w := range workloads {
		for k, v := range w.files() {
			files[k] = v
		}
	}
	repo.Commit("apps", files)
	var rows []benchutil.Row
	rss := map[string]float64{}
	rolledOut := map[string]time.Duration{}
	for _, w := range workloads {
		b.Run(w.name, func(b *testing.B) {
			r, ro := run(b, up, c, repo, w)
			rows = append(rows, r)
			rss[r.Step] = up.PeakRSSMiB()
			rolledOut[r.Step] = ro
		})
	}
	if err := writeResults(load, up.Args, rows, rss, rolledOut); err != nil {
		b.Error(err)
	}
}

func writeResults(load string, upArgs []string, rows []benchutil.Row, rss map[string]float64, rolledOut map[string]time.Duration) error {
	if len(rows) == 0 {
		return nil
	}
	var s strings.Builder
	s.WriteString(benchutil.Heading("Delivery", "BenchmarkDelivery", "test/bench/delivery", load))
	fmt.Fprintf(&s, "A local cluster (`strata up --subsystems gitops%s`), one GitRepository (a local repository) per workload; the Syncs\n", benchutil.ExtraFlags(upArgs))
	fmt.Fprintf(&s, "are created in one burst by %d workers, each applying a path of its own (a ServiceAccount, a ConfigMap, a headless\n", benchutil.Workers)
	fmt.Fprintf(&s, "Service and a Deployment of 0 replicas per app), until every Sync is Ready. The lower bound is the same API server, in\n")
	fmt.Fprintf(&s, "the same run, creating the same objects (and one ConfigMap for each Sync) directly through a client that is not throttled\n")
	fmt.Fprintf(&s, "(QPS %d, burst %d, %d workers). API writes and CPU seconds are counted as for the composition benchmark; the writes\n"+
		"include kube-controller-manager's for the Deployments (replicasets, endpoints, deployments/status), which Strata does not make.\n\n", benchutil.UnthrottledQPS, benchutil.UnthrottledBurst, benchutil.Workers)
	s.WriteString(benchutil.Table(rows))
	s.WriteString("\n")
	for _, r := range rows {
		fmt.Fprintf(&s, "- Manager peak RSS, %s: %.0f MiB (VmHWM of the `strata up` process, reset before the run).\n", r.Step, rss[r.Step])
	}
	s.WriteString("\nIssue 15's target (reported, never asserted):\n\n")
	for _, r := range rows {
		s.WriteString(benchutil.Target(r.Step+", time over the lower bound", r.Ratio(), 1.5, "%.2f×"))
	}
	s.WriteString("\nWith `wait: true` a Sync is Ready only once every object it applied is healthy, and a Deployment is healthy only once\n" +
		"kube-controller-manager has rolled it out (its replica set created, its status written); the lower bound's creates do\n" +
		"not wait for that. For that workload the run also timed, from the start of the lower bound's creates, until every\n" +
		"Deployment they created passed the health check a Sync makes (`kit/health`, kstatus): what the cluster itself needs\n" +
		"before such a Sync could be Ready. (Without `wait`, the default as in Flux, a Sync is Ready once its objects are applied.)\n\n")
	for _, r := range rows {
		ro, ok := rolledOut[r.Step]
		if !ok || ro <= 0 {
			continue
		}
		fmt.Fprintf(&s, "- %s: lower bound until its Deployments were healthy %.1f s (creates alone %.1f s); Strata %.1f s, %.2f× of it.\n",
			r.Step, ro.Seconds(), r.Bound.Took.Seconds(), r.Phase.Took.Seconds(), r.Phase.Took.Seconds()/ro.Seconds())
	}
	s.WriteString("\nWrites by verb and resource:\n\n")
	s.WriteString(benchutil.WritesTable(rows))
	return benchutil.WriteSection("delivery-bench", s.String())
}
