package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Command is exec.Command for a server a test starts (Vault, Prometheus,
// versitygw, ...): the server is killed when the test binary dies. A test
// binary that a timeout or a signal ends runs no cleanup, and a server left
// running would hold its port and take CPU from the packages tested after it.
func Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// reaper kills processes when the test binary dies without stopping them.
// envtest starts etcd and kube-apiserver in process groups of their own and
// without a parent-death signal, and offers no hook to set one, so a small
// shell waits for this process to go and then kills them.
type reaper struct {
	cmd  *exec.Cmd
	pids []string
}

// reaped are the PIDs some reaper already watches: a second envtest in the
// same test binary gets a reaper of its own processes only.
var (
	reapedMu sync.Mutex
	reaped   = map[string]bool{}
)

// reapChildren starts a reaper for this process's children named in names
// (by /proc/PID/comm) that no other reaper watches.
func reapChildren(names ...string) (*reaper, error) {
	all, err := children(names...)
	if err != nil {
		return nil, err
	}
	reapedMu.Lock()
	var pids []string
	for _, pid := range all {
		if !reaped[pid] {
			reaped[pid] = true
			pids = append(pids, pid)
		}
	}
	reapedMu.Unlock()
	if len(pids) == 0 {
		return nil, fmt.Errorf("found none of %s among this process's children", strings.Join(names, ", "))
	}
	// $0 is this process; the rest are the children to kill once it is
	// gone; STRATA_REAP_DIRS are their scratch folders, removed after them.
	const script = `while kill -0 "$0" 2>/dev/null; do sleep 1; done; kill -KILL "$@" 2>/dev/null; sleep 1; for d in $STRATA_REAP_DIRS; do rm -rf "$d"; done`
	cmd := exec.Command("sh", append([]string{"-c", script, strconv.Itoa(os.Getpid())}, pids...)...)
	cmd.Env = append(os.Environ(), "STRATA_REAP_DIRS="+strings.Join(scratchDirs(pids), " "))
	// Its own process group: a Ctrl-C of the test run does not end the
	// reaper before it has done its work.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start the reaper of %s: %w", strings.Join(names, ", "), err)
	}
	go func() { _ = cmd.Wait() }()
	return &reaper{cmd: cmd, pids: pids}, nil
}

// Stop ends the reaper when its processes were stopped the normal way, so it
// never kills a process that reused one of their PIDs.
func (r *reaper) Stop() {
	if r == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	reapedMu.Lock()
	defer reapedMu.Unlock()
	for _, pid := range r.pids {
		delete(reaped, pid)
	}
}

// scratchDirs are the folders envtest made for the processes pids (their
// --data-dir and --cert-dir flags): only those directly in the temporary
// folder with envtest's own prefix, and none with a blank in its name, so
// the reaper's word splitting cannot widen what it removes.
func scratchDirs(pids []string) []string {
	var dirs []string
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(b), "\x00") {
			for _, flag := range []string{"--data-dir=", "--cert-dir="} {
				d, ok := strings.CutPrefix(arg, flag)
				if ok && filepath.Dir(d) == filepath.Clean(os.TempDir()) && strings.HasPrefix(filepath.Base(d), "k8s_test_framework_") && !strings.ContainsAny(d, " \t\n") {
					dirs = append(dirs, d)
				}
			}
		}
	}
	return dirs
}

// children lists the PIDs of this process's children whose command name is
// one of names.
func children(names ...string) ([]string, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var pids []string
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the process is gone
		}
		comm, ppid, ok := parseStat(string(b))
		if ok && ppid == self && want[comm] {
			pids = append(pids, filepath.Base(filepath.Dir(path)))
		}
	}
	return pids, nil
}

// parseStat reads the command name and the parent PID from a /proc/PID/stat
// line: "PID (COMM) STATE PPID ...", where COMM may itself hold spaces and
// parentheses.
func parseStat(line string) (comm string, ppid int, ok bool) {
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	fields := strings.Fields(line[end+1:])
	if len(fields) < 2 {
		return "", 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return "", 0, false
	}
	return line[open+1 : end], ppid, true
}
