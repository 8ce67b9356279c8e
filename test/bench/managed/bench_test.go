package managed

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/managed"
	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
	"github.com/strata-dev/strata/internal/manager"
	"github.com/strata-dev/strata/internal/testenv"
	mt "github.com/strata-dev/strata/internal/testenv/managedtest"
	nopv1 "github.com/strata-dev/strata/providers/nop/apis/nop/v1alpha1"
	pgv1 "github.com/strata-dev/strata/providers/sql/apis/postgresql/v1alpha1"
	"github.com/strata-dev/strata/test/bench/benchutil"
)

// workers is how many requests the benchmark client has in flight.
const workers = 32

type cluster struct {
	*benchutil.Up
	c client.Client
}

func startCluster(b *testing.B) *cluster {
	up := benchutil.StartUp(b, "provider-nop", "provider-sql")
	// The same client settings as the managed-resource controllers'.
	return &cluster{Up: up, c: up.Client(b, managed.DefaultClientLimit.QPS, managed.DefaultClientLimit.Burst)}
}

type result struct {
	what              string
	n                 int
	lowerBound        time.Duration
	lowerBoundDelete  time.Duration // PostgreSQL only
	lowerBoundWhat    string
	ready, deleteTime time.Duration
	rss               float64
}

// plainCreate is the lower bound: n ConfigMaps created directly with the
// same client settings and workers.
func plainCreate(b *testing.B, cl *cluster, n int, ns string) time.Duration {
	ctx := context.Background()
	if err := cl.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	benchutil.Parallel(b, n, workers, func(i int) error {
		return cl.c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Namespace: ns}, Data: map[string]string{"v": "1"}})
	})
	return time.Since(start)
}

func countReady[L client.ObjectList](ctx context.Context, c client.Client, list L, items func(L) []conditions.Setter, prefix func(conditions.Setter) bool) (int, int, error) {
	if err := c.List(ctx, list); err != nil {
		return 0, 0, err
	}
	ready, total := 0, 0
	for _, o := range items(list) {
		if !prefix(o) {
			continue
		}
		total++
		if conditions.IsTrue(o, conditions.Ready) {
			ready++
		}
	}
	return ready, total, nil
}

func BenchmarkManaged(b *testing.B) {
	db, pgErr := pgx.Connect(context.Background(), mt.PostgresURL())
	cl := startCluster(b)
	var results []result
	b.Run("NopResources=1000", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r := benchNop(b, cl, 1000, i)
			results = append(results, r)
			b.ReportMetric(r.lowerBound.Seconds(), "plain-create-s")
			b.ReportMetric(r.ready.Seconds(), "ready-s")
			b.ReportMetric(r.ready.Seconds()/r.lowerBound.Seconds(), "ready-x-lowerbound")
			b.ReportMetric(r.deleteTime.Seconds(), "delete-s")
		}
	})
	b.Run("PostgreSQLDatabases=200", func(b *testing.B) {
		if pgErr != nil {
			b.Fatalf("PostgreSQL at 127.0.0.1:5432 is not reachable: %v (start it or set STRATA_TEST_POSTGRES_URL)", pgErr)
		}
		for i := 0; i < b.N; i++ {
			r := benchPostgres(b, cl, db, 200, i)
			results = append(results, r)
			b.ReportMetric(r.lowerBound.Seconds(), "sql-create-s")
			b.ReportMetric(r.ready.Seconds(), "ready-s")
			b.ReportMetric(r.ready.Seconds()/r.lowerBound.Seconds(), "ready-x-lowerbound")
			b.ReportMetric(r.deleteTime.Seconds(), "delete-s")
		}
	})
	rss := cl.PeakRSSMiB()
	for i := range results {
		results[i].rss = rss
	}
	if err := writeResults(results); err != nil {
		b.Error(err)
	}
}

func benchNop(b *testing.B, cl *cluster, n, iter int) result {
	ctx := context.Background()
	r := result{what: "NopResource", n: n, lowerBoundWhat: fmt.Sprintf("%d ConfigMaps created directly", n)}
	r.lowerBound = plainCreate(b, cl, n, fmt.Sprintf("plain-nop-%d", iter))
	prefix := fmt.Sprintf("bench-%d-", iter)
	mine := func(o conditions.Setter) bool { return strings.HasPrefix(o.(*nopv1.NopResource).Name, prefix) }
	items := func(l *nopv1.NopResourceList) []conditions.Setter {
		out := make([]conditions.Setter, len(l.Items))
		for i := range l.Items {
			out[i] = &l.Items[i]
		}
		return out
	}
	start := time.Now()
	benchutil.Parallel(b, n, workers, func(i int) error {
		return cl.c.Create(ctx, &nopv1.NopResource{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s%04d", prefix, i)}})
	})
	benchutil.WaitUntil(b, 20*time.Minute, "NopResources Ready", func() (bool, string) {
		ready, _, err := countReady(ctx, cl.c, &nopv1.NopResourceList{}, items, mine)
		if err != nil {
			return false, err.Error()
		}
		return ready == n, fmt.Sprintf("%d/%d Ready", ready, n)
	})
	r.ready = time.Since(start)
	start = time.Now()
	benchutil.Parallel(b, n, workers, func(i int) error {
		return client.IgnoreNotFound(cl.c.Delete(ctx, &nopv1.NopResource{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s%04d", prefix, i)}}))
	})
	benchutil.WaitUntil(b, 20*time.Minute, "NopResources deleted", func() (bool, string) {
		_, total, err := countReady(ctx, cl.c, &nopv1.NopResourceList{}, items, mine)
		if err != nil {
			return false, err.Error()
		}
		return total == 0, fmt.Sprintf("%d left", total)
	})
	r.deleteTime = time.Since(start)
	return r
}

func benchPostgres(b *testing.B, cl *cluster, admin *pgx.Conn, n, iter int) result {
	ctx := context.Background()
	sfx := mt.Suffix()
	r := result{what: "PostgreSQL Database", n: n, lowerBoundWhat: fmt.Sprintf("%d CREATE DATABASE over 4 connections", n)}
	// Lower bound: the same databases created directly, as many at once as
	// the provider's pool allows (4 connections).
	pool, err := pgxpool.New(ctx, mt.PostgresURL())
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	start := time.Now()
	benchutil.Parallel(b, n, 4, func(i int) error {
		_, err := pool.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{fmt.Sprintf("plain-%s-%03d", sfx, i)}.Sanitize())
		return err
	})
	r.lowerBound = time.Since(start)
	start = time.Now()
	benchutil.Parallel(b, n, 4, func(i int) error {
		_, err := pool.Exec(ctx, "DROP DATABASE "+pgx.Identifier{fmt.Sprintf("plain-%s-%03d", sfx, i)}.Sanitize()+" WITH (FORCE)")
		return err
	})
	r.lowerBoundDelete = time.Since(start)

	pu, _ := url.Parse(mt.PostgresURL())
	host, port, _ := net.SplitHostPort(pu.Host)
	pw, _ := pu.User.Password()
	pcName := "bench-" + sfx
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: pcName},
		StringData: map[string]string{"endpoint": host, "port": port, "username": pu.User.Username(), "password": pw, "sslmode": "disable"}}
	pc := &pgv1.ProviderConfig{ObjectMeta: metav1.ObjectMeta{Name: pcName},
		Spec: pgv1.ProviderConfigSpec{ConnectionSecretRef: managedv1.SecretReference{Namespace: "default", Name: pcName}}}
	for _, o := range []client.Object{sec, pc} {
		if err := cl.c.Create(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	prefix := "bench-" + sfx + "-"
	mine := func(o conditions.Setter) bool { return strings.HasPrefix(o.(*pgv1.Database).Name, prefix) }
	items := func(l *pgv1.DatabaseList) []conditions.Setter {
		out := make([]conditions.Setter, len(l.Items))
		for i := range l.Items {
			out[i] = &l.Items[i]
		}
		return out
	}
	start = time.Now()
	benchutil.Parallel(b, n, workers, func(i int) error {
		return cl.c.Create(ctx, &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s%03d", prefix, i)},
			Spec: pgv1.DatabaseSpec{ResourceSpec: managedv1.ResourceSpec{ProviderConfigReference: &managedv1.Reference{Name: pcName}}}})
	})
	benchutil.WaitUntil(b, 20*time.Minute, "Databases Ready", func() (bool, string) {
		ready, _, err := countReady(ctx, cl.c, &pgv1.DatabaseList{}, items, mine)
		if err != nil {
			return false, err.Error()
		}
		return ready == n, fmt.Sprintf("%d/%d Ready", ready, n)
	})
	r.ready = time.Since(start)
	start = time.Now()
	benchutil.Parallel(b, n, workers, func(i int) error {
		return client.IgnoreNotFound(cl.c.Delete(ctx, &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s%03d", prefix, i)}}))
	})
	benchutil.WaitUntil(b, 20*time.Minute, "Databases deleted", func() (bool, string) {
		_, total, err := countReady(ctx, cl.c, &pgv1.DatabaseList{}, items, mine)
		if err != nil {
			return false, err.Error()
		}
		return total == 0, fmt.Sprintf("%d left", total)
	})
	r.deleteTime = time.Since(start)
	var left int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname LIKE $1", prefix+"%").Scan(&left); err != nil || left != 0 {
		b.Errorf("%d benchmark databases left on the server (%v)", left, err)
	}
	_ = cl.c.Delete(ctx, pc)
	_ = cl.c.Delete(ctx, sec)
	return r
}

const (
	markStart = "<!-- managed-bench:start -->"
	markEnd   = "<!-- managed-bench:end -->"
)

// writeResults replaces the managed-resource section of docs/benchmarks.md.
func writeResults(results []result) error {
	if len(results) == 0 {
		return nil
	}
	o := manager.DefaultOptions()
	var s strings.Builder
	fmt.Fprintf(&s, "%s\n## Managed resources\n\n", markStart)
	fmt.Fprintf(&s, "`make bench` (`BenchmarkManaged` in `test/bench/managed`), written by the benchmark on %s.\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&s, "A local cluster (`strata up --subsystems provider-nop,provider-sql`) with the default flags (%d workers per kind,\n", o.MaxConcurrentReconciles)
	fmt.Fprintf(&s, "`--max-reconcile-rate %g`), N resources created in one burst by %d workers, until every one is `Ready`; client QPS %g,\n", o.MaxReconcileRate, workers, managed.DefaultClientLimit.QPS)
	fmt.Fprintf(&s, "burst %d for both the controllers and the benchmark. Lower bound: the same API server creating N ConfigMaps with\n", managed.DefaultClientLimit.Burst)
	fmt.Fprintf(&s, "the same client settings (NopResource), or PostgreSQL running the N `CREATE DATABASE` statements directly over the\n")
	fmt.Fprintf(&s, "provider's 4 connections (Database; its lower bound delete is the same databases dropped directly, `DROP DATABASE`\n")
	fmt.Fprintf(&s, "forces a checkpoint each time). Delete is until every resource (and its database) is gone. Peak RSS is the\n")
	fmt.Fprintf(&s, "`strata up` process, manager included.\n\n")
	fmt.Fprintf(&s, "| kind | N | lower bound | lower bound (s) | all Ready (s) | ratio | delete (s) | lower bound delete (s) | peak RSS (MiB) |\n")
	fmt.Fprintf(&s, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range results {
		lbd := "–"
		if r.lowerBoundDelete > 0 {
			lbd = fmt.Sprintf("%.1f", r.lowerBoundDelete.Seconds())
		}
		fmt.Fprintf(&s, "| %s | %d | %s | %.1f | %.1f | %.1f× | %.1f | %s | %.0f |\n", r.what, r.n, r.lowerBoundWhat, r.lowerBound.Seconds(),
			r.ready.Seconds(), r.ready.Seconds()/r.lowerBound.Seconds(), r.deleteTime.Seconds(), lbd, r.rss)
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
