package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// childEnv makes the test binary the child of TestServersDieWithTheTestBinary.
const childEnv = "STRATA_TESTENV_CHILD"

// TestServersDieWithTheTestBinary kills a test binary that has started an
// envtest API server and a server through Command, the way a timeout or a
// Ctrl-C ends one (no cleanup runs), and expects etcd, kube-apiserver and
// the server to be gone soon after, not left holding their ports and CPU,
// and envtest's scratch folders (etcd's data, the API server's certificates)
// removed.
func TestServersDieWithTheTestBinary(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		runChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServersDieWithTheTestBinary$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var pids, dirs []string
	s := bufio.NewScanner(out)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "PIDS "); ok {
			pids = strings.Fields(rest)
		}
		if rest, ok := strings.CutPrefix(s.Text(), "DIRS "); ok {
			dirs = strings.Fields(rest)
			break
		}
	}
	if len(pids) != 3 {
		t.Fatalf("the child reported PIDs %v, want etcd, kube-apiserver and sleep", pids)
	}
	if len(dirs) < 2 {
		t.Fatalf("the child reported scratch folders %v, want etcd's data and the API server's certificates", dirs)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var alive, left []string
		for _, pid := range pids {
			if running(pid) {
				alive = append(alive, pid)
			}
		}
		for _, d := range dirs {
			if _, err := os.Stat(d); err == nil {
				left = append(left, d)
			}
		}
		if len(alive) == 0 && len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("20s after the test binary that started them was killed, processes %v still run and folders %v are left", alive, left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runChild starts the servers, reports their PIDs and waits to be killed.
func runChild() {
	env, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = env
	sleep := Command("sleep", "600")
	if err := sleep.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pids, err := children("etcd", "kube-apiserver")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("PIDS %s %d\n", strings.Join(pids, " "), sleep.Process.Pid)
	fmt.Printf("DIRS %s\n", strings.Join(scratchDirs(pids), " "))
	time.Sleep(5 * time.Minute)
	os.Exit(1)
}

// running says whether pid is a live process (not gone, not a zombie).
func running(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	line := string(b)
	end := strings.LastIndexByte(line, ')')
	f := strings.Fields(line[end+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		line string
		comm string
		ppid int
		ok   bool
	}{
		{"1234 (etcd) S 99 1234 1234 0 -1", "etcd", 99, true},
		{"77 (kube-apiserver) R 5 77 77 0", "kube-apiserver", 5, true},
		{"8 (a (b) c) S 3 8 8", "a (b) c", 3, true},
		{"8 (x) S", "", 0, false},
		{"garbage", "", 0, false},
	} {
		comm, ppid, ok := parseStat(tc.line)
		if comm != tc.comm || ppid != tc.ppid || ok != tc.ok {
			t.Errorf("parseStat(%q) = %q, %d, %v; want %q, %d, %v", tc.line, comm, ppid, ok, tc.comm, tc.ppid, tc.ok)
		}
	}
}
