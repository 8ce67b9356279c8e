package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestManagerServesProbesMetricsAndElectsALeader runs `strata manager` the way
// it runs in a real cluster: from KUBECONFIG, with leader election, probes and
// metrics on their own addresses.
func TestManagerServesProbesMetricsAndElectsALeader(t *testing.T) {
	parallel(t)
	dir := t.TempDir()
	up := startUp(t, dir)
	defer up.interrupt()
	kubectl(t, dir, "create", "namespace", "strata-system")

	strataBin, _ := binaries(t)
	metrics, probes := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, strataBin, "manager", "--metrics-bind-address", metrics, "--health-probe-bind-address", probes)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(dir, "kubeconfig"))
	logPath := filepath.Join(dir, "manager-e2e.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	waitFor(t, 60*time.Second, "manager /readyz", func() bool { return httpOK("http://" + probes + "/readyz") })
	if !httpOK("http://" + probes + "/healthz") {
		t.Error("/healthz does not answer 200")
	}
	waitFor(t, 60*time.Second, "leader lease", func() bool {
		out, err := kubectlErr(dir, "get", "lease", "-n", "strata-system", "strata-manager.strata.dev", "-o", "jsonpath={.spec.holderIdentity}")
		return err == nil && out != ""
	})
	body := httpBody(t, "http://"+metrics+"/metrics")
	if !strings.Contains(body, "leader_election_master_status") {
		t.Errorf("metrics do not report leader election:\n%.500s", body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("manager did not exit cleanly on SIGTERM: %v\n%s", err, log)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("manager did not stop within 30s of SIGTERM")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func httpOK(url string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

func httpBody(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls cond until it holds or the bound passes.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s not reached within %s", what, bound)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
