package e2e

import (
	"bufio"
	"bytes"
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

	"github.com/strata-dev/strata/internal/testenv"
)

// binaries returns the paths of the strata binary and kubectl, failing the
// test with the command to run when they are missing.
func binaries(t *testing.T) (strata, kubectl string) {
	t.Helper()
	bin := testenv.BinDir()
	strata = filepath.Join(bin, "strata")
	kubectl = filepath.Join(bin, "kubectl")
	for _, p := range []string{strata, kubectl} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s not found: run `make tools build` first (make test does)", p)
		}
	}
	return strata, kubectl
}

// clusterSlots bounds how many of the package's tests run at once: each
// starts a whole local cluster (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok and the manager), which needs about a core while it
// starts. STRATA_E2E_PARALLEL sets the bound (default 2).
var clusterSlots = newSlots(e2eParallel())

func e2eParallel() int {
	if n, err := strconv.Atoi(os.Getenv("STRATA_E2E_PARALLEL")); err == nil && n > 0 {
		return n
	}
	return 2
}

// slots hands out the package's cluster slots. A test whose servers are
// built (ready) always goes first. A test still waiting for the build of a
// server it starts only after its cluster (early) may take a slot that a
// finished test freed when no ready test waits for it: on a cold machine the
// last tests of a run are the Vault tests, and their clusters then start
// while Vault's build ends instead of after it.
type slots struct {
	mu    sync.Mutex
	cond  *sync.Cond
	free  int
	ready int  // ready tests waiting for a slot
	freed bool // a finished test has freed a slot: every test has asked by then
}

func newSlots(n int) *slots {
	s := &slots{free: n}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// take waits for a slot. built reports whether the test's servers are built
// (it is called with s.mu held); early says that the test may take a slot
// before they are.
func (s *slots) take(built func() bool, early bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	counted := false
	for {
		ok := built()
		if ok && !counted {
			s.ready++
			counted = true
		}
		if s.free > 0 && (ok || early && s.freed && s.ready == 0) {
			break
		}
		s.cond.Wait()
	}
	if counted {
		s.ready--
	}
	s.free--
}

func (s *slots) release() {
	s.mu.Lock()
	s.free++
	s.freed = true
	s.mu.Unlock()
	s.cond.Broadcast()
}

// parallel runs t beside the package's other tests, in one of the
// clusterSlots, after the servers it names (testenv.Tool: Vault, Prometheus,
// ...) are built. Under `make test` those build in the background while the
// tests run; a test waits for them before it takes a slot, so the tests whose
// servers are ready run meanwhile. (go test's own -parallel bound would count
// a waiting test as running: TestMain lifts it, and the slots are the bound.)
// Every test of the package calls parallel or parallelEarly first.
func parallel(t *testing.T, tools ...string) {
	t.Helper()
	parallelTools(t, false, tools)
}

// parallelEarly is parallel for a test that starts its cluster before it
// starts the servers it names (whose start waits for their build): when no
// other test waits for a slot, it takes one while they still build.
func parallelEarly(t *testing.T, tools ...string) {
	t.Helper()
	parallelTools(t, true, tools)
}

func parallelTools(t *testing.T, early bool, tools []string) {
	t.Helper()
	t.Parallel()
	var (
		done bool
		err  error
	)
	go func() {
		var e error
		for _, name := range tools {
			if _, e = testenv.Tool(name); e != nil {
				break
			}
		}
		clusterSlots.mu.Lock()
		done, err = true, e
		clusterSlots.mu.Unlock()
		clusterSlots.cond.Broadcast()
	}()
	clusterSlots.take(func() bool { return done }, early)
	// Registered first, so it runs last: the slot is free once the test's
	// cluster has stopped.
	t.Cleanup(clusterSlots.release)
	clusterSlots.mu.Lock()
	finished, e := done, err
	clusterSlots.mu.Unlock()
	if finished && e != nil {
		t.Fatal(e)
	}
}

// upProcess is a running `strata up`.
type upProcess struct {
	t        *testing.T
	cmd      *exec.Cmd
	stateDir string
	mu       sync.Mutex
	out      bytes.Buffer
	ready    chan struct{}
	done     chan struct{}
	err      error
}

// startUp runs `strata up` in stateDir and waits until it prints that it is ready.
func startUp(t *testing.T, stateDir string, args ...string) *upProcess {
	t.Helper()
	strata, _ := binaries(t)
	cmd := exec.Command(strata, append([]string{"up", "--state-dir", stateDir}, args...)...)
	// A test binary ended by a timeout runs no cleanup: the cluster stops
	// with it (strata up stops its servers on SIGTERM).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &upProcess{t: t, cmd: cmd, stateDir: stateDir, ready: make(chan struct{}), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start strata up: %v", err)
	}
	go func() {
		s := bufio.NewScanner(pr)
		once := sync.Once{}
		for s.Scan() {
			line := s.Text()
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			p.mu.Unlock()
			if strings.Contains(line, "Press Ctrl-C to stop") { // the last line up prints when ready
				once.Do(func() { close(p.ready) })
			}
		}
	}()
	go func() {
		p.err = cmd.Wait()
		_ = pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.interrupt() })
	select {
	case <-p.ready:
	case <-p.done:
		t.Fatalf("strata up exited before it was ready: %v\n%s", p.err, p.output())
	case <-time.After(2 * time.Minute):
		t.Fatalf("strata up was not ready within 2m:\n%s", p.output())
	}
	return p
}

func (p *upProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// interrupt sends Ctrl-C and waits for a clean exit.
func (p *upProcess) interrupt() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("strata up did not stop within 1m of SIGINT:\n%s", p.output())
	}
}

// kubectl runs kubectl against the cluster in stateDir and returns its output.
func kubectl(t *testing.T, stateDir string, args ...string) string {
	t.Helper()
	out, err := kubectlErr(stateDir, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func kubectlErr(stateDir string, args ...string) (string, error) {
	bin := filepath.Join(testenv.BinDir(), "kubectl")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", filepath.Join(stateDir, "kubeconfig")}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// strata runs the strata binary to completion.
func strata(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, _ := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// alive reports whether pid names a running process.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie is dead for our purposes.
	fields := strings.Fields(string(stat))
	return len(fields) > 2 && fields[2] != "Z"
}

// logLines returns the last n lines of the log at path that contain substr
// and none of skip, or why it cannot: a failing test prints them so that
// CI's output says what the engine did.
func logLines(path, substr string, n int, skip ...string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) && !containsAny(l, skip) {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
