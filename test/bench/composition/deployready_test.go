package composition

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/test/bench/benchutil"
)

// The readiness run issue 15 names: each claim composes a Deployment of one
// replica, which kube-controller-manager reports Available once the
// scheduler has bound its pod and kwok has made it Running and Ready. No
// one but the cluster flips anything.
var appXRDYAML = benchXRD("XApp", "xapps", "App", "apps")

const appCompositionYAML = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: app}
spec:
  compositeTypeRef: {apiVersion: bench.strata.dev/v1alpha1, kind: XApp}
  resources:
  - name: deployment
    template:
      apiVersion: apps/v1
      kind: Deployment
      spec:
        replicas: 1
        selector: {matchLabels: {app: "${xr.metadata.name}"}}
        template:
          metadata: {labels: {app: "${xr.metadata.name}"}}
          spec:
            containers:
            - {name: app, image: "bench/app:${xr.spec.value}"}
`

// nodePods is the pod capacity of the simulated node `strata up` registers
// (internal/cluster): the Deployment run uses at most this many claims.
const nodePods = 1000

var (
	appGVK        = schema.GroupVersionKind{Group: "bench.strata.dev", Version: "v1alpha1", Kind: "App"}
	xappGVK       = schema.GroupVersionKind{Group: "bench.strata.dev", Version: "v1alpha1", Kind: "XApp"}
	deploymentGVK = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	podGVK        = corev1.SchemeGroupVersion.WithKind("Pod")
)

// deploymentRun is what the Deployment readiness run measured beyond the
// latencies every propagation run has.
type deploymentRun struct {
	// available is the p50 and p99 of the time from a claim's create
	// returning to a watch seeing its Deployment Current (kstatus):
	// Strata's create, then kube-controller-manager, the scheduler and
	// kwok starting the pod.
	availableP50, availableP99 time.Duration
	// early counts claims a watch saw Ready before it saw their
	// Deployment Current.
	early int
	// beforeXR counts claims a watch saw Ready before it saw their XR
	// Ready: the claim's status write and its XR's go out side by side.
	beforeXR int
	// xrP50, xrP99 split the propagation: from the Deployment Current to
	// its XR Ready (the composite controller's part; the rest is the
	// claim controller's).
	xrP50, xrP99 time.Duration
	// claimP50, claimP99 are the rest: from the XR Ready to its claim
	// Ready (the claim controller's part), both as the benchmark's
	// watches saw them.
	claimP50, claimP99 time.Duration
}

func (d *deploymentRun) how(p *propagation) string {
	if p.rate == 0 {
		return fmt.Sprintf("all %d claims created at once by %d workers, within %.1f s", p.n, benchutil.Workers, p.flip.Seconds())
	}
	return fmt.Sprintf("claims created one after another, %d per second (%.1f s)", p.rate, p.flip.Seconds())
}

func (d *deploymentRun) line(p *propagation) string {
	return fmt.Sprintf("Strata readiness propagation, %d claims: p50 %.3fs, p99 %.3fs, max %.3fs after the composed Deployment turned Available (%s; claim create → Deployment Available p50 %.1fs, p99 %.1fs; Deployment Available → XR Ready p50 %.3fs, p99 %.3fs; XR Ready → claim Ready p50 %.3fs, p99 %.3fs; %d claims Ready before their Deployment, %d before their XR); %.1f API writes per claim: %s",
		p.n, p.p50.Seconds(), p.p99.Seconds(), p.max.Seconds(), p.how(), d.availableP50.Seconds(), d.availableP99.Seconds(), d.xrP50.Seconds(), d.xrP99.Seconds(), d.claimP50.Seconds(), d.claimP99.Seconds(), d.early, d.beforeXR, p.phase.Per(p.n), p.phase.Writes)
}

func (d *deploymentRun) section(p *propagation) string {
	var s strings.Builder
	fmt.Fprintf(&s, "- Readiness propagation: %d claims, each composing a Deployment of one replica that kube-controller-manager reports Available\n", p.n)
	fmt.Fprintf(&s, "  once the scheduler has bound its pod and kwok has started it (%s); a claim's Deployment was Available\n", p.how())
	fmt.Fprintf(&s, "  p50 %.1f s, p99 %.1f s after the claim's create. Per claim, the time from a watch seeing its Deployment Current (kstatus)\n", d.availableP50.Seconds(), d.availableP99.Seconds())
	fmt.Fprintf(&s, "  to a watch seeing the claim Ready: p50 %.3f s, p99 %.3f s, max %.3f s; %d claims were Ready before their Deployment;\n", p.p50.Seconds(), p.p99.Seconds(), p.max.Seconds(), d.early)
	fmt.Fprintf(&s, "  of that, Deployment Current → XR Ready p50 %.3f s, p99 %.3f s, and XR Ready → claim Ready p50 %.3f s, p99 %.3f s\n", d.xrP50.Seconds(), d.xrP99.Seconds(), d.claimP50.Seconds(), d.claimP99.Seconds())
	fmt.Fprintf(&s, "  (%d claims were Ready before their XR, counted as 0: the claim's status write goes out beside its XR's);\n", d.beforeXR)
	fmt.Fprintf(&s, "  %.1f API writes per claim (the claim's create, the cluster's own for the Deployment, ReplicaSet and pod included).\n", p.phase.Per(p.n))
	return s.String()
}

// runDeploymentPropagation creates n App claims (all at once, or rate per
// second), each composing a Deployment, and measures, per claim, the time
// from a watch seeing its Deployment Current to a watch seeing the claim
// Ready; then deletes them and waits until their pods are gone.
func runDeploymentPropagation(b *testing.B, cl *cluster, n, rate int) *propagation {
	// The local cluster's one simulated node runs at most nodePods pods.
	n = min(n, nodePods)
	ctx := context.Background()
	ns := fmt.Sprintf("apps-%d-%d", n, rate)
	if err := cl.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	cs := claims{c: cl.c, gvk: appGVK, ns: ns}
	cl.SettleWithin(b, 5*time.Minute)

	var mu sync.Mutex
	created := map[string]time.Time{}   // claim name → its create returned
	available := map[string]time.Time{} // claim name → its Deployment first seen Current
	deploymentsT := cl.Track(b, deploymentGVK, ns, func(u *unstructured.Unstructured, deleted bool, at time.Time) {
		claim := u.GetLabels()["strata.dev/claim-name"]
		if deleted || claim == "" {
			return
		}
		if res, err := status.Compute(u); err != nil || res.Status != status.CurrentStatus {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, seen := available[claim]; !seen {
			available[claim] = at
		}
	})
	defer deploymentsT.Stop()
	xrReady := map[string]time.Time{} // claim name → its XR first seen Ready
	xrsT := cl.Track(b, xappGVK, "", func(u *unstructured.Unstructured, deleted bool, at time.Time) {
		ref, _, _ := unstructured.NestedStringMap(u.Object, "spec", "claimRef")
		if deleted || ref["namespace"] != ns || !benchutil.IsReady(u) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, seen := xrReady[ref["name"]]; !seen {
			xrReady[ref["name"]] = at
		}
	})
	defer xrsT.Stop()
	ready := benchutil.NewFirstMatch(benchutil.IsReady)
	claimsT := cl.Track(b, appGVK, ns, ready.Observe)
	defer claimsT.Stop()
	podsT := cl.Track(b, podGVK, ns, nil)
	defer podsT.Stop()

	p := &propagation{n: n, rate: rate, deployments: &deploymentRun{}}
	p.phase = cl.Measure(b, func() {
		p.flip = paced(b, n, rate, func(i int) error {
			u := cs.object(i)
			u.Object["spec"] = map[string]any{"value": "v1"}
			if err := cl.c.Create(ctx, u); err != nil {
				return err
			}
			mu.Lock()
			created[u.GetName()] = time.Now()
			mu.Unlock()
			return nil
		})
		benchutil.WaitUntilEvery(b, 20*time.Minute, poll, "App claims Ready", func() (bool, string) {
			r := ready.Len()
			mu.Lock()
			a := len(available)
			mu.Unlock()
			return r == n, fmt.Sprintf("%d/%d Ready, %d Deployments Available", r, n, a)
		})
	})

	var lat, avail, xr, claimStep []float64
	mu.Lock()
	for c, at := range available {
		readyAt, _ := ready.At(c)
		if x, ok := xrReady[c]; ok {
			xr = append(xr, max(0, x.Sub(at).Seconds()))
			if readyAt.Before(x) {
				p.deployments.beforeXR++
			}
			claimStep = append(claimStep, max(0, readyAt.Sub(x).Seconds()))
		}
		d := readyAt.Sub(at).Seconds()
		if d < 0 {
			p.deployments.early++
			d = 0
		}
		lat = append(lat, d)
		if t, ok := created[c]; ok {
			avail = append(avail, at.Sub(t).Seconds())
		}
	}
	seen := len(available)
	mu.Unlock()
	if seen != n {
		// A claim Ready whose Deployment never was Current is an engine
		// that does not wait for its composed objects: report it loudly.
		b.Errorf("%d claims Ready, but only %d of their Deployments were seen Available", n, seen)
	}
	sort.Float64s(lat)
	sort.Float64s(avail)
	sort.Float64s(xr)
	sort.Float64s(claimStep)
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	p.deployments.xrP50, p.deployments.xrP99 = sec(benchutil.Percentile(xr, 50)), sec(benchutil.Percentile(xr, 99))
	p.deployments.claimP50, p.deployments.claimP99 = sec(benchutil.Percentile(claimStep, 50)), sec(benchutil.Percentile(claimStep, 99))
	p.p50, p.p99, p.max = sec(benchutil.Percentile(lat, 50)), sec(benchutil.Percentile(lat, 99)), sec(benchutil.Percentile(lat, 100))
	p.deployments.availableP50, p.deployments.availableP99 = sec(benchutil.Percentile(avail, 50)), sec(benchutil.Percentile(avail, 99))

	// The next run starts once the claims, their Deployments and their
	// pods are gone: the simulated node holds 1000 pods.
	benchutil.Parallel(b, n, benchutil.Workers, func(i int) error { return client.IgnoreNotFound(cl.c.Delete(ctx, cs.object(i))) })
	benchutil.WaitUntil(b, 10*time.Minute, "App claims and their pods deleted", func() (bool, string) {
		_, claimsLeft := claimsT.Count(nil)
		_, podsLeft := podsT.Count(nil)
		return claimsLeft == 0 && podsLeft == 0, fmt.Sprintf("%d claims, %d pods left", claimsLeft, podsLeft)
	})
	cl.SettleWithin(b, 5*time.Minute)
	return p
}
