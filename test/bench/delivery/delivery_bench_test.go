package delivery

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/gittest"
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

// poll is how often the benchmark checks for readiness.
const poll = 200 * time.Millisecond

// run syncs apps Syncs of perApp apps each and reports the time from
// creating the Syncs until all are Ready.
func run(b *testing.B, syncs, appsPerSync int) {
	ctx := context.Background()
	up := benchutil.StartUp(b, "gitops")
	c := up.Client(b, 200, 400)
	repo := gittest.NewRepo(b, b.TempDir(), "apps")
	files := map[string]string{}
	for s := 0; s < syncs; s++ {
		for a := 0; a < appsPerSync; a++ {
			files[fmt.Sprintf("apps/s%d/app%d.yaml", s, a)] = fmt.Sprintf(app, fmt.Sprintf("s%d-a%d", s, a))
		}
	}
	repo.Commit("apps", files)
	ns := "bench"
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
	b.ResetTimer()
	began := time.Now()
	for s := 0; s < syncs; s++ {
		sy := &gitopsv1.Sync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("s%d", s)},
			Spec: gitopsv1.SyncSpec{SourceRef: gitopsv1.SourceReference{Name: "apps"}, Path: fmt.Sprintf("apps/s%d", s),
				Interval: metav1.Duration{Duration: time.Hour}, Prune: gitopsv1.PruneEnabled}}
		if err := c.Create(ctx, sy); err != nil {
			b.Fatal(err)
		}
	}
	benchutil.WaitUntilEvery(b, 10*time.Minute, poll, "all Syncs Ready", func() (bool, string) {
		list := &gitopsv1.SyncList{}
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		ready := 0
		for i := range list.Items {
			if conditions.IsTrue(&list.Items[i], conditions.Ready) {
				ready++
			}
		}
		return ready == syncs, fmt.Sprintf("%d/%d ready", ready, syncs)
	})
	secs := time.Since(began).Seconds()
	b.StopTimer()
	b.ReportMetric(secs, "s-to-ready")
	b.ReportMetric(up.PeakRSSMiB(), "peak-MiB")
	b.ReportMetric(float64(syncs*appsPerSync*4), "objects")
	b.Logf("%d Syncs x %d objects: all Ready %.1fs after creation; strata peak RSS %.0f MiB", syncs, appsPerSync*4, secs, up.PeakRSSMiB())
}

// BenchmarkSyncs100 is 100 Syncs of one 4-object app each.
func BenchmarkSyncs100(b *testing.B) { run(b, 100, 1) }

// BenchmarkSyncs1000 is 1000 Syncs of one 4-object app each.
func BenchmarkSyncs1000(b *testing.B) { run(b, 1000, 1) }

// BenchmarkOneSync4000Objects is one Sync of 1000 apps (4000 objects).
func BenchmarkOneSync4000Objects(b *testing.B) { run(b, 1, 1000) }
