package delivery

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/apis"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/testenv"
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

type upProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	c    client.Client
}

func startUp(b *testing.B) *upProc {
	b.Helper()
	dir := b.TempDir()
	cmd := exec.Command(filepath.Join(testenv.BinDir(), "strata"), "up", "--state-dir", dir, "--subsystems", "gitops")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		b.Fatalf("cannot start strata up (run make build): %v", err)
	}
	p := &upProc{cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		s := bufio.NewScanner(pr)
		var once sync.Once
		for s.Scan() {
			if strings.Contains(s.Text(), "strata: ready in") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	go func() { _ = cmd.Wait(); _ = pw.Close(); close(p.done) }()
	b.Cleanup(p.stop)
	select {
	case <-ready:
	case <-p.done:
		b.Fatal("strata up exited before it was ready")
	case <-time.After(3 * time.Minute):
		b.Fatal("strata up was not ready within 3m")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		b.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	if p.c, err = client.New(cfg, client.Options{Scheme: apis.NewScheme()}); err != nil {
		b.Fatal(err)
	}
	return p
}

func (p *upProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// peakMiB is the strata process's peak resident memory (manager included;
// etcd and the API server are separate processes).
func (p *upProc) peakMiB() float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// run syncs apps Syncs of perApp apps each and reports the time from
// creating the Syncs until all are Ready.
func run(b *testing.B, syncs, appsPerSync int) {
	ctx := context.Background()
	p := startUp(b)
	repo := gittest.NewRepo(b, b.TempDir(), "apps")
	files := map[string]string{}
	for s := 0; s < syncs; s++ {
		for a := 0; a < appsPerSync; a++ {
			files[fmt.Sprintf("apps/s%d/app%d.yaml", s, a)] = fmt.Sprintf(app, fmt.Sprintf("s%d-a%d", s, a))
		}
	}
	repo.Commit("apps", files)
	ns := "bench"
	if err := p.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	g := &gitopsv1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
		Spec: gitopsv1.GitRepositorySpec{URL: repo.URL(), Interval: metav1.Duration{Duration: time.Hour}}}
	if err := p.c.Create(ctx, g); err != nil {
		b.Fatal(err)
	}
	waitUntil(b, time.Minute, "GitRepository ready", func() (bool, string) {
		if err := p.c.Get(ctx, client.ObjectKeyFromObject(g), g); err != nil {
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
		if err := p.c.Create(ctx, sy); err != nil {
			b.Fatal(err)
		}
	}
	waitUntil(b, 10*time.Minute, "all Syncs Ready", func() (bool, string) {
		list := &gitopsv1.SyncList{}
		if err := p.c.List(ctx, list, client.InNamespace(ns)); err != nil {
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
	b.ReportMetric(p.peakMiB(), "peak-MiB")
	b.ReportMetric(float64(syncs*appsPerSync*4), "objects")
	b.Logf("%d Syncs x %d objects: all Ready %.1fs after creation; strata peak RSS %.0f MiB", syncs, appsPerSync*4, secs, p.peakMiB())
}

func waitUntil(b *testing.B, d time.Duration, what string, fn func() (bool, string)) {
	b.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := fn()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: not within %s (%s)", what, d, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// BenchmarkSyncs100 is 100 Syncs of one 4-object app each.
func BenchmarkSyncs100(b *testing.B) { run(b, 100, 1) }

// BenchmarkSyncs1000 is 1000 Syncs of one 4-object app each.
func BenchmarkSyncs1000(b *testing.B) { run(b, 1000, 1) }

// BenchmarkOneSync4000Objects is one Sync of 1000 apps (4000 objects).
func BenchmarkOneSync4000Objects(b *testing.B) { run(b, 1, 1000) }
