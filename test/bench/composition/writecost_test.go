package composition

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/test/bench/benchutil"
)

// costGroup is where BenchmarkWriteCost copies the claim's and the XR's
// CRDs: no controller watches it, so the only writes there are the
// benchmark's.
const costGroup = "cost.bench.strata.dev"

// BenchmarkWriteCost makes costN writes of each kind per round, in
// costRounds rounds, then runs costClaims real claims.
const (
	costN      = 2000
	costRounds = 2
	costClaims = 1000
)

// writeKind is one kind of write a claim costs the API server, replayed
// costN times from the shape of what Strata really wrote.
type writeKind struct {
	name string
	// namespace, when set, is created before the write (and prepare).
	namespace string
	// prepare (optional) makes what the write needs (the object it
	// patches), outside the measured span.
	prepare func(i int) error
	write   func(i int) error
	// create and update are how often a claim's create and update make
	// this write.
	create, update int
	// read marks a request that reads: it is counted apart from the writes.
	read bool
}

// costRow is what one write kind cost.
type costRow struct {
	writeKind
	// apiMS and etcdMS are CPU per write, the mean of the rounds.
	apiMS, etcdMS, unitsOfCM float64
	wallMS                   float64   // wall time per write (32 workers)
	rounds                   []float64 // apiMS of each round
}

// BenchmarkWriteCost measures what each kind of write a claim makes costs the
// API server, against the lower bound's plain ConfigMap create. It composes
// one real claim, copies the claim's and the XR's CRDs to a group no
// controller watches, and replays each of Strata's writes (the shapes it
// really wrote: the server-side apply of a composed ConfigMap and of the XR,
// the claim's and the XR's status merge patches, the claim's finalizer patch,
// the event) costN times with the unthrottled client. It reports the API
// server's and etcd's CPU per write, and the floor this puts under the
// composition benchmark's ratio: the API server CPU of a claim's writes over
// that of the lower bound's four creates.
func BenchmarkWriteCost(b *testing.B) {
	load := benchutil.LoadAverage()
	up := benchutil.StartUp(b, "composition")
	c := up.Unthrottled(b)
	ctx := context.Background()
	for _, y := range []string{xrdYAML, compositionYAML} {
		apply(b, c, y)
	}
	waitServed(b, c, claimGVK, "bench")

	probe := composeProbe(b, up, c)
	for _, plural := range []string{"benches", "xbenches"} {
		copyCRD(b, c, plural+".bench.strata.dev")
	}
	costClaim := schema.GroupVersionKind{Group: costGroup, Version: "v1alpha1", Kind: "Bench"}
	costXR := schema.GroupVersionKind{Group: costGroup, Version: "v1alpha1", Kind: "XBench"}
	waitServed(b, c, costClaim, "")
	waitServed(b, c, costXR, "")

	idle := idleRate(b, up)
	// Two rounds, the second in reverse order, so that what the API server
	// holds by then (more objects, a bigger heap) weighs on every kind alike.
	var rows []costRow
	for round := range costRounds {
		kinds := probe.kinds(c, costClaim, costXR, round)
		order := make([]int, len(kinds))
		for i := range order {
			order[i] = i
			if round%2 == 1 {
				order[i] = len(kinds) - 1 - i
			}
		}
		if round == 0 {
			rows = make([]costRow, len(kinds))
		}
		for _, i := range order {
			k := kinds[i]
			if k.namespace != "" {
				if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k.namespace}}); err != nil {
					b.Fatal(err)
				}
			}
			if k.prepare != nil {
				benchutil.Parallel(b, costN, benchutil.Workers, k.prepare)
			}
			// The writes are synchronous: what they cost is spent when the
			// last returns. Snapshots right before and after leave out the
			// idle time (and the metrics scrapes) of waiting for quiet.
			up.Settle(b)
			before := up.Snapshot(b)
			stopProfile := up.Profile(b, fmt.Sprintf("%d-%s", round+1, k.name))
			benchutil.Parallel(b, costN, benchutil.Workers, k.write)
			p := up.Snapshot(b).Sub(before)
			stopProfile()
			api := 1000 * (p.APIServerCPU - idle.api*p.Took.Seconds()) / costN
			etcd := 1000 * (p.EtcdCPU - idle.etcd*p.Took.Seconds()) / costN
			fmt.Printf("write cost, round %d: %s: API server %.2f ms CPU, etcd %.2f ms CPU, %.2f ms wall per write (%d workers); %.2f API writes per call (%s)\n",
				round+1, k.name, api, etcd, 1000*p.Took.Seconds()/costN, benchutil.Workers, p.Writes.Total()/costN, p.Writes)
			r := &rows[i]
			r.writeKind = k
			r.rounds = append(r.rounds, api)
			r.apiMS += api / costRounds
			r.etcdMS += etcd / costRounds
			r.wallMS += 1000 * p.Took.Seconds() / costN / costRounds
		}
	}
	unit := rows[0].apiMS
	for i := range rows {
		rows[i].unitsOfCM = rows[i].apiMS / unit
	}
	// The real thing in the same cluster: how much of what a claim costs
	// the API server its writes explain, and how far the measured ratio is
	// from the floor they set.
	n := costClaims
	lb := up.MeasureLowerBound(b, "cost-lower-bound", 4*n)
	measured := runStrata(b, &cluster{Up: up, c: c}, n, lb)
	rep := costReport{load: load, rows: rows, idle: idle, claims: measured}
	fmt.Println(rep.floor())
	fmt.Println(rep.measured())
	if err := benchutil.WriteSection("writecost-bench", rep.String()); err != nil {
		b.Error(err)
	}
}

// probe is one claim Strata composed: the objects whose shapes
// BenchmarkWriteCost replays.
type probe struct {
	claim, xr, cm, event *unstructured.Unstructured
	// cmManager and xrManager are the field managers Strata applied the
	// composed ConfigMap and the XR with.
	cmManager, xrManager string
}

// composeProbe creates one claim and waits until Strata has composed it and
// reported it Ready.
func composeProbe(b *testing.B, up *benchutil.Up, c client.Client) *probe {
	ctx := context.Background()
	ns := "cost-probe"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	cs := claims{c: c, gvk: claimGVK, ns: ns}
	claim := cs.object(0)
	claim.Object["spec"] = map[string]any{"value": "v1"}
	if err := c.Create(ctx, claim); err != nil {
		b.Fatal(err)
	}
	p := &probe{}
	benchutil.WaitUntil(b, 2*time.Minute, "the probe claim Ready, its XR and ConfigMaps composed", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(claim), claim); err != nil {
			return false, err.Error()
		}
		if !benchutil.IsReady(claim) {
			return false, "claim not Ready"
		}
		ref, _, _ := unstructured.NestedString(claim.Object, "status", "resourceRef", "name")
		xr := &unstructured.Unstructured{}
		xr.SetGroupVersionKind(schema.GroupVersionKind{Group: claimGVK.Group, Version: claimGVK.Version, Kind: "XBench"})
		if err := c.Get(ctx, client.ObjectKey{Name: ref}, xr); err != nil {
			return false, err.Error()
		}
		cms, err := list(ctx, c, corev1.SchemeGroupVersion.WithKind("ConfigMap"), client.InNamespace(ns), client.HasLabels{"strata.dev/composite"})
		if err != nil || len(cms.Items) != 3 {
			return false, fmt.Sprintf("composed ConfigMaps: %v", err)
		}
		evs, err := list(ctx, c, schema.GroupVersionKind{Group: "events.k8s.io", Version: "v1", Kind: "Event"}, client.InNamespace(ns))
		if err != nil || len(evs.Items) == 0 {
			return false, fmt.Sprintf("no event yet: %v", err)
		}
		p.claim, p.xr, p.cm, p.event = claim, xr, &cms.Items[0], &evs.Items[0]
		return true, ""
	})
	p.cmManager, p.xrManager = applyManager(p.cm), applyManager(p.xr)
	if p.cmManager == "" || p.xrManager == "" {
		b.Fatalf("the probe's ConfigMap or XR has no apply entry: %q %q", p.cmManager, p.xrManager)
	}
	return p
}

// applyManager is the field manager of o's apply entry ("" when none).
func applyManager(o *unstructured.Unstructured) string {
	for _, mf := range o.GetManagedFields() {
		if mf.Operation == metav1.ManagedFieldsOperationApply {
			return mf.Manager
		}
	}
	return ""
}

// copyCRD creates a copy of CRD name in costGroup.
func copyCRD(b *testing.B, c client.Client, name string) {
	ctx := context.Background()
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	if err := c.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
		b.Fatal(err)
	}
	cp := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": crd.GetAPIVersion(), "kind": crd.GetKind(), "spec": crd.Object["spec"],
	}}
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	cp.SetName(plural + "." + costGroup)
	if err := unstructured.SetNestedField(cp.Object, costGroup, "spec", "group"); err != nil {
		b.Fatal(err)
	}
	if err := c.Create(ctx, cp); err != nil {
		b.Fatal(err)
	}
}

// bare is o without what the API server sets (uid, resourceVersion,
// managedFields, owners, timestamps), named name in namespace ns, with gvk.
func bare(o *unstructured.Unstructured, gvk schema.GroupVersionKind, ns, name string) *unstructured.Unstructured {
	u := o.DeepCopy()
	u.SetGroupVersionKind(gvk)
	meta := map[string]any{"name": name}
	if ns != "" {
		meta["namespace"] = ns
	}
	for _, k := range []string{"labels", "annotations", "finalizers"} {
		if v, ok := o.Object["metadata"].(map[string]any)[k]; ok {
			meta[k] = v
		}
	}
	u.Object["metadata"] = meta
	delete(u.Object, "status")
	return u
}

func mergePatch(v any) client.Patch {
	data, _ := utiljson.Marshal(v)
	return client.RawPatch("application/merge-patch+json", data)
}

// kinds are the writes a claim makes, in the shapes of p, on copies in
// costGroup and in namespaces of their own.
func (p *probe) kinds(c client.Client, costClaim, costXR schema.GroupVersionKind, round int) []writeKind {
	ctx := context.Background()
	ns := func(k string) string { return fmt.Sprintf("cost-%s-%d", k, round) }
	name := func(i int) string { return fmt.Sprintf("o-%d", i) }
	cmGVK := corev1.SchemeGroupVersion.WithKind("ConfigMap")
	composed := func(k string, i int, value string) *unstructured.Unstructured {
		u := bare(p.cm, cmGVK, ns(k), name(i))
		_ = unstructured.SetNestedField(u.Object, value, "data", "value")
		return u
	}
	claimOf := func(k string, i int) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"value": "v1"}}}
		u.SetGroupVersionKind(costClaim)
		u.SetNamespace(ns(k))
		u.SetName(name(i))
		return u
	}
	xrOf := func(k string, i int, value string) *unstructured.Unstructured {
		u := bare(p.xr, costXR, "", fmt.Sprintf("%s-%d-%s", k, round, name(i)))
		_ = unstructured.SetNestedField(u.Object, value, "spec", "value")
		return u
	}
	// Each kind creates what it patches in prepare, so the measured span
	// holds only its own writes.
	newClaims := func(k string) func(i int) error {
		return func(i int) error { return c.Create(ctx, claimOf(k, i)) }
	}
	claimStatus := map[string]any{"status": p.claim.Object["status"]}
	claimMeta := map[string]any{"metadata": map[string]any{"finalizers": p.claim.GetFinalizers()}}
	xrStatus := map[string]any{"status": p.xr.Object["status"]}
	putXRs := make([]*unstructured.Unstructured, costN)
	evGVK := schema.GroupVersionKind{Group: "events.k8s.io", Version: "v1", Kind: "Event"}
	event := func(k string, i int) *unstructured.Unstructured {
		u := p.event.DeepCopy()
		for _, f := range []string{"uid", "resourceVersion", "managedFields", "creationTimestamp"} {
			unstructured.RemoveNestedField(u.Object, "metadata", f)
		}
		u.SetGroupVersionKind(evGVK)
		u.SetNamespace(ns(k))
		u.SetName(name(i))
		_ = unstructured.SetNestedField(u.Object, ns(k), "regarding", "namespace")
		return u
	}
	apply := func(u *unstructured.Unstructured, manager string) error {
		return c.Patch(ctx, u, client.Apply, client.FieldOwner(manager), client.ForceOwnership) //nolint:staticcheck // the same request Strata's kit/ssa makes
	}
	return []writeKind{
		{
			name:      "ConfigMap create (POST), the lower bound's write",
			namespace: ns("cm-post"),
			write: func(i int) error {
				return c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name(i), Namespace: ns("cm-post")}, Data: map[string]string{"value": "v1"}})
			},
		},
		{
			name:      "claim create (POST), the user's",
			namespace: ns("claim-post"),
			write:     newClaims("claim-post"),
			create:    1,
		},
		{
			name:      "claim finalizer (merge patch)",
			namespace: ns("claim-meta"),
			prepare:   newClaims("claim-meta"),
			write:     func(i int) error { return c.Patch(ctx, claimOf("claim-meta", i), mergePatch(claimMeta)) },
			create:    1,
		},
		{
			name:      "claim spec change (merge patch), the user's",
			namespace: ns("claim-spec"),
			prepare:   newClaims("claim-spec"),
			write: func(i int) error {
				return c.Patch(ctx, claimOf("claim-spec", i), mergePatch(map[string]any{"spec": map[string]any{"value": "v2"}}))
			},
			update: 1,
		},
		{
			name:      "claim status (merge patch of status)",
			namespace: ns("claim-status"),
			prepare:   newClaims("claim-status"),
			write: func(i int) error {
				return c.Status().Patch(ctx, claimOf("claim-status", i), mergePatch(claimStatus))
			},
			create: 1, update: 1,
		},
		{
			name:   "XR create (server-side apply)",
			write:  func(i int) error { return apply(xrOf("xr-apply", i, "v1"), p.xrManager) },
			create: 1,
		},
		{
			name:    "XR spec change (server-side apply)",
			prepare: func(i int) error { return apply(xrOf("xr-change", i, "v1"), p.xrManager) },
			write:   func(i int) error { return apply(xrOf("xr-change", i, "v2"), p.xrManager) },
			update:  1,
		},
		{
			name:    "XR status (merge patch of status)",
			prepare: func(i int) error { return apply(xrOf("xr-status", i, "v1"), p.xrManager) },
			write: func(i int) error {
				return c.Status().Patch(ctx, xrOf("xr-status", i, "v1"), mergePatch(xrStatus))
			},
			create: 1, update: 1,
		},
		// Alternatives Strata does not make, to compare the status write
		// with: the same status by PUT (the object as read, its
		// resourceVersion a lock) and by server-side apply.
		{
			name: "alternative: XR status (PUT of status)",
			prepare: func(i int) error {
				u := xrOf("xr-status-put", i, "v1")
				if err := apply(u, p.xrManager); err != nil {
					return err
				}
				putXRs[i] = u
				return nil
			},
			write: func(i int) error {
				u := putXRs[i]
				u.Object["status"] = runtime.DeepCopyJSONValue(xrStatus["status"])
				return c.Status().Update(ctx, u)
			},
		},
		{
			name:    "alternative: XR status (server-side apply of status)",
			prepare: func(i int) error { return apply(xrOf("xr-status-apply", i, "v1"), p.xrManager) },
			write: func(i int) error {
				u := &unstructured.Unstructured{Object: map[string]any{"status": runtime.DeepCopyJSONValue(xrStatus["status"])}}
				u.SetGroupVersionKind(costXR)
				u.SetName(xrOf("xr-status-apply", i, "v1").GetName())
				return c.Status().Patch(ctx, u, client.Apply, client.FieldOwner(p.xrManager+"-status"), client.ForceOwnership) //nolint:staticcheck // the request an applied status would make
			},
		},
		{
			name:      "composed ConfigMap create (server-side apply)",
			namespace: ns("cm-apply"),
			write: func(i int) error {
				return apply(composed("cm-apply", i, "v1"), p.cmManager)
			},
			create: 3,
		},
		{
			name:      "composed ConfigMap change (server-side apply)",
			namespace: ns("cm-change"),
			prepare: func(i int) error {
				return apply(composed("cm-change", i, "v1"), p.cmManager)
			},
			write:  func(i int) error { return apply(composed("cm-change", i, "v2"), p.cmManager) },
			update: 3,
		},
		// The live reads a claim's create makes: the composite engine asks
		// the API server (not its cache, which holds only what Strata
		// composed) whether each object it is about to create exists,
		// and the claim whether its XR does.
		{
			name:      "read: GET of an absent composed ConfigMap (404)",
			namespace: ns("cm-get"),
			write: func(i int) error {
				err := c.Get(ctx, client.ObjectKey{Namespace: ns("cm-get"), Name: name(i)}, &corev1.ConfigMap{})
				if apierrors.IsNotFound(err) {
					return nil
				}
				return fmt.Errorf("GET of an absent ConfigMap: %v, want NotFound", err)
			},
			create: 3, read: true,
		},
		{
			name: "read: GET of an absent XR (404)",
			write: func(i int) error {
				u := &unstructured.Unstructured{}
				u.SetGroupVersionKind(costXR)
				err := c.Get(ctx, client.ObjectKey{Name: fmt.Sprintf("xr-get-%d-%s", round, name(i))}, u)
				if apierrors.IsNotFound(err) {
					return nil
				}
				return fmt.Errorf("GET of an absent XR: %v, want NotFound", err)
			},
			create: 1, read: true,
		},
		{
			name:      "event (POST)",
			namespace: ns("event"),
			write: func(i int) error {
				return c.Create(ctx, event("event", i))
			},
			create: 1,
		},
	}
}

// idleCPU is the API server's and etcd's CPU per second with nothing
// written.
type idleCPU struct{ api, etcd float64 }

func idleRate(b *testing.B, up *benchutil.Up) idleCPU {
	before := up.Settle(b)
	time.Sleep(5 * time.Second)
	p := up.Snapshot(b).Sub(before)
	s := p.Took.Seconds()
	return idleCPU{api: p.APIServerCPU / s, etcd: p.EtcdCPU / s}
}

type costReport struct {
	load string
	rows []costRow
	idle idleCPU
	// claims are the composition benchmark's create, update and delete of
	// costClaims claims, run after the replay in the same cluster.
	claims []benchutil.Row
}

// measured compares the real claims with what their writes cost when
// replayed.
func (r costReport) measured() string {
	cms, _ := r.perClaim(false)
	ums, _ := r.perClaim(true)
	rms, nreads := r.readsPerClaim()
	create, update := r.claims[0], r.claims[1]
	per := func(row benchutil.Row) float64 { return 1000 * row.Phase.APIServerCPU / float64(row.N) }
	// How far the measured create is above the floor the claim's writes set
	// (their replayed CPU over 4 ConfigMap creates', the lower bound's
	// writes): what is left for the engine to take, whatever the API server
	// charges for each write. (The update's lower bound patches ConfigMaps,
	// which the replay does not measure, so it gets no such figure.)
	unit := r.fourCreatesMS()
	return fmt.Sprintf("%d real claims in the same cluster: create took %.1f s, %.1f× its lower bound (4000 ConfigMap creates, %.1f s), %.2f× the floor its writes set, "+
		"with %.1f ms API server CPU per claim (its writes replayed: %.1f ms; its %d live reads: %.1f ms), %.1f API reads (GET, LIST) per claim, %.1f ms etcd and %.1f ms manager CPU; "+
		"update took %.1f s, %.1f× its lower bound, %.1f ms API server CPU per claim (replayed: %.1f ms), %.1f reads per claim",
		create.N, create.Phase.Took.Seconds(), create.Ratio(), create.Bound.Took.Seconds(), create.Ratio()/(cms/unit),
		per(create), cms, nreads, rms, create.Phase.Reads/float64(create.N), 1000*create.Phase.EtcdCPU/float64(create.N), 1000*create.Phase.StrataCPU/float64(create.N),
		update.Phase.Took.Seconds(), update.Ratio(), per(update), ums, update.Phase.Reads/float64(update.N))
}

// perClaim is the API server's CPU (ms) of a claim's create or update
// writes, from the measured kinds.
func (r costReport) perClaim(update bool) (ms float64, writes int) {
	for _, row := range r.rows {
		n := row.create
		if update {
			n = row.update
		}
		if row.read {
			continue
		}
		ms += float64(n) * row.apiMS
		writes += n
	}
	return ms, writes
}

// readsPerClaim is the API server's CPU (ms) of a claim's live reads on
// create, from the measured reads.
func (r costReport) readsPerClaim() (ms float64, reads int) {
	for _, row := range r.rows {
		if row.read {
			ms += float64(row.create) * row.apiMS
			reads += row.create
		}
	}
	return ms, reads
}

// floor says what the writes alone put under the composition benchmark's
// ratios: a claim's writes' API server CPU over the lower bound's four.
func (r costReport) floor() string {
	unit := r.fourCreatesMS()
	cms, cw := r.perClaim(false)
	ums, uw := r.perClaim(true)
	return fmt.Sprintf("a claim's create (%d writes, the user's included) costs the API server %.1f ms CPU, %.1f× the lower bound's 4 ConfigMap creates (%.1f ms); an update (%d writes) %.1f ms, %.1f× 4 ConfigMap creates",
		cw, cms, cms/unit, unit, uw, ums, ums/unit)
}

// fourCreatesMS is the API server's CPU (ms) of the lower bound's writes for
// one claim: four ConfigMap creates (the first measured kind).
func (r costReport) fourCreatesMS() float64 { return 4 * r.rows[0].apiMS }

func (r costReport) String() string {
	var s strings.Builder
	s.WriteString(benchutil.Heading("API server cost of each write a claim makes", "BenchmarkWriteCost", "test/bench/composition", r.load))
	fmt.Fprintf(&s, "Each kind of write a claim makes, replayed %d times by %d workers of the unthrottled client (QPS %d) in a\n", costN, benchutil.Workers, benchutil.UnthrottledQPS)
	fmt.Fprintf(&s, "local cluster (`strata up --subsystems composition`), in the shape Strata wrote for one real claim of the composition benchmark\n")
	fmt.Fprintf(&s, "(its claim and XR CRDs copied to `%s`, which no controller watches; the composed ConfigMaps without their owner\n", costGroup)
	fmt.Fprintf(&s, "reference, which would point at the probe's XR); %d rounds, the second in reverse order.\n", costRounds)
	fmt.Fprintf(&s, "CPU is the API server's and etcd's from the first write's start to the last one's return, less their idle rate\n")
	fmt.Fprintf(&s, "(%.3f and %.3f CPU-s per second); a write that patches an object was given that object beforehand, unmeasured.\n\n", r.idle.api, r.idle.etcd)
	s.WriteString("| write | per claim create | per claim update | API server CPU per write (ms), mean (rounds) | × ConfigMap create | etcd CPU per write (ms) | wall per write, 32 workers (ms) |\n")
	s.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, row := range r.rows {
		rounds := make([]string, len(row.rounds))
		for i, v := range row.rounds {
			rounds[i] = fmt.Sprintf("%.2f", v)
		}
		fmt.Fprintf(&s, "| %s | %d | %d | %.2f (%s) | %.1f | %.2f | %.2f |\n", row.name, row.create, row.update, row.apiMS, strings.Join(rounds, ", "), row.unitsOfCM, row.etcdMS, row.wallMS)
	}
	fmt.Fprintf(&s, "\n- So %s.\n", r.floor())
	s.WriteString("  That is the ratio the composition benchmark would show if the API server's CPU were the only cost and it had both cores,\n")
	s.WriteString("  whatever the manager did: a floor that only fewer or cheaper writes lower.\n")
	fmt.Fprintf(&s, "- Measured: %s.\n", r.measured())
	s.WriteString("  The rest of the measured ratio is etcd's and the manager's CPU on the same two cores, and the API server's reads and watches.\n")
	return s.String()
}
