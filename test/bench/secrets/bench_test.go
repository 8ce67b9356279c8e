package secrets

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	secretscontroller "github.com/strata-dev/strata/internal/secrets/controller"
	"github.com/strata-dev/strata/internal/testenv"
	"github.com/strata-dev/strata/test/bench/benchutil"
)

// workers is how many requests the benchmark client has in flight.
const workers = 32

type result struct {
	n                 int
	lowerBound, ready time.Duration
	writesPerES       float64
	rss               float64
}

// writes sums the API server's write requests (create, update, patch,
// apply, delete) on Secrets and ExternalSecrets (status included).
func writes(b *testing.B, cs kubernetes.Interface) float64 {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		if !strings.Contains(line, `resource="secrets"`) && !strings.Contains(line, `resource="externalsecrets"`) {
			continue
		}
		if strings.Contains(line, `verb="GET"`) || strings.Contains(line, `verb="LIST"`) || strings.Contains(line, `verb="WATCH"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			total += v
		}
	}
	return total
}

func run(b *testing.B, n int) result {
	ctx := context.Background()
	up := benchutil.StartUp(b, "secrets")
	lim := secretscontroller.DefaultClientLimit
	c := up.Client(b, lim.QPS, lim.Burst)
	cs, err := kubernetes.NewForConfig(up.RESTConfig(b))
	if err != nil {
		b.Fatal(err)
	}
	for _, ns := range []string{"lower-bound", "bench"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
	}
	// Lower bound: N Secrets created directly with the same client settings.
	start := time.Now()
	benchutil.Parallel(b, n, workers, func(i int) error {
		return c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "lower-bound", Name: fmt.Sprintf("s-%d", i)},
			Data: map[string][]byte{"password": []byte(fmt.Sprintf("value-%d", i))}})
	})
	lower := time.Since(start)

	data := make([]secretsv1.FakeProviderData, n)
	for i := range data {
		data[i] = secretsv1.FakeProviderData{Key: fmt.Sprintf("app-%d", i), ValueMap: map[string]string{"password": fmt.Sprintf("value-%d", i)}}
	}
	st := &secretsv1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "fake"},
		Spec: secretsv1.SecretStoreSpec{RateLimit: &secretsv1.RateLimit{QPS: 10000, Burst: 10000},
			Provider: secretsv1.SecretStoreProvider{Fake: &secretsv1.FakeProvider{Data: data}}}}
	if err := c.Create(ctx, st); err != nil {
		b.Fatal(err)
	}
	benchutil.WaitUntil(b, time.Minute, "store Ready", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(st), st); err != nil {
			return false, err.Error()
		}
		return conditions.IsTrue(st, conditions.Ready), ""
	})
	before := writes(b, cs)
	start = time.Now()
	benchutil.Parallel(b, n, workers, func(i int) error {
		return c.Create(ctx, &secretsv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("app-%d", i)},
			Spec: secretsv1.ExternalSecretSpec{SecretStoreRef: secretsv1.SecretStoreRef{Name: "fake"}, RefreshInterval: &metav1.Duration{Duration: time.Hour},
				Data: []secretsv1.ExternalSecretData{{SecretKey: "password", RemoteRef: secretsv1.ExternalSecretDataRemoteRef{Key: fmt.Sprintf("app-%d", i), Property: "password"}}}}})
	})
	benchutil.WaitUntilEvery(b, 10*time.Minute, 200*time.Millisecond, "every ExternalSecret Ready", func() (bool, string) {
		var l secretsv1.ExternalSecretList
		if err := c.List(ctx, &l, client.InNamespace("bench")); err != nil {
			return false, err.Error()
		}
		ready := 0
		for i := range l.Items {
			if conditions.IsTrue(&l.Items[i], conditions.Ready) {
				ready++
			}
		}
		return ready == n, fmt.Sprintf("%d/%d Ready", ready, n)
	})
	took := time.Since(start)
	// Let the controllers settle (requeues after the last Ready), then count.
	time.Sleep(5 * time.Second)
	after := writes(b, cs)
	return result{n: n, lowerBound: lower, ready: took, writesPerES: (after - before - float64(n)) / float64(n), rss: up.PeakRSSMiB()}
}

// BenchmarkExternalSecrets: N ExternalSecrets against one fake store.
func BenchmarkExternalSecrets(b *testing.B) {
	var results []result
	for _, n := range benchutil.Sizes("1000") {
		b.Run(fmt.Sprintf("fake-%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r := run(b, n)
				b.ReportMetric(r.ready.Seconds(), "s-all-ready")
				b.ReportMetric(r.lowerBound.Seconds(), "s-lower-bound")
				b.ReportMetric(r.writesPerES, "writes/es")
				results = append(results, r)
			}
		})
	}
	if err := writeResults(results); err != nil {
		b.Fatal(err)
	}
}

const (
	markStart = "<!-- secrets-bench:start -->"
	markEnd   = "<!-- secrets-bench:end -->"
)

// writeResults replaces the external-secrets section of docs/benchmarks.md.
func writeResults(results []result) error {
	if len(results) == 0 {
		return nil
	}
	lim := secretscontroller.DefaultClientLimit
	var s strings.Builder
	fmt.Fprintf(&s, "%s\n## External secrets\n\n", markStart)
	fmt.Fprintf(&s, "`make bench` (`BenchmarkExternalSecrets` in `test/bench/secrets`), written by the benchmark on %s.\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&s, "A local cluster (`strata up --subsystems secrets`), one `fake` SecretStore holding N keys (its rate limit raised to\n")
	fmt.Fprintf(&s, "10000/s so the store is not the bottleneck), N ExternalSecrets (one key each) created in one burst by %d workers,\n", workers)
	fmt.Fprintf(&s, "until every one is `Ready`; client QPS %g, burst %d for both the controllers and the benchmark. Lower bound: the same\n", lim.QPS, lim.Burst)
	fmt.Fprintf(&s, "API server creating N Secrets directly with the same client settings. Writes per ExternalSecret are the API server's\n")
	fmt.Fprintf(&s, "write requests (create, update, patch, apply, delete) on Secrets and ExternalSecrets, status included, minus the\n")
	fmt.Fprintf(&s, "benchmark's own creates, divided by N (the minimum is 2: the Secret and one status write). ESO publishes no comparable figure.\n\n")
	fmt.Fprintf(&s, "| store | N | lower bound (s) | all Ready (s) | ratio | API writes per ExternalSecret | peak RSS (MiB) |\n")
	fmt.Fprintf(&s, "| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range results {
		fmt.Fprintf(&s, "| fake | %d | %.1f | %.1f | %.1f× | %.2f | %.0f |\n", r.n, r.lowerBound.Seconds(), r.ready.Seconds(),
			r.ready.Seconds()/r.lowerBound.Seconds(), r.writesPerES, r.rss)
	}
	s.WriteString(markEnd + "\n")
	path := filepath.Join(testenv.RepoRoot(), "docs", "benchmarks.md")
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(old)
	if text == "" {
		text = "# Benchmarks\n\n"
	}
	if i := strings.Index(text, markStart); i >= 0 {
		if j := strings.Index(text, markEnd); j > i {
			text = text[:i] + s.String() + text[j+len(markEnd)+1:]
		}
	} else {
		text = strings.TrimRight(text, "\n") + "\n\n" + s.String()
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
