package benchutil

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/strata-dev/strata/internal/scheme"
	"github.com/strata-dev/strata/internal/testenv"
)

// readyLine is part of the last line `strata up` prints once it is ready.
const readyLine = "Press Ctrl-C to stop"

// tailLines is how many lines of output a failed start reports.
const tailLines = 20

// Up is a `strata up` process with its own state directory.
type Up struct {
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
	// Args are the arguments strata was started with.
	Args []string

	metrics *http.Client // reaches the API server's /metrics
	host    string
	phases  int           // measured phases so far, to name their profiles
	peers   []*os.Process // peer controllers whose CPU snapshots include (summed)
	started int           // peers started, to name their logs

	mu   sync.Mutex
	tail []string // the last lines of output
}

// UpArgsEnv names extra arguments (space-separated) for `strata up`, such as
// manager flags a benchmark should run with.
const UpArgsEnv = "STRATA_BENCH_UP_ARGS"

// UpLogEnv names a file that receives everything `strata up` prints (the
// manager's logs), for looking into a slow run afterwards.
const UpLogEnv = "STRATA_BENCH_UP_LOG"

// StartUp runs `bin/strata up --state-dir <tmp> --subsystems <subsystems>`
// (plus $STRATA_BENCH_UP_ARGS) and waits (up to 3 minutes) until it is ready. The process is stopped when
// tb's cleanup runs, or earlier by Stop.
func StartUp(tb testing.TB, subsystems ...string) *Up {
	tb.Helper()
	bin := testenv.BinDir()
	dir := tb.TempDir()
	// Benchmarks keep their repositories in temporary folders: let file://
	// URLs read those (the manager refuses file URLs by default).
	args := []string{"up", "--state-dir", dir, "--allow-file-urls", os.TempDir()}
	if len(subsystems) > 0 {
		args = append(args, "--subsystems", strings.Join(subsystems, ","))
	}
	args = append(args, strings.Fields(os.Getenv(UpArgsEnv))...)
	args = append(args, profileFlags()...)
	cmd := exec.Command(filepath.Join(bin, "strata"), args...)
	// An interrupted benchmark must not leave the cluster running: the
	// kernel stops strata up (gracefully, SIGTERM) when the benchmark dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var out io.Reader = pr
	if p := os.Getenv(UpLogEnv); p != "" {
		f, err := os.Create(p)
		if err != nil {
			tb.Fatalf("cannot create %s (%s): %v", p, UpLogEnv, err)
		}
		tb.Cleanup(func() { _ = f.Close() })
		out = io.TeeReader(pr, f)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("cannot start %s/strata up (run make build): %v", bin, err)
	}
	u := &Up{cmd: cmd, dir: dir, done: make(chan struct{}), Args: args}
	ready := make(chan struct{})
	go func() {
		// Read until the process exits, so it never blocks writing.
		s := bufio.NewScanner(out)
		var once sync.Once
		for s.Scan() {
			u.record(s.Text())
			if strings.Contains(s.Text(), readyLine) {
				once.Do(func() { close(ready) })
			}
		}
	}()
	go func() { _ = cmd.Wait(); _ = pw.Close(); close(u.done) }()
	tb.Cleanup(u.Stop)
	select {
	case <-ready:
	case <-u.done:
		tb.Fatalf("strata up exited before it was ready; its last output:\n%s", u.output())
	case <-time.After(3 * time.Minute):
		tb.Fatalf("strata up was not ready within 3m; its last output:\n%s", u.output())
	}
	return u
}

func (u *Up) record(line string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.tail = append(u.tail, line)
	if len(u.tail) > tailLines {
		u.tail = u.tail[len(u.tail)-tailLines:]
	}
}

func (u *Up) output() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.tail, "\n")
}

// Stop interrupts strata up (SIGINT, as Ctrl-C) and waits for it to exit,
// killing it after a minute. Calling it again does nothing.
func (u *Up) Stop() {
	select {
	case <-u.done:
		return
	default:
	}
	_ = u.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-u.done:
	case <-time.After(time.Minute):
		_ = u.cmd.Process.Kill()
		<-u.done
	}
}

// PeakRSSMiB is the strata process's peak resident memory (VmHWM) in MiB,
// manager included (etcd and the API server are separate processes); 0 once
// the process has exited.
func (u *Up) PeakRSSMiB() float64 { return peakRSSMiB(u.cmd.Process.Pid) }

// The unthrottled client's limits: far above what one API server on this
// machine serves, so the client never waits on its own rate limiter.
const (
	UnthrottledQPS   = 5000
	UnthrottledBurst = 10000
)

// Unthrottled is a client (QPS 5000, burst 10000) that only the API server
// itself slows down: the writer of the lower bound.
func (u *Up) Unthrottled(tb testing.TB) client.Client {
	return u.Client(tb, UnthrottledQPS, UnthrottledBurst)
}

// Client is a client for the cluster (from its kubeconfig, with Strata's
// scheme) limited to qps requests per second with the given burst.
func (u *Up) Client(tb testing.TB, qps float32, burst int) client.Client {
	tb.Helper()
	cfg := u.restConfig(tb)
	cfg.QPS, cfg.Burst = qps, burst
	// The benchmark process itself logs nothing through controller-runtime;
	// say so, or it prints a warning with a stack trace.
	ctrllog.SetLogger(logr.Discard())
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// WatchClient is an unthrottled client that can also watch.
func (u *Up) WatchClient(tb testing.TB) client.WithWatch {
	tb.Helper()
	cfg := u.restConfig(tb)
	cfg.QPS, cfg.Burst = UnthrottledQPS, UnthrottledBurst
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// ExtraFlags is args (as in Up.Args) without the subcommand, --state-dir,
// --allow-file-urls and --subsystems: the flags a run added through
// STRATA_BENCH_UP_ARGS, with a leading space; "" when there are none.
func ExtraFlags(args []string) string {
	var out []string
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case "--state-dir", "--allow-file-urls", "--subsystems":
			i++
			continue
		}
		out = append(out, args[i])
	}
	if len(out) == 0 {
		return ""
	}
	return " " + strings.Join(out, " ")
}
