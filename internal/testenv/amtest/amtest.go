package amtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/testenv"
)

// Alertmanager is a running Alertmanager.
type Alertmanager struct {
	// URL is its http://127.0.0.1:port address.
	URL string
	dir string
}

// Config is what the started Alertmanager sends where.
type Config struct {
	// WebhookURL receives every alert (Strata's Alertmanager endpoint).
	WebhookURL string
	// BearerToken, when set, is sent as "Authorization: Bearer <token>".
	BearerToken string
}

// config is the alertmanager.yml: one route to one webhook receiver,
// grouped by alertname and sent at once, so a test waits milliseconds, not
// Alertmanager's default 30s group_wait.
func (c Config) yaml() string {
	auth := ""
	if c.BearerToken != "" {
		auth = fmt.Sprintf("\n    http_config:\n      authorization:\n        type: Bearer\n        credentials: %q", c.BearerToken)
	}
	return fmt.Sprintf(`route:
  receiver: strata
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: strata
  webhook_configs:
  - url: %q
    send_resolved: true%s
`, c.WebhookURL, auth)
}

// Start runs bin/alertmanager on a free loopback port with cfg until the
// test ends. A missing binary fails the test, saying to run `make tools`.
func Start(t testing.TB, cfg Config) *Alertmanager {
	t.Helper()
	bin, err := testenv.Tool("alertmanager")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte(cfg.yaml()), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, cluster := freeAddr(t), freeAddr(t)
	am := &Alertmanager{URL: "http://" + addr, dir: dir}
	cmd := testenv.Command(bin, "--config.file="+conf, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--cluster.advertise-address="+cluster,
		"--log.level=debug")
	logf, err := os.Create(filepath.Join(dir, "alertmanager.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start alertmanager: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", am.Log())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(am.URL + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return am
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager did not become ready at %s within 30s: %v\n%s", am.URL, err, am.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Log returns what Alertmanager logged so far.
func (a *Alertmanager) Log() string {
	b, _ := os.ReadFile(filepath.Join(a.dir, "alertmanager.log"))
	return string(b)
}

// Alert is one alert posted to Alertmanager's API.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	StartsAt    time.Time         `json:"startsAt,omitempty"`
	EndsAt      time.Time         `json:"endsAt,omitempty"`
}

// Post sends alerts to Alertmanager's v2 API, as Prometheus does.
func (a *Alertmanager) Post(t testing.TB, alerts ...Alert) {
	t.Helper()
	body, err := json.Marshal(alerts)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(a.URL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("cannot post alerts to alertmanager: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("alertmanager refused the alerts: %s", resp.Status)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
