package secrets

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	secretscontroller "github.com/strata-dev/strata/internal/secrets/controller"
	"github.com/strata-dev/strata/internal/testenv/vaulttest"
	"github.com/strata-dev/strata/test/bench/benchutil"
)

// poll is how often the benchmark looks at its tracker (in memory).
const poll = 20 * time.Millisecond

// storeQPS is the stores' rate limit in the benchmark: raised from the
// default (10/s, burst 20) so that the store's limiter is not what is
// measured.
const storeQPS = 10000

// VaultEnv, set to 0, leaves out the Vault half (it needs bin/vault from
// `make tools`).
const VaultEnv = "STRATA_BENCH_VAULT"

// counter is a loopback reverse proxy in front of Vault that counts the
// requests the controllers send, by kind ("login", "read", "other").
type counter struct {
	srv   *httptest.Server
	total atomic.Int64
	mu    sync.Mutex
	by    map[string]int64
}

func newCounter(b *testing.B, target string) *counter {
	u, err := url.Parse(target)
	if err != nil {
		b.Fatal(err)
	}
	c := &counter{by: map[string]int64{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	// Keep connections to Vault open across the burst, as the client's own
	// transport does to the proxy.
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.total.Add(1)
		kind := "other " + r.Method + " " + r.URL.Path
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/auth/") && strings.HasSuffix(r.URL.Path, "/login"):
			kind = "login"
		case strings.HasPrefix(r.URL.Path, "/v1/auth/token/lookup-self"):
			kind = "token lookup-self"
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/data/"):
			kind = "KV read"
		}
		c.mu.Lock()
		c.by[kind]++
		c.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	b.Cleanup(c.srv.Close)
	return c
}

// snapshot is the requests so far, by kind.
func (c *counter) snapshot() (int64, map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.by))
	for k, v := range c.by {
		out[k] = v
	}
	return c.total.Load(), out
}

func diff(after, before map[string]int64) string {
	var keys []string
	for k, v := range after {
		if v-before[k] != 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, after[k]-before[k])
	}
	return strings.Join(parts, ", ")
}

// result is one store's run: the row, and what it asked of the store.
type result struct {
	row benchutil.Row
	// storeRequests is the requests that reached Vault (0 for fake),
	// storeBy the same by kind.
	storeRequests int64
	storeBy       string
	rss           float64
}

// store is what one half of the benchmark needs: a store object created in
// ns, and the remote key of ExternalSecret i.
type store struct {
	name string
	make func(ns string) []client.Object
	// requests is the count of store requests so far (nil: not counted).
	requests func() (int64, map[string]int64)
}

func fakeStore(n int) store {
	return store{name: "fake", make: func(ns string) []client.Object {
		data := make([]secretsv1.FakeProviderData, n)
		for i := range data {
			data[i] = secretsv1.FakeProviderData{Key: key(i), ValueMap: map[string]string{"password": fmt.Sprintf("value-%d", i)}}
		}
		return []client.Object{&secretsv1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fake"},
			Spec: secretsv1.SecretStoreSpec{RateLimit: &secretsv1.RateLimit{QPS: storeQPS, Burst: storeQPS},
				Provider: secretsv1.SecretStoreProvider{Fake: &secretsv1.FakeProvider{Data: data}}}}}
	}}
}

// vaultStore starts Vault (dev mode, KV v2 at secret/), writes n secrets
// and a token that may read them, and puts the counting proxy in front.
func vaultStore(b *testing.B, n int) store {
	vs := vaulttest.Start(b)
	vs.Policy(b, "bench", "secret/data/bench/*", "secret/metadata/bench/*")
	token := vs.Token(b, "bench")
	benchutil.Parallel(b, n, benchutil.Workers, func(i int) error {
		_, err := vs.API().KVv2("secret").Put(context.Background(), key(i), map[string]any{"password": fmt.Sprintf("value-%d", i)})
		return err
	})
	proxy := newCounter(b, vs.Addr)
	path := "secret"
	return store{name: "vault", requests: proxy.snapshot, make: func(ns string) []client.Object {
		return []client.Object{
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vault-token"}, StringData: map[string]string{"token": token}},
			&secretsv1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vault"},
				Spec: secretsv1.SecretStoreSpec{RateLimit: &secretsv1.RateLimit{QPS: storeQPS, Burst: storeQPS},
					Provider: secretsv1.SecretStoreProvider{Vault: &secretsv1.VaultProvider{Server: proxy.srv.URL, Path: &path, Version: secretsv1.VaultKVStoreV2,
						Auth: secretsv1.VaultAuth{TokenSecretRef: &secretsv1.SecretKeySelector{Name: "vault-token", Key: "token"}}}}}},
		}
	}}
}

func key(i int) string { return fmt.Sprintf("bench/app-%04d", i) }

// run creates the store in its own namespace, waits until it is Ready, then
// creates n ExternalSecrets (one key each) in one burst and waits until all
// are Ready.
func run(b *testing.B, up *benchutil.Up, st store, n int, lb benchutil.LowerBound) result {
	ctx := context.Background()
	c := up.Unthrottled(b)
	ns := "bench-" + st.name
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	objs := st.make(ns)
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	storeObj := objs[len(objs)-1].(*secretsv1.SecretStore)
	benchutil.WaitUntil(b, 2*time.Minute, "store Ready", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(storeObj), storeObj); err != nil {
			return false, err.Error()
		}
		if r := conditions.Get(storeObj, conditions.Ready); r != nil {
			return r.Status == metav1.ConditionTrue, r.Reason + ": " + r.Message
		}
		return false, "no Ready condition"
	})
	tracker := up.Track(b, secretsv1.GroupVersion.WithKind("ExternalSecret"), ns, nil)
	defer tracker.Stop()
	up.SettleWithin(b, time.Minute)
	up.ResetPeakRSS()
	var before int64
	var beforeBy map[string]int64
	if st.requests != nil {
		before, beforeBy = st.requests()
	}
	p := up.Measure(b, func() {
		benchutil.Parallel(b, n, benchutil.Workers, func(i int) error {
			return c.Create(ctx, &secretsv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("app-%04d", i)},
				Spec: secretsv1.ExternalSecretSpec{SecretStoreRef: secretsv1.SecretStoreRef{Name: storeObj.Name}, RefreshInterval: &metav1.Duration{Duration: time.Hour},
					Data: []secretsv1.ExternalSecretData{{SecretKey: "password", RemoteRef: secretsv1.ExternalSecretDataRemoteRef{Key: key(i), Property: "password"}}}}})
		})
		benchutil.WaitUntilEvery(b, 20*time.Minute, poll, "every ExternalSecret Ready", func() (bool, string) {
			ready, total := tracker.Count(benchutil.IsReady)
			return ready == n, fmt.Sprintf("%d/%d Ready", ready, total)
		})
	})
	r := result{rss: up.PeakRSSMiB(), row: benchutil.Row{Step: "ExternalSecret create → all Ready (" + st.name + " store)", Who: "Strata", N: n, Unit: "ExternalSecret",
		Phase: p, Bound: lb.Create, BoundWhat: fmt.Sprintf("%d ConfigMap creates, unthrottled", lb.N), Own: n}}
	if st.requests != nil {
		after, afterBy := st.requests()
		r.storeRequests, r.storeBy = after-before, diff(afterBy, beforeBy)
	}
	// Every Secret holds its value.
	var l corev1.SecretList
	if err := c.List(ctx, &l, client.InNamespace(ns), client.MatchingLabels{secretsv1.ManagedByLabel: secretsv1.ManagedByValue}); err != nil {
		b.Fatal(err)
	}
	if len(l.Items) != n {
		b.Fatalf("%d Secrets written for %d ExternalSecrets", len(l.Items), n)
	}
	for _, s := range l.Items {
		var i int
		if _, err := fmt.Sscanf(s.Name, "app-%d", &i); err != nil || string(s.Data["password"]) != fmt.Sprintf("value-%d", i) {
			b.Fatalf("Secret %s does not hold its value", s.Name)
		}
	}
	return r
}

// BenchmarkExternalSecrets: N ExternalSecrets against a fake store, then
// against a real Vault (KV v2, token auth), on one local cluster; each next
// to the lower bound of N unthrottled ConfigMap creates measured just
// before it.
func BenchmarkExternalSecrets(b *testing.B) {
	load := benchutil.LoadAverage()
	n := 1000
	if s := benchutil.Sizes(""); len(s) > 0 {
		n = s[0]
	}
	stores := []func(*testing.B) store{func(*testing.B) store { return fakeStore(n) }}
	if os.Getenv(VaultEnv) != "0" {
		stores = append(stores, func(b *testing.B) store { return vaultStore(b, n) })
	}
	up := benchutil.StartUp(b, "secrets")
	var results []result
	for _, mk := range stores {
		st := mk(b)
		b.Run(fmt.Sprintf("%s-%d", st.name, n), func(b *testing.B) {
			lb := up.MeasureLowerBound(b, "lower-bound-"+st.name, n)
			r := run(b, up, st, n, lb)
			r.row.Print()
			if st.requests != nil {
				fmt.Printf("Vault requests: %d (%.2f per ExternalSecret): %s\n", r.storeRequests, float64(r.storeRequests)/float64(n), r.storeBy)
			}
			b.ReportMetric(r.row.Phase.Took.Seconds(), "s-all-ready")
			b.ReportMetric(r.row.Bound.Took.Seconds(), "s-lower-bound")
			b.ReportMetric(r.row.Phase.Per(n), "writes/es")
			results = append(results, r)
		})
	}
	if err := writeResults(load, up.Args, results); err != nil {
		b.Error(err)
	}
}

// writeResults replaces the external-secrets section of docs/benchmarks.md.
func writeResults(load string, upArgs []string, results []result) error {
	if len(results) == 0 {
		return nil
	}
	lim := secretscontroller.DefaultClientLimit
	var s strings.Builder
	s.WriteString(benchutil.Heading("External secrets", "BenchmarkExternalSecrets", "test/bench/secrets", load))
	fmt.Fprintf(&s, "A local cluster (`strata up --subsystems secrets%s`, controller client QPS %g, burst %d). For each store, in its own\n", benchutil.ExtraFlags(upArgs), lim.QPS, lim.Burst)
	fmt.Fprintf(&s, "namespace: one SecretStore (rate limit raised to %d/s so the store's limiter is not what is measured), then N\n", storeQPS)
	fmt.Fprintf(&s, "ExternalSecrets (one key each, `refreshInterval: 1h`) created in one burst by %d workers, until every one is `Ready`\n", benchutil.Workers)
	fmt.Fprintf(&s, "and every Secret holds its value. The `fake` store holds N keys in its spec; the `vault` store is a real Vault\n")
	fmt.Fprintf(&s, "(`bin/vault`, dev mode, KV v2, token auth) holding N secrets, reached through a counting loopback proxy that\n")
	fmt.Fprintf(&s, "counts the requests Vault receives. The lower bound is measured just before each store's run: the same API\n")
	fmt.Fprintf(&s, "server creating N ConfigMaps through a client that is not throttled (QPS %d, burst %d, %d workers). API writes and CPU\n", benchutil.UnthrottledQPS, benchutil.UnthrottledBurst, benchutil.Workers)
	fmt.Fprintf(&s, "seconds are counted as for the composition benchmark (all clients, from the start of the step until no write arrived\n")
	fmt.Fprintf(&s, "for 2 s; node and lease heartbeats left out); the minimum beyond the user's create is 2 (the Secret and one status\n")
	fmt.Fprintf(&s, "write). ESO publishes no comparable figure (its docs give no time-to-sync or writes-per-ExternalSecret number).\n\n")
	rows := make([]benchutil.Row, len(results))
	for i, r := range results {
		rows[i] = r.row
	}
	s.WriteString(benchutil.Table(rows))
	s.WriteString("\n")
	for _, r := range results {
		fmt.Fprintf(&s, "- %s: manager peak RSS %.0f MiB (VmHWM of `strata up`, reset before the step)", r.row.Step, r.rss)
		if r.storeBy != "" {
			fmt.Fprintf(&s, "; Vault requests %d, %.2f per ExternalSecret (%s)", r.storeRequests, float64(r.storeRequests)/float64(r.row.N), r.storeBy)
		}
		s.WriteString(".\n")
	}
	s.WriteString("\nWrites by verb and resource:\n\n")
	s.WriteString(benchutil.WritesTable(rows))
	return benchutil.WriteSection("secrets-bench", s.String())
}
