package amtest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/testenv"
)

// StartPrometheus runs bin/prometheus (the `prometheus` tools group) on a
// free loopback port until the test ends: it scrapes targets (host:port of
// /metrics endpoints) every second, evaluates rules (the YAML of a rule
// group list: "groups: ...") every second and sends firing alerts to am.
// It returns Prometheus's URL. A missing binary fails the test, saying to
// run `make tools`.
func StartPrometheus(t testing.TB, am *Alertmanager, rules string, targets ...string) string {
	t.Helper()
	bin, err := testenv.Tool("prometheus")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = fmt.Sprintf("%q", tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
alerting:
  alertmanagers:
  - static_configs:
    - targets: [%q]
scrape_configs:
- job_name: test
  scrape_interval: 1s
  scrape_timeout: 900ms
  static_configs:
  - targets: [%s]
`, filepath.Join(dir, "rules.yml"), strings.TrimPrefix(am.URL, "http://"), strings.Join(quoted, ", "))
	for name, data := range map[string]string{"prometheus.yml": cfg, "rules.yml": rules} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	cmd := testenv.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start prometheus: %v", err)
	}
	logOf := func() string { b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log")); return string(b) }
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logOf())
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not become ready at %s within 60s: %v\n%s", url, err, logOf())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
