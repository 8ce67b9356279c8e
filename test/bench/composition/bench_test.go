package composition

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/internal/composition/controller"
	"github.com/strata-dev/strata/internal/testenv"
	"github.com/strata-dev/strata/test/bench/benchutil"
)

// workers is how many requests the benchmark client has in flight.
const workers = 32

const xrdYAML = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xbenches.bench.strata.dev}
spec:
  group: bench.strata.dev
  names: {kind: XBench, plural: xbenches}
  claimNames: {kind: Bench, plural: benches}
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
`

// Three composed objects: two independent, one that waits for the first.
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

var claimGVK = schema.GroupVersionKind{Group: "bench.strata.dev", Version: "v1alpha1", Kind: "Bench"}

type cluster struct {
	*benchutil.Up
	c client.Client
}

func startCluster(b *testing.B) *cluster {
	up := benchutil.StartUp(b, "composition")
	// The same client settings as the composition engine's.
	return &cluster{Up: up, c: up.Client(b, controller.DefaultClientLimit.QPS, controller.DefaultClientLimit.Burst)}
}

func (cl *cluster) apply(b *testing.B, y string) {
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		b.Fatal(err)
	}
	if err := cl.c.Patch(context.Background(), u, client.Apply, client.FieldOwner("bench"), client.ForceOwnership); err != nil {
		b.Fatal(err)
	}
}

type result struct {
	n                                  int
	plainCreate, plainUpdate           time.Duration
	claimCreate, claimUpdate, claimDel time.Duration
	rss                                float64
}

func BenchmarkComposition(b *testing.B) {
	cl := startCluster(b)
	cl.apply(b, xrdYAML)
	cl.apply(b, compositionYAML)
	ctx := context.Background()
	benchutil.WaitUntil(b, time.Minute, "Bench kind served and composition valid", func() (bool, string) {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(claimGVK.GroupVersion().WithKind("BenchList"))
		if err := cl.c.List(ctx, l); err != nil {
			return false, err.Error()
		}
		comp := &unstructured.Unstructured{}
		comp.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.strata.dev", Version: "v1alpha1", Kind: "Composition"})
		if err := cl.c.Get(ctx, client.ObjectKey{Name: "bench"}, comp); err != nil {
			return false, err.Error()
		}
		rev, _, _ := unstructured.NestedInt64(comp.Object, "status", "latestRevision")
		return rev > 0, "no revision yet"
	})
	var results []result
	for _, n := range benchutil.Sizes("100,1000") {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r := runOnce(b, cl, n, i)
				results = append(results, r)
				b.ReportMetric(r.plainCreate.Seconds(), "plain-create-s")
				b.ReportMetric(r.claimCreate.Seconds(), "ready-s")
				b.ReportMetric(r.claimCreate.Seconds()/r.plainCreate.Seconds(), "ready-x-lowerbound")
				b.ReportMetric(r.plainUpdate.Seconds(), "plain-update-s")
				b.ReportMetric(r.claimUpdate.Seconds(), "update-s")
				b.ReportMetric(r.claimDel.Seconds(), "delete-s")
				b.ReportMetric(r.rss, "peak-rss-MiB")
			}
		})
	}
	if err := writeResults(results); err != nil {
		b.Error(err)
	}
}

func runOnce(b *testing.B, cl *cluster, n, iter int) result {
	ctx := context.Background()
	r := result{n: n}
	plainNS := fmt.Sprintf("plain-%d-%d", n, iter)
	claimNS := fmt.Sprintf("claims-%d-%d", n, iter)
	for _, ns := range []string{plainNS, claimNS} {
		if err := cl.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
	}
	// Lower bound: the composed objects (three per claim) written directly.
	start := time.Now()
	benchutil.Parallel(b, 3*n, workers, func(i int) error {
		return cl.c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Namespace: plainNS}, Data: map[string]string{"value": "v1"}})
	})
	r.plainCreate = time.Since(start)
	start = time.Now()
	benchutil.Parallel(b, 3*n, workers, func(i int) error {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Namespace: plainNS}}
		return cl.c.Patch(ctx, cm, client.RawPatch("application/merge-patch+json", []byte(`{"data":{"value":"v2"}}`)))
	})
	r.plainUpdate = time.Since(start)

	claim := func(i int, value string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"value": value}}}
		u.SetGroupVersionKind(claimGVK)
		u.SetNamespace(claimNS)
		u.SetName(fmt.Sprintf("c-%d", i))
		return u
	}
	// A burst of claims, until every one is Ready.
	start = time.Now()
	benchutil.Parallel(b, n, workers, func(i int) error { return cl.c.Create(ctx, claim(i, "v1")) })
	benchutil.WaitUntil(b, 30*time.Minute, "claims ready", func() (bool, string) { return claimsReady(ctx, cl.c, claimNS, n) })
	r.claimCreate = time.Since(start)

	// Update every claim, until every composed object has the new value.
	start = time.Now()
	benchutil.Parallel(b, n, workers, func(i int) error {
		return cl.c.Patch(ctx, claim(i, ""), client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"value":"v2"}}`)))
	})
	benchutil.WaitUntil(b, 30*time.Minute, "update applied", func() (bool, string) {
		l := &corev1.ConfigMapList{}
		if err := cl.c.List(ctx, l, client.InNamespace(claimNS), client.HasLabels{"strata.dev/composite"}); err != nil {
			return false, err.Error()
		}
		done := 0
		for _, cm := range l.Items {
			if cm.Data["value"] == "v2" {
				done++
			}
		}
		return done == 3*n, fmt.Sprintf("%d/%d updated", done, 3*n)
	})
	r.claimUpdate = time.Since(start)

	// Delete every claim, until claims, composites and composed objects are gone.
	start = time.Now()
	benchutil.Parallel(b, n, workers, func(i int) error { return client.IgnoreNotFound(cl.c.Delete(ctx, claim(i, ""))) })
	benchutil.WaitUntil(b, 30*time.Minute, "claims deleted", func() (bool, string) {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(claimGVK.GroupVersion().WithKind("BenchList"))
		if err := cl.c.List(ctx, l, client.InNamespace(claimNS)); err != nil {
			return false, err.Error()
		}
		cms := &corev1.ConfigMapList{}
		if err := cl.c.List(ctx, cms, client.InNamespace(claimNS), client.HasLabels{"strata.dev/composite"}); err != nil {
			return false, err.Error()
		}
		return len(l.Items) == 0 && len(cms.Items) == 0, fmt.Sprintf("%d claims, %d objects left", len(l.Items), len(cms.Items))
	})
	r.claimDel = time.Since(start)
	r.rss = cl.PeakRSSMiB()
	return r
}

func claimsReady(ctx context.Context, c client.Client, ns string, n int) (bool, string) {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(claimGVK.GroupVersion().WithKind("BenchList"))
	if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
		return false, err.Error()
	}
	ready := 0
	for _, u := range l.Items {
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, cd := range conds {
			m, _ := cd.(map[string]any)
			if m["type"] == "Ready" && m["status"] == "True" {
				ready++
			}
		}
	}
	return ready == n, fmt.Sprintf("%d/%d ready", ready, n)
}

const (
	markStart = "<!-- composition-bench:start -->"
	markEnd   = "<!-- composition-bench:end -->"
)

// writeResults replaces the composition section of docs/benchmarks.md.
func writeResults(results []result) error {
	if len(results) == 0 {
		return nil
	}
	var s strings.Builder
	fmt.Fprintf(&s, "%s\n## Composition engine\n\n", markStart)
	fmt.Fprintf(&s, "`make bench` (`BenchmarkComposition` in `test/bench/composition`), written by the benchmark on %s.\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&s, "A local cluster (`strata up --subsystems composition`), one Composition of three ConfigMaps (two\n")
	fmt.Fprintf(&s, "independent, one that waits for the first), N claims created in one burst by %d workers; client QPS %g, burst %d for\n", workers, controller.DefaultClientLimit.QPS, controller.DefaultClientLimit.Burst)
	fmt.Fprintf(&s, "both the engine and the benchmark. The lower bound is the same API server creating (updating) the 3N\n")
	fmt.Fprintf(&s, "ConfigMaps directly with the same client settings. Peak RSS is the `strata up` process, manager included.\n\n")
	fmt.Fprintf(&s, "| N | lower bound create (s) | all claims Ready (s) | ratio | lower bound update (s) | update applied (s) | delete (s) | peak RSS (MiB) |\n")
	fmt.Fprintf(&s, "| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range results {
		fmt.Fprintf(&s, "| %d | %.1f | %.1f | %.1f× | %.1f | %.1f | %.1f | %.0f |\n", r.n, r.plainCreate.Seconds(), r.claimCreate.Seconds(),
			r.claimCreate.Seconds()/r.plainCreate.Seconds(), r.plainUpdate.Seconds(), r.claimUpdate.Seconds(), r.claimDel.Seconds(), r.rss)
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
