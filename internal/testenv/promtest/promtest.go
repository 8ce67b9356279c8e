package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-dev/strata/internal/testenv"
)

// Prometheus is a running Prometheus server.
type Prometheus struct {
	// Address is its http://127.0.0.1:port URL.
	Address string
	dir     string
}

// Start runs bin/prometheus on a free loopback port until the test ends,
// scraping every target (host:port of a /metrics endpoint) once a second.
// A missing binary fails the test and says to run `make tools`.
func Start(t testing.TB, targets ...string) *Prometheus {
	t.Helper()
	bin, err := testenv.Tool("prometheus")
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = fmt.Sprintf("%q", tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: test
    scrape_interval: 1s
    scrape_timeout: 900ms
    static_configs:
      - targets: [%s]
`, strings.Join(quoted, ", "))
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Prometheus{Address: "http://" + addr, dir: dir}
	cmd := testenv.Command(bin,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start prometheus: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = logf.Close() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.Address + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not become ready at %s within 60s: %v\n%s", p.Address, err, p.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Log returns what Prometheus has logged so far.
func (p *Prometheus) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "prometheus.log"))
	return string(b)
}

// Query runs an instant query and returns the number of samples in the
// result vector (or 1 for a scalar).
func (p *Prometheus) Query(ctx context.Context, q string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Address+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("cannot decode query response: %w", err)
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("query %q failed: %s", q, body.Error)
	}
	if body.Data.ResultType != "vector" {
		return 1, nil
	}
	var v []json.RawMessage
	if err := json.Unmarshal(body.Data.Result, &v); err != nil {
		return 0, err
	}
	return len(v), nil
}

// Values runs an instant query and returns the values of its samples (one
// for a scalar).
func (p *Prometheus) Values(ctx context.Context, q string) ([]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Address+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("cannot decode query response: %w", err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q failed: %s", q, body.Error)
	}
	parse := func(v []any) (float64, error) {
		s, _ := v[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	if body.Data.ResultType == "scalar" {
		var v []any
		if err := json.Unmarshal(body.Data.Result, &v); err != nil || len(v) != 2 {
			return nil, fmt.Errorf("cannot decode scalar %s: %v", body.Data.Result, err)
		}
		f, err := parse(v)
		return []float64{f}, err
	}
	var samples []struct {
		Value []any `json:"value"`
	}
	if err := json.Unmarshal(body.Data.Result, &samples); err != nil {
		return nil, fmt.Errorf("cannot decode %s result: %w", body.Data.ResultType, err)
	}
	out := make([]float64, 0, len(samples))
	for _, s := range samples {
		if len(s.Value) != 2 {
			return nil, fmt.Errorf("cannot decode sample %v", s.Value)
		}
		f, err := parse(s.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// WaitFor waits (at most 30 s) until the instant query q returns at least
// one sample: the target has been scraped.
func (p *Prometheus) WaitFor(t testing.TB, q string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := p.Query(context.Background(), q)
		if err == nil && n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus at %s has no samples for %q after 30s (err %v)\n%s", p.Address, q, err, p.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Target is a loopback /metrics endpoint the test controls.
type Target struct {
	// Addr is its host:port, to pass to Start.
	Addr string
	// Registry holds the metrics it serves.
	Registry *prometheus.Registry
}

// NewTarget serves a fresh registry on /metrics on a free loopback port
// until the test ends.
func NewTarget(t testing.TB) *Target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &Target{Addr: ln.Addr().String(), Registry: reg}
}

// Gauge registers a gauge vector with the given labels on the target.
func (tg *Target) Gauge(name string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: name + " (set by the test)"}, labels)
	tg.Registry.MustRegister(g)
	return g
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
