package managed

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/conditions"
	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
	mt "github.com/strata-dev/strata/internal/testenv/managedtest"
	nopv1 "github.com/strata-dev/strata/providers/nop/apis/nop/v1alpha1"
	pgv1 "github.com/strata-dev/strata/providers/sql/apis/postgresql/v1alpha1"
	"github.com/strata-dev/strata/test/bench/benchutil"
)

type cluster struct {
	*benchutil.Up
	c client.Client // unthrottled
}

func startCluster(b *testing.B) *cluster {
	up := benchutil.StartUp(b, "provider-nop", "provider-sql")
	return &cluster{Up: up, c: up.Unthrottled(b)}
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
	load := benchutil.LoadAverage()
	db, pgErr := pgx.Connect(context.Background(), mt.PostgresURL())
	cl := startCluster(b)
	var rows []benchutil.Row
	rss := map[string]float64{}
	n := 1000
	if s := benchutil.Sizes(""); len(s) > 0 {
		n = s[0]
	}
	b.Run(fmt.Sprintf("NopResources=%d", n), func(b *testing.B) {
		lb := cl.MeasureLowerBound(b, fmt.Sprintf("lower-bound-nop-%d", n), n)
		cl.ResetPeakRSS()
		rs := benchNop(b, cl, n, lb)
		rss["NopResource"] = cl.PeakRSSMiB()
		for _, r := range rs {
			r.Print()
		}
		rows = append(rows, rs...)
		b.ReportMetric(rs[0].Phase.Took.Seconds(), "ready-s")
		b.ReportMetric(rs[0].Ratio(), "ready-x-lowerbound")
		b.ReportMetric(rs[0].Phase.Per(n), "writes/resource")
	})
	if os.Getenv(PostgresEnv) != "0" {
		b.Run("PostgreSQLDatabases=200", func(b *testing.B) {
			if pgErr != nil {
				b.Fatalf("PostgreSQL at 127.0.0.1:5432 is not reachable: %v (start it or set STRATA_TEST_POSTGRES_URL)", pgErr)
			}
			cl.ResetPeakRSS()
			rs := benchPostgres(b, cl, db, 200)
			rss["PostgreSQL Database"] = cl.PeakRSSMiB()
			for _, r := range rs {
				r.Print()
			}
			rows = append(rows, rs...)
		})
	}
	if err := writeResults(load, cl.Args, rows, rss); err != nil {
		b.Error(err)
	}
}

// poll is how often a benchmark looks at its trackers (in memory).
const poll = 20 * time.Millisecond

// PostgresEnv, set to 0, leaves out the PostgreSQL Database run (it needs a
// PostgreSQL server, see internal/testenv/managedtest).
const PostgresEnv = "STRATA_BENCH_POSTGRES"

func benchNop(b *testing.B, cl *cluster, n int, lb benchutil.LowerBound) []benchutil.Row {
	ctx := context.Background()
	prefix := "bench-"
	row := func(step string, p, bound benchutil.Phase, what string) benchutil.Row {
		return benchutil.Row{Step: step, Who: "Strata", N: n, Unit: "resource", Phase: p, Bound: bound, BoundWhat: what, Own: n}
	}
	nops := cl.Track(b, nopv1.GroupVersion.WithKind("NopResource"), "", nil)
	defer nops.Stop()
	mineU := func(u *unstructured.Unstructured) bool { return strings.HasPrefix(u.GetName(), prefix) }
	create := cl.Measure(b, func() {
		benchutil.Parallel(b, n, benchutil.Workers, func(i int) error {
			return cl.c.Create(ctx, &nopv1.NopResource{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s%04d", prefix, i)}})
		})
		benchutil.WaitUntilEvery(b, 20*time.Minute, poll, "NopResources Ready", func() (bool, string) {
			ready, _ := nops.Count(func(u *unstructured.Unstructured) bool { return mineU(u) && benchutil.IsReady(u) })
			return ready == n, fmt.Sprintf("%d/%d Ready", ready, n)
		})
	})
	del := cl.Measure(b, func() {
		benchutil.Parallel(b, n, benchutil.Workers, func(i int) error {
			return client.IgnoreNotFound(cl.c.Delete(ctx, &nopv1.NopResource{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s%04d", prefix, i)}}))
		})
		benchutil.WaitUntilEvery(b, 20*time.Minute, poll, "NopResources deleted", func() (bool, string) {
			left, _ := nops.Count(mineU)
			return left == 0, fmt.Sprintf("%d left", left)
		})
	})
	return []benchutil.Row{
		row("NopResource create → all Ready", create, lb.Create, fmt.Sprintf("%d ConfigMap creates, unthrottled", lb.N)),
		row("NopResource delete → all gone", del, lb.Delete, fmt.Sprintf("%d ConfigMap deletes, unthrottled", lb.N)),
	}
}

// benchPostgres creates n Databases until Ready and deletes them until their
// databases are gone; the lower bound is PostgreSQL running the same
// statements directly over the provider's 4 connections (DROP DATABASE
// forces a checkpoint each time).
func benchPostgres(b *testing.B, cl *cluster, admin *pgx.Conn, n int) []benchutil.Row {
	ctx := context.Background()
	sfx := mt.Suffix()
	var lbCreate, lbDelete benchutil.Phase
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
	lbCreate.Took = time.Since(start)
	start = time.Now()
	benchutil.Parallel(b, n, 4, func(i int) error {
		_, err := pool.Exec(ctx, "DROP DATABASE "+pgx.Identifier{fmt.Sprintf("plain-%s-%03d", sfx, i)}.Sanitize()+" WITH (FORCE)")
		return err
	})
	lbDelete.Took = time.Since(start)

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
	create := cl.Measure(b, func() {
		benchutil.Parallel(b, n, benchutil.Workers, func(i int) error {
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
	})
	del := cl.Measure(b, func() {
		benchutil.Parallel(b, n, benchutil.Workers, func(i int) error {
			return client.IgnoreNotFound(cl.c.Delete(ctx, &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s%03d", prefix, i)}}))
		})
		benchutil.WaitUntil(b, 20*time.Minute, "Databases deleted", func() (bool, string) {
			_, total, err := countReady(ctx, cl.c, &pgv1.DatabaseList{}, items, mine)
			if err != nil {
				return false, err.Error()
			}
			return total == 0, fmt.Sprintf("%d left", total)
		})
	})
	var left int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname LIKE $1", prefix+"%").Scan(&left); err != nil || left != 0 {
		b.Errorf("%d benchmark databases left on the server (%v)", left, err)
	}
	_ = cl.c.Delete(ctx, pc)
	_ = cl.c.Delete(ctx, sec)
	row := func(step string, p, bound benchutil.Phase, what string) benchutil.Row {
		return benchutil.Row{Step: step, Who: "Strata", N: n, Unit: "database", Phase: p, Bound: bound, BoundWhat: what, Own: n}
	}
	return []benchutil.Row{
		row("PostgreSQL Database create → all Ready", create, lbCreate, fmt.Sprintf("%d CREATE DATABASE, 4 connections, no API server", n)),
		row("PostgreSQL Database delete → all gone", del, lbDelete, fmt.Sprintf("%d DROP DATABASE, 4 connections, no API server", n)),
	}
}

// writeResults replaces the managed-resource section of docs/benchmarks.md.
func writeResults(load string, upArgs []string, rows []benchutil.Row, rss map[string]float64) error {
	if len(rows) == 0 {
		return nil
	}
	var s strings.Builder
	s.WriteString(benchutil.Heading("Managed resources", "BenchmarkManaged", "test/bench/managed", load))
	fmt.Fprintf(&s, "A local cluster (`strata up --subsystems provider-nop,provider-sql%s`); N resources created in one burst by %d workers\n", benchutil.ExtraFlags(upArgs), benchutil.Workers)
	fmt.Fprintf(&s, "(a client that is not throttled), until every one is `Ready`; then all deleted until gone. Lower bound for NopResources:\n")
	fmt.Fprintf(&s, "the same API server, in the same run, creating (deleting) N ConfigMaps through the unthrottled client (QPS %d, burst %d,\n", benchutil.UnthrottledQPS, benchutil.UnthrottledBurst)
	fmt.Fprintf(&s, "%d workers). For PostgreSQL Databases the lower bound is PostgreSQL running the same statements directly. API writes\n", benchutil.Workers)
	fmt.Fprintf(&s, "and CPU seconds are counted as for the composition benchmark (all clients, from the start of a step until no write\n")
	fmt.Fprintf(&s, "arrived for 2 s; node and lease heartbeats left out).\n\n")
	s.WriteString(benchutil.Table(rows))
	s.WriteString("\n")
	for _, k := range []string{"NopResource", "PostgreSQL Database"} {
		if v, ok := rss[k]; ok {
			fmt.Fprintf(&s, "- Manager peak RSS during the %s run: %.0f MiB (VmHWM of the `strata up` process, which runs the manager; reset before the run).\n", k, v)
		}
	}
	for _, r := range rows {
		if r.Step == "NopResource create → all Ready" {
			fmt.Fprintf(&s, "\nIssue 15's targets, N=%d (reported, never asserted):\n\n", r.N)
			s.WriteString(benchutil.Target("NopResources Ready, time over the lower bound", r.Ratio(), 2, "%.2f×"))
			s.WriteString(benchutil.Target("API writes per NopResource beyond the user's create", r.Beyond(), 3, "%.1f"))
		}
	}
	s.WriteString("\nWrites by verb and resource:\n\n")
	s.WriteString(benchutil.WritesTable(rows))
	return benchutil.WriteSection("managed-bench", s.String())
}
