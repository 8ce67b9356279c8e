package composition

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/test/bench/benchutil"
)

// poll is how often a benchmark looks at its trackers (in memory).
const poll = 20 * time.Millisecond

// ScaleEnv, set to 1, adds the 5000-claim scaling run.
const ScaleEnv = "STRATA_BENCH_SCALE"

// scaleN is the size of the scaling run.
const scaleN = 5000

// benchXRD is the XRD of a bench composite kind and its claim, each with one
// string parameter, spec.value.
func benchXRD(kind, plural, claimKind, claimPlural string) string {
	return fmt.Sprintf(`
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: %[2]s.bench.strata.dev}
spec:
  group: bench.strata.dev
  names: {kind: %[1]s, plural: %[2]s}
  claimNames: {kind: %[3]s, plural: %[4]s}
  versions:
  - name: v1alpha1
    served: true
    referenceable: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              value: {type: string}
`, kind, plural, claimKind, claimPlural)
}

var xrdYAML = benchXRD("XBench", "xbenches", "Bench", "benches")

// Three composed ConfigMaps: two independent, one that waits for the first.
const compositionYAML = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: bench}
spec:
  compositeTypeRef: {apiVersion: bench.strata.dev/v1alpha1, kind: XBench}
  resources:
  - name: a
    template: {apiVersion: v1, kind: ConfigMap, data: {value: "${xr.spec.value}"}}
  - name: b
    template: {apiVersion: v1, kind: ConfigMap, data: {value: "${xr.spec.value}"}}
  - name: c
    template: {apiVersion: v1, kind: ConfigMap, data: {value: "${xr.spec.value}", after: "${a.metadata.name}"}}
`

// A Gate is a kind only the benchmark reports the readiness of: its
// spec.forProvider makes Strata wait for its Ready condition, as for a
// managed resource whose provider reports Ready when the cloud is done.
const gateCRDYAML = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gates.bench.strata.dev}
spec:
  group: bench.strata.dev
  scope: Namespaced
  names: {kind: Gate, plural: gates, listKind: GateList, singular: gate}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

var gatedXRDYAML = benchXRD("XGated", "xgateds", "Gated", "gateds")

const gatedCompositionYAML = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: gated}
spec:
  compositeTypeRef: {apiVersion: bench.strata.dev/v1alpha1, kind: XGated}
  resources:
  - name: config
    template: {apiVersion: v1, kind: ConfigMap, data: {value: "${xr.spec.value}"}}
  - name: gate
    template: {apiVersion: bench.strata.dev/v1alpha1, kind: Gate, spec: {forProvider: {value: "${xr.spec.value}"}}}
`

var (
	claimGVK = schema.GroupVersionKind{Group: "bench.strata.dev", Version: "v1alpha1", Kind: "Bench"}
	gatedGVK = schema.GroupVersionKind{Group: "bench.strata.dev", Version: "v1alpha1", Kind: "Gated"}
	gateGVK  = schema.GroupVersionKind{Group: "bench.strata.dev", Version: "v1alpha1", Kind: "Gate"}
)

type cluster struct {
	*benchutil.Up
	c client.Client // unthrottled
}

func apply(b *testing.B, c client.Client, y string) {
	b.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		b.Fatal(err)
	}
	if err := c.Patch(context.Background(), u, client.Apply, client.FieldOwner("bench"), client.ForceOwnership); err != nil {
		b.Fatalf("cannot apply %s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

func list(ctx context.Context, c client.Client, gvk schema.GroupVersionKind, opts ...client.ListOption) (*unstructured.UnstructuredList, error) {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	return l, c.List(ctx, l, opts...)
}

func waitServed(b *testing.B, c client.Client, gvk schema.GroupVersionKind, composition string) {
	ctx := context.Background()
	benchutil.WaitUntil(b, 2*time.Minute, gvk.Kind+" served and its composition valid", func() (bool, string) {
		if _, err := list(ctx, c, gvk); err != nil {
			return false, err.Error()
		}
		if composition == "" {
			return true, ""
		}
		comp := &unstructured.Unstructured{}
		comp.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.strata.dev", Version: "v1alpha1", Kind: "Composition"})
		if err := c.Get(ctx, client.ObjectKey{Name: composition}, comp); err != nil {
			return false, err.Error()
		}
		rev, _, _ := unstructured.NestedInt64(comp.Object, "status", "latestRevision")
		return rev > 0, "no revision yet"
	})
}

// report is everything one run of BenchmarkComposition measured.
type report struct {
	load    string
	rows    []benchutil.Row
	rss     map[int]float64 // manager peak RSS by N
	kroRSS  float64
	props   []*propagation
	scaling []string
	// scalingRatios are time per claim at a larger N over the first N.
	scalingRatios []struct {
		what  string
		ratio float64
	}
}

func BenchmarkComposition(b *testing.B) {
	rep := &report{load: benchutil.LoadAverage(), rss: map[int]float64{}}
	up := benchutil.StartUp(b, "composition")
	cl := &cluster{Up: up, c: up.Unthrottled(b)}
	for _, y := range []string{xrdYAML, compositionYAML, gateCRDYAML, gatedXRDYAML, gatedCompositionYAML, appXRDYAML, appCompositionYAML} {
		apply(b, cl.c, y)
	}
	waitServed(b, cl.c, claimGVK, "bench")
	waitServed(b, cl.c, gatedGVK, "gated")
	waitServed(b, cl.c, appGVK, "app")

	sizes := benchutil.Sizes("1000")
	if os.Getenv(ScaleEnv) == "1" {
		sizes = append(sizes, scaleN)
	}
	perClaim := map[int]float64{}
	runSize := func(n int) {
		b.Run(fmt.Sprintf("Strata/N=%d", n), func(b *testing.B) {
			cl.SettleWithin(b, 5*time.Minute)
			lb := cl.MeasureLowerBound(b, fmt.Sprintf("lower-bound-%d", n), 4*n)
			cl.ResetPeakRSS()
			rows := runStrata(b, cl, n, lb)
			rep.rss[n] = cl.PeakRSSMiB()
			for _, r := range rows {
				r.Print()
			}
			fmt.Printf("Strata N=%d: manager peak RSS %.0f MiB (VmHWM of the strata up process, which runs the manager)\n", n, rep.rss[n])
			rep.rows = append(rep.rows, rows...)
			perClaim[n] = rows[0].Phase.Took.Seconds() / float64(n)
			b.ReportMetric(rows[0].Phase.Took.Seconds(), "ready-s")
			b.ReportMetric(rows[0].Ratio(), "ready-x-lowerbound")
			b.ReportMetric(rows[0].Phase.Per(n), "writes/claim")
		})
	}
	// The 5000-claim run comes last, so the readiness and kro runs that
	// compare with N=1000 run on the cluster N=1000 ran on, not one that has
	// held 5000 claims' objects.
	runSize(sizes[0])

	// Readiness is measured with Gates (a kind the benchmark flips Ready)
	// and with what the issue names, Deployments whose pod starts (made
	// Available by kube-controller-manager once kwok runs the pod); each
	// twice: all at once (what the engine does when the API server is
	// saturated, by the flips or the pods, and by its own reaction), and
	// spread at a steady rate, as pods that start one after another (the
	// latency of one claim).
	for _, kind := range []struct {
		name string
		run  func(*testing.B, *cluster, int, int) *propagation
	}{{"gates", runPropagation}, {"deployments", runDeploymentPropagation}} {
		for _, rate := range []int{0, flipRate} {
			name := fmt.Sprintf("Readiness/N=%d/%s", sizes[0], kind.name)
			if rate > 0 {
				name += fmt.Sprintf("/rate=%d", rate)
			}
			b.Run(name, func(b *testing.B) {
				p := kind.run(b, cl, sizes[0], rate)
				rep.props = append(rep.props, p)
				fmt.Println(p.line())
				b.ReportMetric(p.p50.Seconds(), "p50-s")
				b.ReportMetric(p.p99.Seconds(), "p99-s")
			})
		}
	}
	if os.Getenv(KroEnv) != "0" {
		b.Run(fmt.Sprintf("kro/N=%d", sizes[0]), func(b *testing.B) {
			n := sizes[0]
			cl.SettleWithin(b, 5*time.Minute)
			lb := cl.MeasureLowerBound(b, fmt.Sprintf("lower-bound-kro-%d", n), 4*n)
			rows, rss := runKro(b, cl, n, lb)
			rep.kroRSS = rss
			for _, r := range rows {
				r.Print()
			}
			rep.rows = append(rep.rows, rows...)
			b.ReportMetric(rows[0].Phase.Took.Seconds(), "ready-s")
			b.ReportMetric(rows[0].Phase.Per(n), "writes/instance")
		})
	}
	for _, n := range sizes[1:] {
		runSize(n)
	}
	if len(sizes) > 1 {
		base := sizes[0]
		for _, n := range sizes[1:] {
			if perClaim[base] > 0 && perClaim[n] > 0 {
				line := fmt.Sprintf("time per claim at N=%d: %.1f ms, at N=%d: %.1f ms (%.2f×)", base, 1000*perClaim[base], n, 1000*perClaim[n], perClaim[n]/perClaim[base])
				fmt.Println("Strata scaling: " + line)
				rep.scaling = append(rep.scaling, line)
				rep.scalingRatios = append(rep.scalingRatios, struct {
					what  string
					ratio float64
				}{fmt.Sprintf("time per claim at N=%d over N=%d", n, base), perClaim[n] / perClaim[base]})
			}
		}
	}
	if err := rep.write(up.Args); err != nil {
		b.Error(err)
	}
}

// claims is the benchmark's view of the claims (or kro instances) in one
// namespace.
type claims struct {
	c   client.Client
	gvk schema.GroupVersionKind
	ns  string
	// composed selects the composed ConfigMaps.
	composed func(cm *unstructured.Unstructured) bool
	// labels, when set, gives claim i its labels (a shard's key).
	labels func(i int) map[string]string
}

func (cs claims) object(i int) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(cs.gvk)
	u.SetNamespace(cs.ns)
	u.SetName(fmt.Sprintf("c-%d", i))
	return u
}

// run creates n claims (32 workers, one burst) until all are Ready, updates
// every one until all composed objects have the new value, and deletes them
// until claims and composed objects are gone, measuring each step.
func (cs claims) run(b *testing.B, up *benchutil.Up, who string, n int, lb benchutil.LowerBound) []benchutil.Row {
	ctx := context.Background()
	if err := cs.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cs.ns}}); err != nil {
		b.Fatal(err)
	}
	unit := "claim"
	if !strings.HasPrefix(who, "Strata") {
		unit = "instance"
	}
	row := func(step string, p, bound benchutil.Phase, what string) benchutil.Row {
		return benchutil.Row{Step: step, Who: who, N: n, Unit: unit, Phase: p, Bound: bound, BoundWhat: what, Own: n}
	}
	claimsT := up.Track(b, cs.gvk, cs.ns, nil)
	defer claimsT.Stop()
	cmsT := up.Track(b, corev1.SchemeGroupVersion.WithKind("ConfigMap"), cs.ns, nil)
	defer cmsT.Stop()
	composedWith := func(value string) func(u *unstructured.Unstructured) bool {
		return func(u *unstructured.Unstructured) bool {
			v, _, _ := unstructured.NestedString(u.Object, "data", "value")
			return cs.composed(u) && (value == "" || v == value)
		}
	}
	var rows []benchutil.Row
	create := up.Measure(b, func() {
		benchutil.Parallel(b, n, benchutil.Workers, func(i int) error {
			u := cs.object(i)
			u.Object["spec"] = map[string]any{"value": "v1"}
			if cs.labels != nil {
				u.SetLabels(cs.labels(i))
			}
			return cs.c.Create(ctx, u)
		})
		benchutil.WaitUntilEvery(b, 30*time.Minute, poll, who+" claims Ready", func() (bool, string) {
			ready, _ := claimsT.Count(benchutil.IsReady)
			return ready == n, fmt.Sprintf("%d/%d ready", ready, n)
		})
	})
	rows = append(rows, row("create → all Ready", create, lb.Create, fmt.Sprintf("%d ConfigMap creates, unthrottled", lb.N)))

	update := up.Measure(b, func() {
		benchutil.Parallel(b, n, benchutil.Workers, func(i int) error {
			return cs.c.Patch(ctx, cs.object(i), client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"value":"v2"}}`)))
		})
		benchutil.WaitUntilEvery(b, 30*time.Minute, poll, who+" update applied", func() (bool, string) {
			done, _ := cmsT.Count(composedWith("v2"))
			return done == 3*n, fmt.Sprintf("%d/%d updated", done, 3*n)
		})
	})
	rows = append(rows, row("update → applied to all composed objects", update, lb.Patch, fmt.Sprintf("%d ConfigMap patches, unthrottled", lb.N)))

	del := up.Measure(b, func() {
		benchutil.Parallel(b, n, benchutil.Workers, func(i int) error { return client.IgnoreNotFound(cs.c.Delete(ctx, cs.object(i))) })
		benchutil.WaitUntilEvery(b, 30*time.Minute, poll, who+" claims deleted", func() (bool, string) {
			_, claims := claimsT.Count(nil)
			cms, _ := cmsT.Count(composedWith(""))
			return claims == 0 && cms == 0, fmt.Sprintf("%d claims, %d composed objects left", claims, cms)
		})
	})
	rows = append(rows, row("delete → all gone", del, lb.Delete, fmt.Sprintf("%d ConfigMap deletes, unthrottled", lb.N)))
	return rows
}

func runStrata(b *testing.B, cl *cluster, n int, lb benchutil.LowerBound) []benchutil.Row {
	cs := claims{c: cl.c, gvk: claimGVK, ns: fmt.Sprintf("claims-%d", n), composed: func(cm *unstructured.Unstructured) bool {
		_, ok := cm.GetLabels()["strata.dev/composite"]
		return ok
	}}
	return cs.run(b, cl.Up, "Strata", n, lb)
}

// propagation is how long a claim took to become Ready after the last of
// its composed objects did.
type propagation struct {
	n             int
	p50, p99, max time.Duration
	flip          time.Duration // how long flipping all gates (creating all claims) took
	rate          int           // flips (claim creates) per second; 0: all at once
	phase         benchutil.Phase
	// deployments is set for the run whose composed object is a Deployment
	// whose pod starts (deployready_test.go), not a Gate the benchmark flips.
	deployments *deploymentRun
}

// flipRate is the paced readiness run's Gate flips per second.
const flipRate = 50

// how says how the Gates were flipped.
func (p *propagation) how() string {
	if p.deployments != nil {
		return p.deployments.how(p)
	}
	if p.rate == 0 {
		return fmt.Sprintf("all %d Gates flipped at once by %d workers, within %.1f s", p.n, benchutil.Workers, p.flip.Seconds())
	}
	return fmt.Sprintf("Gates flipped one after another, %d per second (%.1f s)", p.rate, p.flip.Seconds())
}

func (p *propagation) line() string {
	if p.deployments != nil {
		return p.deployments.line(p)
	}
	return fmt.Sprintf("Strata readiness propagation, %d claims: p50 %.3fs, p99 %.3fs, max %.3fs after the composed Gate turned Ready (%s); %.1f API writes per claim",
		p.n, p.p50.Seconds(), p.p99.Seconds(), p.max.Seconds(), p.how(), p.phase.Per(p.n))
}

// runPropagation creates n Gated claims, each composing a ConfigMap and a
// Gate that is not Ready, waits until the engine has done all it can, then
// sets every Gate's Ready condition (32 workers, unthrottled; all at once,
// or rate per second) and measures, per claim, the time from its Gate's
// status write returning to a watch on the claims seeing it Ready.
func runPropagation(b *testing.B, cl *cluster, n, rate int) *propagation {
	ctx := context.Background()
	ns := fmt.Sprintf("gated-%d-%d", n, rate)
	if err := cl.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	cs := claims{c: cl.c, gvk: gatedGVK, ns: ns}
	benchutil.Parallel(b, n, benchutil.Workers, func(i int) error {
		u := cs.object(i)
		u.Object["spec"] = map[string]any{"value": "v1"}
		return cl.c.Create(ctx, u)
	})
	gatesT := cl.Track(b, gateGVK, ns, nil)
	defer gatesT.Stop()
	benchutil.WaitUntil(b, 30*time.Minute, "Gates composed", func() (bool, string) {
		got, _ := gatesT.Count(func(g *unstructured.Unstructured) bool { return g.GetLabels()["strata.dev/claim-name"] != "" })
		return got == n, fmt.Sprintf("%d/%d Gates", got, n)
	})
	gates := map[string]string{} // claim name → its Gate's name
	gatesT.Each(func(g *unstructured.Unstructured) { gates[g.GetLabels()["strata.dev/claim-name"]] = g.GetName() })
	// Let the engine finish what it does for not-yet-Ready claims.
	cl.Settle(b)

	var mu sync.Mutex
	flipped := map[string]time.Time{}
	ready := benchutil.NewFirstMatch(benchutil.IsReady)
	claimsT := cl.Track(b, gatedGVK, ns, ready.Observe)
	defer claimsT.Stop()
	if ready, _ := claimsT.Count(benchutil.IsReady); ready != 0 {
		b.Fatalf("%d claims Ready before their Gates are", ready)
	}
	p := &propagation{n: n, rate: rate}
	names := make([]string, 0, n)
	for c := range gates {
		names = append(names, c)
	}
	sort.Strings(names)
	p.phase = cl.Measure(b, func() {
		p.flip = paced(b, n, rate, func(i int) error {
			g := &unstructured.Unstructured{}
			g.SetGroupVersionKind(gateGVK)
			g.SetNamespace(ns)
			g.SetName(gates[names[i]])
			now := metav1.Now().UTC().Format(time.RFC3339)
			patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Available","message":"the benchmark says so","lastTransitionTime":%q}]}}`, now)
			if err := cl.c.Status().Patch(ctx, g, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
				return err
			}
			mu.Lock()
			flipped[names[i]] = time.Now()
			mu.Unlock()
			return nil
		})
		benchutil.WaitUntilEvery(b, 10*time.Minute, poll, "Gated claims Ready", func() (bool, string) {
			r := ready.Len()
			return r == n, fmt.Sprintf("%d/%d Ready", r, n)
		})
	})
	var lat []float64
	mu.Lock()
	for c, at := range flipped {
		readyAt, _ := ready.At(c)
		lat = append(lat, readyAt.Sub(at).Seconds())
	}
	mu.Unlock()
	sort.Float64s(lat)
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	p.p50, p.p99, p.max = sec(benchutil.Percentile(lat, 50)), sec(benchutil.Percentile(lat, 99)), sec(benchutil.Percentile(lat, 100))
	// The next benchmark starts once Strata has deleted these claims (and
	// their XRs, ConfigMaps and Gates): a kro run or a lower bound measured
	// during that deletion would share the API server with it.
	benchutil.Parallel(b, n, benchutil.Workers, func(i int) error { return client.IgnoreNotFound(cl.c.Delete(ctx, cs.object(i))) })
	benchutil.WaitUntil(b, 10*time.Minute, "Gated claims deleted", func() (bool, string) {
		_, left := claimsT.Count(nil)
		return left == 0, fmt.Sprintf("%d claims left", left)
	})
	cl.SettleWithin(b, 5*time.Minute)
	return p
}

// write replaces the composition section of docs/benchmarks.md.
func (r *report) write(upArgs []string) error {
	if len(r.rows) == 0 {
		return nil
	}
	// Strata's rows first, by size, in the order measured; then kro's.
	rows := append([]benchutil.Row(nil), r.rows...)
	sort.SliceStable(rows, func(i, j int) bool {
		return rows[i].Who == "Strata" && rows[j].Who != "Strata" || rows[i].Who == rows[j].Who && rows[i].N < rows[j].N
	})
	var s strings.Builder
	fmt.Fprintf(&s, "## Composition engine\n\n")
	fmt.Fprintf(&s, "`make bench` (`BenchmarkComposition` in `test/bench/composition`), written by the benchmark on %s.\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&s, "Machine: %s. One run (`go test -bench`, one iteration per size).\n\n", benchutil.Machine(r.load))
	fmt.Fprintf(&s, "A local cluster (`strata up --subsystems composition%s`), one Composition of three ConfigMaps (two independent, one that waits for\n", benchutil.ExtraFlags(upArgs))
	fmt.Fprintf(&s, "the first); N claims created in one burst by %d workers; then every claim updated; then every claim deleted.\n", benchutil.Workers)
	fmt.Fprintf(&s, "The lower bound is the same API server, in the same run, creating (patching, deleting) 4N ConfigMaps\n")
	fmt.Fprintf(&s, "through a client that is not throttled (QPS %d, burst %d, %d workers). API writes are the API server's\n", benchutil.UnthrottledQPS, benchutil.UnthrottledBurst, benchutil.Workers)
	fmt.Fprintf(&s, "`apiserver_request_total` for POST, PUT, PATCH, APPLY, DELETE and DELETECOLLECTION, diffed from the start of a step\n")
	fmt.Fprintf(&s, "until no write arrived for 2 s, from every client (the benchmark's own N requests included; node and lease\n")
	fmt.Fprintf(&s, "heartbeats left out). CPU seconds are the API server's `process_cpu_seconds_total` and `/proc/<pid>/stat` of\n")
	fmt.Fprintf(&s, "etcd and the controller (the `strata up` process, which runs the manager; or kro's process) over the same span.\n")
	fmt.Fprintf(&s, "kro %s runs in the same cluster after Strata's first size (and before the 5000-claim run, when there is one), with `%s`.\n\n", kroVersion, strings.Join(kroArgs, " "))
	s.WriteString(benchutil.Table(rows))
	s.WriteString("\n")
	for _, n := range sortedKeys(r.rss) {
		fmt.Fprintf(&s, "- Strata manager peak RSS at N=%d: %.0f MiB (VmHWM of the `strata up` process, which runs the manager; reset before the run; etcd and the API server are other processes).\n", n, r.rss[n])
	}
	if r.kroRSS > 0 {
		fmt.Fprintf(&s, "- kro peak RSS: %.0f MiB (VmHWM of its process).\n", r.kroRSS)
	}
	for _, l := range r.scaling {
		fmt.Fprintf(&s, "- Scaling: %s.\n", l)
	}
	for _, p := range r.props {
		if p.deployments != nil {
			s.WriteString(p.deployments.section(p))
			continue
		}
		fmt.Fprintf(&s, "- Readiness propagation: %d claims, each composing a ConfigMap and a Gate (a bench kind with `spec.forProvider`, so Strata waits\n", p.n)
		fmt.Fprintf(&s, "  for its Ready condition). Once the engine had settled, the benchmark set every Gate's Ready condition (%s);\n", p.how())
		fmt.Fprintf(&s, "  per claim, the time from its Gate's status write returning to a watch seeing the claim Ready: p50 %.3f s, p99 %.3f s, max %.3f s;\n", p.p50.Seconds(), p.p99.Seconds(), p.max.Seconds())
		fmt.Fprintf(&s, "  %.1f API writes per claim (the benchmark's Gate status write included).\n", p.phase.Per(p.n))
	}
	s.WriteString(r.targets())
	s.WriteString("\nWrites by verb and resource:\n\n")
	s.WriteString(benchutil.WritesTable(rows))
	return benchutil.WriteSection("composition-bench", s.String())
}

func sortedKeys(m map[int]float64) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// targets compares this run with issue 15's targets for Strata (the first
// size run).
func (r *report) targets() string {
	var s strings.Builder
	first := map[string]benchutil.Row{}
	for _, row := range r.rows {
		if row.Who != "Strata" {
			continue
		}
		if _, ok := first[row.Step]; !ok {
			first[row.Step] = row
		}
	}
	create, ok := first["create → all Ready"]
	if !ok {
		return ""
	}
	fmt.Fprintf(&s, "\nIssue 15's targets, N=%d (reported, never asserted):\n\n", create.N)
	s.WriteString(benchutil.Target("create → all Ready, time over the lower bound", create.Ratio(), 1.5, "%.2f×"))
	if u, ok := first["update → applied to all composed objects"]; ok {
		s.WriteString(benchutil.Target("update → applied, time over the lower bound", u.Ratio(), 1.5, "%.2f×"))
	}
	if d, ok := first["delete → all gone"]; ok {
		s.WriteString(benchutil.Target("delete → all gone, time over the lower bound", d.Ratio(), 1.5, "%.2f×"))
	}
	s.WriteString(benchutil.Target("API writes per claim on create beyond the user's own, events included", create.Beyond(), 8, "%.1f"))
	if u, ok := first["update → applied to all composed objects"]; ok {
		s.WriteString(benchutil.Target("API writes per claim on update beyond the user's own", u.Beyond(), 5, "%.1f"))
	}
	if v, ok := r.rss[create.N]; ok {
		s.WriteString(benchutil.Target("manager peak RSS (MiB)", v, 300, "%.0f"))
	}
	for _, p := range r.props {
		what := "all Gates at once"
		switch {
		case p.deployments != nil && p.rate > 0:
			what = fmt.Sprintf("Deployments whose pods start, claims created %d per second", p.rate)
		case p.deployments != nil:
			what = "Deployments whose pods start, claims created at once"
		case p.rate > 0:
			what = fmt.Sprintf("%d Gates per second", p.rate)
		}
		s.WriteString(benchutil.Target(fmt.Sprintf("readiness propagation p99 over %d claims, %s (s)", p.n, what), p.p99.Seconds(), 1, "%.3f"))
	}
	for _, l := range r.scalingRatios {
		s.WriteString(benchutil.Target(l.what, l.ratio, 1.2, "%.2f×"))
	}
	return s.String()
}

// paced runs fn for 0..n-1 on benchutil.Workers workers, all at once when
// rate is 0, else starting rate of them a second, and returns how long that
// took.
func paced(b *testing.B, n, rate int, fn func(i int) error) time.Duration {
	start := time.Now()
	benchutil.Parallel(b, n, benchutil.Workers, func(i int) error {
		if rate > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		}
		return fn(i)
	})
	return time.Since(start)
}
