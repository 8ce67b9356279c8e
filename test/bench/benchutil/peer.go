package benchutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/testenv"
)

// Peer is a controller process run against the same cluster: another
// engine's (kro), so its figures come from the same run as Strata's, or a
// `strata manager` of one shard.
type Peer struct {
	up   *Up
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// StartPeer runs bin/<binary> with args and the cluster's admin kubeconfig
// (as $KUBECONFIG), its output in a file, and makes the
// cluster's snapshots include its CPU time. Stop ends it (also at tb's
// cleanup).
func (u *Up) StartPeer(tb testing.TB, binary string, args ...string) *Peer {
	tb.Helper()
	bin := filepath.Join(filepath.Dir(u.cmd.Path), binary)
	if _, err := os.Stat(bin); err != nil {
		tb.Fatalf("%s not found: run `make bench` (it builds the benchmark peers with test/tools/build.sh)", bin)
	}
	u.mu.Lock()
	u.started++
	log := filepath.Join(u.dir, "logs", fmt.Sprintf("%s-%d.log", binary, u.started))
	u.mu.Unlock()
	f, err := os.Create(log)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := testenv.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+u.Kubeconfig())
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		tb.Fatalf("cannot start %s: %v", bin, err)
	}
	p := &Peer{up: u, cmd: cmd, done: make(chan struct{}), log: log}
	go func() { _ = cmd.Wait(); _ = f.Close(); close(p.done) }()
	u.mu.Lock()
	u.peers = append(u.peers, cmd.Process)
	u.mu.Unlock()
	tb.Cleanup(p.Stop)
	return p
}

// Exited says whether the peer has stopped, with the end of its log.
func (p *Peer) Exited() (bool, string) {
	select {
	case <-p.done:
		data, _ := os.ReadFile(p.log)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > tailLines {
			lines = lines[len(lines)-tailLines:]
		}
		return true, strings.Join(lines, "\n")
	default:
		return false, ""
	}
}

// Logged says whether the peer's output so far contains s.
func (p *Peer) Logged(s string) bool {
	data, _ := os.ReadFile(p.log)
	return strings.Contains(string(data), s)
}

// Stop interrupts the peer and waits for it, killing it after 30 s; the
// cluster's snapshots leave it out from then on (measure a phase with the
// same peers running at its start and end).
func (p *Peer) Stop() {
	p.up.mu.Lock()
	for i, q := range p.up.peers {
		if q == p.cmd.Process {
			p.up.peers = append(p.up.peers[:i], p.up.peers[i+1:]...)
			break
		}
	}
	p.up.mu.Unlock()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// PeakRSSMiB is the peer's peak resident memory (VmHWM) in MiB; 0 once it
// has exited.
func (p *Peer) PeakRSSMiB() float64 { return peakRSSMiB(p.cmd.Process.Pid) }

func peakRSSMiB(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
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
