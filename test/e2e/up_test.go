package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUpRunsAClusterThatSurvivesARestart is the quick start: a node becomes
// Ready, a Deployment becomes available, and after Ctrl-C and a second
// `strata up` the Deployment is still there.
func TestUpRunsAClusterThatSurvivesARestart(t *testing.T) {
	parallel(t)
	dir := t.TempDir()
	up := startUp(t, dir)
	out := up.output()
	if !strings.Contains(out, "export KUBECONFIG="+filepath.Join(dir, "kubeconfig")) {
		t.Errorf("strata up did not print the kubeconfig to export:\n%s", out)
	}
	if m := regexp.MustCompile(`ready in ([0-9.]+)s`).FindStringSubmatch(out); m != nil {
		t.Logf("cold start: %ss", m[1])
	}
	kc, err := os.ReadFile(filepath.Join(dir, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(kc), "insecure-skip-tls-verify") || !strings.Contains(string(kc), "certificate-authority-data") {
		t.Errorf("kubeconfig must verify the API server with the cluster CA:\n%s", kc)
	}

	kubectl(t, dir, "wait", "--for=condition=Ready", "node/strata-node-0", "--timeout=60s")
	kubectl(t, dir, "create", "deployment", "web", "--image=nginx", "--replicas=3")
	kubectl(t, dir, "wait", "--for=condition=Available", "deployment/web", "--timeout=120s")
	if got := kubectl(t, dir, "get", "deployment", "web", "-o", "jsonpath={.status.availableReplicas}"); got != "3" {
		t.Fatalf("available replicas = %q, want 3", got)
	}

	children := recordedChildren(t, dir)
	up.interrupt()
	if up.err != nil {
		t.Fatalf("strata up did not exit cleanly on SIGINT: %v\n%s", up.err, up.output())
	}
	assertChildrenGone(t, dir, children)

	up = startUp(t, dir)
	if m := regexp.MustCompile(`ready in ([0-9.]+)s`).FindStringSubmatch(up.output()); m != nil {
		t.Logf("warm start: %ss", m[1])
	}
	kubectl(t, dir, "wait", "--for=condition=Available", "deployment/web", "--timeout=120s")
	if got := kubectl(t, dir, "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"); got != "3" {
		t.Fatalf("after restart spec.replicas = %q, want 3", got)
	}
}

// TestUpRecoversFromKill9: children left by a killed strata up are stopped by
// the next one, which starts with the data intact.
func TestUpRecoversFromKill9(t *testing.T) {
	parallel(t)
	dir := t.TempDir()
	up := startUp(t, dir)
	kubectl(t, dir, "create", "configmap", "keep", "--from-literal=k=v")
	children := recordedChildren(t, dir)
	if len(children) != 5 {
		t.Fatalf("state.json records %d children, want 5: %v", len(children), children)
	}
	if err := up.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-up.done

	up = startUp(t, dir)
	for name, pid := range children {
		if alive(pid) {
			t.Errorf("%s (pid %d) from the killed run is still alive", name, pid)
		}
	}
	if got := kubectl(t, dir, "get", "configmap", "keep", "-o", "jsonpath={.data.k}"); got != "v" {
		t.Errorf("configmap data after kill -9 = %q, want v", got)
	}
	up.interrupt()
}

func TestUpRefusesBadInput(t *testing.T) {
	parallel(t)
	t.Run("state directory in use", func(t *testing.T) {
		dir := t.TempDir()
		up := startUp(t, dir)
		out, err := strata(t, "up", "--state-dir", dir)
		if err == nil {
			t.Fatalf("second strata up on the same state directory succeeded:\n%s", out)
		}
		wantOneLine(t, out, "is used by a running strata up")
		up.interrupt()
	})
	t.Run("missing binaries", func(t *testing.T) {
		out, err := strata(t, "up", "--state-dir", t.TempDir(), "--bin-dir", t.TempDir())
		if err == nil {
			t.Fatalf("strata up without binaries succeeded:\n%s", out)
		}
		wantOneLine(t, out, "run `make tools`")
	})
	t.Run("port in use", func(t *testing.T) {
		dir := t.TempDir()
		up := startUp(t, dir)
		var st struct {
			APIServerPort int `json:"apiServerPort"`
		}
		data, _ := os.ReadFile(filepath.Join(dir, "state.json"))
		if err := json.Unmarshal(data, &st); err != nil {
			t.Fatal(err)
		}
		out, err := strata(t, "up", "--state-dir", t.TempDir(), "--port", itoa(st.APIServerPort))
		if err == nil {
			t.Fatalf("strata up on a taken port succeeded:\n%s", out)
		}
		wantOneLine(t, out, "already in use")
		up.interrupt()
	})
}

func TestDetachAndDown(t *testing.T) {
	parallel(t)
	dir := t.TempDir()
	out, err := strata(t, "up", "--detach", "--state-dir", dir)
	if err != nil {
		t.Fatalf("strata up --detach: %v\n%s", err, out)
	}
	kubectl(t, dir, "get", "namespaces")
	children := recordedChildren(t, dir)
	out, err = strata(t, "down", "--state-dir", dir)
	if err != nil || !strings.Contains(out, "stopped") {
		t.Fatalf("strata down: %v\n%s", err, out)
	}
	assertChildrenGone(t, dir, children)
	if _, err := kubectlErr(dir, "get", "namespaces", "--request-timeout=2s"); err == nil {
		t.Error("the API server still answers after strata down")
	}
}

func wantOneLine(t *testing.T, out, substr string) {
	t.Helper()
	out = strings.TrimSpace(out)
	if strings.Count(out, "\n") > 0 || !strings.Contains(out, substr) || strings.Contains(out, "goroutine") {
		t.Errorf("want one line containing %q, got:\n%s", substr, out)
	}
}

func recordedChildren(t *testing.T, dir string) map[string]int {
	t.Helper()
	var st struct {
		Children map[string]int `json:"children"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st.Children
}

// assertChildrenGone checks that a clean stop left no child running and none
// recorded.
func assertChildrenGone(t *testing.T, dir string, children map[string]int) {
	t.Helper()
	if len(children) == 0 {
		t.Fatal("no children were recorded while running")
	}
	deadline := time.Now().Add(10 * time.Second)
	for name, pid := range children {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("%s (pid %d) still alive after the stop", name, pid)
		}
	}
	if c := recordedChildren(t, dir); len(c) != 0 {
		t.Errorf("state.json still records children after a clean stop: %v", c)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
