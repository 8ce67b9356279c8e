package benchutil

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// Snapshot is what the cluster has done up to a moment: its API write
// requests and the CPU seconds of the API server, etcd and the strata
// process (the manager runs inside `strata up`).
type Snapshot struct {
	At           time.Time
	Writes       Writes
	Reads        float64 // GET and LIST requests (ReadsOf)
	APIServerCPU float64 // process_cpu_seconds_total of the API server's /metrics
	EtcdCPU      float64 // /proc/<etcd>/stat
	StrataCPU    float64 // /proc/<strata up>/stat
	PeerCPU      float64 // /proc/<pid>/stat of the running peers (kro, shard managers), summed
}

// Phase is one measured step of a benchmark: how long it took and what it
// cost the API server.
type Phase struct {
	Took time.Duration
	// Writes are the API write requests from the start of the phase until
	// the cluster settled after it (all clients; node and lease heartbeats
	// left out).
	Writes Writes
	// Reads are the GET and LIST requests over the same span.
	Reads                                     float64
	APIServerCPU, EtcdCPU, StrataCPU, PeerCPU float64
	// Span is how long the writes and CPU were counted: from the start of
	// the phase until the cluster settled.
	Span time.Duration
}

// Per is the number of writes per object for n objects.
func (p Phase) Per(n int) float64 { return p.Writes.Total() / float64(n) }

func (u *Up) restConfig(tb testing.TB) *rest.Config {
	tb.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", u.Kubeconfig())
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// Kubeconfig is the admin kubeconfig of the cluster.
func (u *Up) Kubeconfig() string { return filepath.Join(u.dir, "kubeconfig") }

// Snapshot reads the API server's /metrics and the processes' CPU times.
func (u *Up) Snapshot(tb testing.TB) Snapshot {
	tb.Helper()
	if u.metrics == nil {
		cfg := u.restConfig(tb)
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		u.metrics, u.host = hc, strings.TrimSuffix(cfg.Host, "/")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.host+"/metrics", nil)
	resp, err := u.metrics.Do(req)
	if err != nil {
		tb.Fatalf("cannot read the API server's metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("cannot read the API server's metrics: %s %v", resp.Status, err)
	}
	samples, err := ParseMetrics(string(body), "apiserver_request_total", "process_cpu_seconds_total")
	if err != nil {
		tb.Fatalf("cannot parse the API server's metrics: %v", err)
	}
	s := Snapshot{At: time.Now(), Writes: WritesOf(samples), Reads: ReadsOf(samples), APIServerCPU: Value(samples, "process_cpu_seconds_total")}
	s.StrataCPU = pidCPU(u.cmd.Process.Pid)
	s.EtcdCPU = pidCPU(u.child("etcd"))
	u.mu.Lock()
	peers := append([]*os.Process(nil), u.peers...)
	u.mu.Unlock()
	for _, p := range peers {
		s.PeerCPU += pidCPU(p.Pid)
	}
	return s
}

// child is the PID `strata up` recorded for one of its cluster processes
// (state.json in its state directory); 0 when unknown.
func (u *Up) child(name string) int {
	data, err := os.ReadFile(filepath.Join(u.dir, "state.json"))
	if err != nil {
		return 0
	}
	var st struct {
		Children map[string]int `json:"children"`
	}
	if json.Unmarshal(data, &st) != nil {
		return 0
	}
	return st.Children[name]
}

func pidCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	v, err := ProcCPUSeconds(string(data), clockTicks)
	if err != nil {
		return 0
	}
	return v
}

// Sub is what happened between before and s.
func (s Snapshot) Sub(before Snapshot) Phase {
	return Phase{
		Took:         s.At.Sub(before.At),
		Writes:       s.Writes.Sub(before.Writes),
		Reads:        s.Reads - before.Reads,
		APIServerCPU: s.APIServerCPU - before.APIServerCPU,
		EtcdCPU:      s.EtcdCPU - before.EtcdCPU,
		StrataCPU:    s.StrataCPU - before.StrataCPU,
		PeerCPU:      s.PeerCPU - before.PeerCPU,
	}
}

// settleQuiet is how long the write counts must stay unchanged for the
// cluster to count as settled; settleMax bounds the wait.
const (
	settleQuiet = 2 * time.Second
	settleMax   = 20 * time.Second
)

// Measure runs work and returns its time (until work returns) and what the
// cluster wrote and spent from its start until the writes stopped (at most
// settleMax after work returned), so trailing writes (a last status, an
// event) are counted with the phase that caused them.
func (u *Up) Measure(tb testing.TB, work func()) Phase {
	tb.Helper()
	before := u.Snapshot(tb)
	stopProfile := u.profile(tb)
	start := time.Now()
	work()
	took := time.Since(start)
	stopProfile()
	after := u.Settle(tb)
	p := after.Sub(before)
	p.Took, p.Span = took, after.At.Sub(before.At)
	return p
}

// Settle waits until no write has reached the API server for settleQuiet
// (or settleMax has passed) and returns the snapshot taken then.
func (u *Up) Settle(tb testing.TB) Snapshot {
	tb.Helper()
	return u.SettleWithin(tb, settleMax)
}

// SettleWithin is Settle waiting at most max: before a workload starts,
// so that what the cluster still does for the previous one (such as
// kube-controller-manager's work for a thousand Deployments at its own
// client limit) is not counted with it.
func (u *Up) SettleWithin(tb testing.TB, max time.Duration) Snapshot {
	tb.Helper()
	last := u.Snapshot(tb)
	quietSince := last.At
	deadline := last.At.Add(max)
	for {
		time.Sleep(500 * time.Millisecond)
		s := u.Snapshot(tb)
		if s.Writes.Sub(last.Writes).Total() != 0 {
			quietSince = s.At
		}
		last = s
		if s.At.Sub(quietSince) >= settleQuiet || s.At.After(deadline) {
			return s
		}
	}
}

// ResetPeakRSS resets the strata process's peak resident memory (VmHWM), so
// PeakRSSMiB reports the peak of what follows.
func (u *Up) ResetPeakRSS() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", u.cmd.Process.Pid), []byte("5"), 0)
}

// LoadAverage is the first three fields of /proc/loadavg.
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Machine describes where the benchmark runs: CPU model, cores and the load
// average when it started.
func Machine(load string) string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "model name") {
				if i := strings.IndexByte(l, ':'); i > 0 {
					model = strings.TrimSpace(l[i+1:])
				}
				break
			}
		}
	}
	return fmt.Sprintf("%s, %s cores, load average %s at the start", model, strconv.Itoa(numCPU()), load)
}
