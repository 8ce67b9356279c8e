package composition

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/internal/testenv"
	"github.com/strata-dev/strata/test/bench/benchutil"
)

// KroEnv, set to 0, leaves kro out of the composition benchmark.
const KroEnv = "STRATA_BENCH_KRO"

// kroVersion is the kro release test/tools/kro pins.
const kroVersion = "v0.9.4"

// kroArgs run kro's controller with 16 workers for the instances and a
// client that is not throttled, metrics and probes off.
var kroArgs = []string{
	"--dynamic-controller-concurrent-reconciles=16",
	"--client-qps=5000",
	"--client-burst=10000",
	"--metrics-bind-address=0",
	"--health-probe-bind-address=0",
}

// The same workload as Strata's: three ConfigMaps per instance, two
// independent, one that waits for the first.
const rgdYAML = `
apiVersion: kro.run/v1alpha1
kind: ResourceGraphDefinition
metadata: {name: krobench}
spec:
  schema:
    apiVersion: v1alpha1
    kind: KroBench
    spec:
      value: string
  resources:
  - id: a
    template:
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: "${schema.metadata.name}-a", namespace: "${schema.metadata.namespace}"}
      data: {value: "${schema.spec.value}"}
  - id: b
    template:
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: "${schema.metadata.name}-b", namespace: "${schema.metadata.namespace}"}
      data: {value: "${schema.spec.value}"}
  - id: c
    template:
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: "${schema.metadata.name}-c", namespace: "${schema.metadata.namespace}"}
      data: {value: "${schema.spec.value}", after: "${a.metadata.name}"}
`

var kroGVK = schema.GroupVersionKind{Group: "kro.run", Version: "v1alpha1", Kind: "KroBench"}

// kroCRDs are the CRDs of the pinned kro module (its helm/crds folder), read
// from the module cache `make bench` filled when it built kro.
func kroCRDs(b *testing.B) []string {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/kubernetes-sigs/kro")
	cmd.Dir = filepath.Join(testenv.RepoRoot(), "test", "tools", "kro")
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("cannot find the kro module (run make bench): %v", err)
	}
	files, err := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "helm", "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		b.Fatalf("no kro CRDs in the kro module (%v)", err)
	}
	var docs []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range bytes.Split(data, []byte("\n---")) {
			if len(bytes.TrimSpace(d)) > 0 {
				docs = append(docs, string(d))
			}
		}
	}
	return docs
}

// runKro installs kro's CRDs, starts its controller, creates the RGD and
// runs the same workload as Strata's; it returns the rows and kro's peak RSS.
func runKro(b *testing.B, cl *cluster, n int, lb benchutil.LowerBound) ([]benchutil.Row, float64) {
	ctx := context.Background()
	for _, d := range kroCRDs(b) {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(d), &u.Object); err != nil {
			b.Fatal(err)
		}
		if err := cl.c.Patch(ctx, u, client.Apply, client.FieldOwner("bench"), client.ForceOwnership); err != nil {
			b.Fatalf("cannot install kro CRD %s: %v", u.GetName(), err)
		}
	}
	peer := cl.StartPeer(b, "controller", kroArgs...)
	defer peer.Stop()
	rgd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(rgdYAML), &rgd.Object); err != nil {
		b.Fatal(err)
	}
	// The CRDs were just created: retry until the API server serves them.
	benchutil.WaitUntil(b, time.Minute, "ResourceGraphDefinition created", func() (bool, string) {
		err := cl.c.Patch(ctx, rgd.DeepCopy(), client.Apply, client.FieldOwner("bench"), client.ForceOwnership)
		return err == nil, fmt.Sprint(err)
	})
	benchutil.WaitUntil(b, 3*time.Minute, "kro's ResourceGraphDefinition Active and KroBench served", func() (bool, string) {
		if done, log := peer.Exited(); done {
			b.Fatalf("kro exited; its last output:\n%s", log)
		}
		rgd := &unstructured.Unstructured{}
		rgd.SetGroupVersionKind(schema.GroupVersionKind{Group: "kro.run", Version: "v1alpha1", Kind: "ResourceGraphDefinition"})
		if err := cl.c.Get(ctx, client.ObjectKey{Name: "krobench"}, rgd); err != nil {
			return false, err.Error()
		}
		state, _, _ := unstructured.NestedString(rgd.Object, "status", "state")
		if state != "Active" {
			return false, "state " + state
		}
		if _, err := list(ctx, cl.c, kroGVK); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	cs := claims{c: cl.c, gvk: kroGVK, ns: fmt.Sprintf("kro-%d", n), composed: func(cm *unstructured.Unstructured) bool {
		return strings.HasPrefix(cm.GetName(), "c-")
	}}
	rows := cs.run(b, cl.Up, "kro", n, lb)
	return rows, peer.PeakRSSMiB()
}
