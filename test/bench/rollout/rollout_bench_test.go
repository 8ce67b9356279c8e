package rollout

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/test/bench/benchutil"
)

const (
	replicas = 4
	pause    = 5 * time.Second
	poll     = 20 * time.Millisecond
)

// steps is the 3-step canary: 25% (1 of 4 pods), a pause, 75% (3 of 4),
// then promotion.
func steps() []deliveryv1.CanaryStep {
	return []deliveryv1.CanaryStep{
		{SetWeight: ptr.To[int32](25)},
		{Pause: &deliveryv1.RolloutPause{Duration: &metav1.Duration{Duration: pause}}},
		{SetWeight: ptr.To[int32](75)},
	}
}

func objects(ns string, i int) []client.Object {
	name := fmt.Sprintf("app-%d", i)
	labels := map[string]string{"app": name}
	return []client.Object{
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](replicas),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
				},
			},
		},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}}},
		&deliveryv1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: deliveryv1.RolloutSpec{
				TargetRef: deliveryv1.RolloutTargetReference{Kind: "Deployment", Name: name},
				Service:   name,
				Strategy:  deliveryv1.RolloutStrategy{Canary: &deliveryv1.CanaryStrategy{Steps: steps()}},
			}},
	}
}

// progress records, per Rollout, when it was first seen at each step of the
// new revision and when it was Healthy on it.
type progress struct {
	mu      sync.Mutex
	canary  map[string]string              // rollout -> canary hash being rolled out
	reached map[string]map[int32]time.Time // rollout -> step -> first seen
	healthy map[string]time.Time
	old     map[string]string // rollout -> stable hash before the change
}

func (p *progress) observe(u *unstructured.Unstructured, at time.Time) {
	ro := &deliveryv1.Rollout{}
	if err := runtimeFromUnstructured(u, ro); err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	name := ro.Name
	newCanary := ro.Status.CanaryRevision != nil && ro.Status.CanaryRevision.PodTemplateHash != p.old[name]
	promoted := ro.Status.StableRevision != nil && ro.Status.StableRevision.PodTemplateHash != p.old[name]
	if _, ok := p.old[name]; ok && (newCanary || promoted) {
		if p.reached[name] == nil {
			p.reached[name] = map[int32]time.Time{}
		}
		step := ptr.Deref(ro.Status.CurrentStep, 0)
		if _, seen := p.reached[name][step]; !seen {
			p.reached[name][step] = at
		}
	}
	if old, ok := p.old[name]; ok && ro.Status.Phase == deliveryv1.RolloutPhaseHealthy && ro.Status.StableRevision != nil &&
		ro.Status.StableRevision.PodTemplateHash != old && ro.Status.CanaryRevision == nil {
		if _, seen := p.healthy[name]; !seen {
			p.healthy[name] = at
		}
	}
}

// BenchmarkRollout: N Rollouts (STRATA_BENCH_N, default 100) of
// Deployments of 4 replicas, all Healthy; then one burst changes every
// Deployment's template, and each Rollout steps 25% → pause 5s → 75% →
// promotion → Healthy.
func BenchmarkRollout(b *testing.B) {
	load := benchutil.LoadAverage()
	n := benchutil.Sizes("100")[0]
	up := benchutil.StartUp(b, "delivery")
	c := up.Unthrottled(b)
	ctx := context.Background()
	ns := "rollouts"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	p := &progress{reached: map[string]map[int32]time.Time{}, healthy: map[string]time.Time{}, old: map[string]string{}}
	tr := up.Track(b, deliveryv1.GroupVersion.WithKind("Rollout"), ns, func(u *unstructured.Unstructured, deleted bool, at time.Time) {
		if !deleted {
			p.observe(u, at)
		}
	})
	defer tr.Stop()
	benchutil.Parallel(b, n, benchutil.Workers, func(i int) error {
		for _, o := range objects(ns, i) {
			if err := c.Create(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
	benchutil.WaitUntilEvery(b, 10*time.Minute, poll, "all Rollouts Healthy on the first revision", func() (bool, string) {
		ready, total := tr.Count(benchutil.IsReady)
		return ready == n, fmt.Sprintf("%d/%d ready", ready, total)
	})
	tr.Each(func(u *unstructured.Unstructured) {
		h, _, _ := unstructured.NestedString(u.Object, "status", "stableRevision", "podTemplateHash")
		p.mu.Lock()
		p.old[u.GetName()] = h
		p.mu.Unlock()
	})
	up.SettleWithin(b, 5*time.Minute)
	lb := up.MeasureLowerBound(b, "lower-bound", n*len(steps()))
	up.SettleWithin(b, 5*time.Minute)

	began := time.Now()
	phase := up.Measure(b, func() {
		benchutil.Parallel(b, n, benchutil.Workers, func(i int) error {
			patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"example.com/app:2"}]}}}}`)
			return c.Patch(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("app-%d", i)}},
				client.RawPatch("application/strategic-merge-patch+json", patch))
		})
		benchutil.WaitUntilEvery(b, 20*time.Minute, poll, "all Rollouts Healthy on the new revision", func() (bool, string) {
			p.mu.Lock()
			defer p.mu.Unlock()
			return len(p.healthy) == n, fmt.Sprintf("%d/%d promoted", len(p.healthy), n)
		})
	})
	// Per step, the time beyond its pause: step 0 from the template change,
	// step k from step k-1's start, promotion to Healthy after the last.
	nSteps := int32(len(steps()))
	perStep := make([][]float64, nSteps+1)
	p.mu.Lock()
	for name, reached := range p.reached {
		prev := began
		for k := int32(1); k <= nSteps; k++ {
			at, ok := reached[k]
			if !ok {
				continue
			}
			d := at.Sub(prev)
			if steps()[k-1].Pause != nil {
				d -= pause
			}
			perStep[k-1] = append(perStep[k-1], d.Seconds())
			prev = at
		}
		if h, ok := p.healthy[name]; ok {
			perStep[nSteps] = append(perStep[nSteps], h.Sub(prev).Seconds())
		}
	}
	p.mu.Unlock()
	names := []string{"setWeight 25 (1 pod)", "pause 5s", "setWeight 75 (3 pods)", "promotion → Healthy"}
	var lines []string
	for k, ds := range perStep {
		sort.Float64s(ds)
		if len(ds) == 0 {
			continue
		}
		lines = append(lines, fmt.Sprintf("| %s | %d | %.2f | %.2f | %.2f |", names[k], len(ds), benchutil.Percentile(ds, 50), benchutil.Percentile(ds, 95), ds[len(ds)-1]))
	}
	writesPerStep := phase.Writes.Total() / float64(n) / float64(nSteps+1)
	// The Rollout controller's own writes: its status, the canary
	// ReplicaSets it creates and scales, the Deployments it pauses and
	// annotates (server-side apply and patches), and routes and Services.
	own := 0.0
	for k, v := range phase.Writes {
		switch {
		case k.Group == deliveryv1.GroupVersion.Group:
			own += v
		case k.Group == "apps" && (k.Resource == "replicasets" || k.Resource == "deployments") && k.Subresource == "" && k.Verb != "PUT" && k.Verb != "DELETE":
			own += v
		}
	}
	ownPerStep := own / float64(n) / float64(nSteps+1)
	r := benchutil.Row{Step: fmt.Sprintf("%d Rollouts × 3-step canary → all promoted", n), Who: "Strata", N: n, Unit: "Rollout", Phase: phase,
		Bound: lb.Patch, BoundWhat: fmt.Sprintf("%d ConfigMap patches, unthrottled", lb.N), Own: n}
	r.Print()
	fmt.Printf("time per step beyond the pause (s):\n%s\nAPI writes per Rollout per step (4 steps counting promotion): %.1f, of which the Rollout controller's %.1f\n", strings.Join(lines, "\n"), writesPerStep, ownPerStep)
	b.ReportMetric(phase.Took.Seconds(), "s-to-promoted")
	b.ReportMetric(writesPerStep, "writes/Rollout/step")
	b.ReportMetric(ownPerStep, "own-writes/Rollout/step")

	var s strings.Builder
	s.WriteString(benchutil.Heading("Progressive delivery", "BenchmarkRollout", "test/bench/rollout", load))
	fmt.Fprintf(&s, "A local cluster (`strata up --subsystems delivery%s`): %d Deployments of %d replicas (kwok pods), each with a Service and a\n", benchutil.ExtraFlags(up.Args), n, replicas)
	fmt.Fprintf(&s, "Rollout of 3 steps (setWeight 25, pause %s, setWeight 75, then promotion), all Healthy; then %d workers change every\n", pause, benchutil.Workers)
	fmt.Fprintf(&s, "template in one burst, until every Rollout is Healthy on the new revision. A step's time is from the step before it (the\n")
	fmt.Fprintf(&s, "template change for the first) to the first status that shows the next, minus the pause; it includes creating and\n")
	fmt.Fprintf(&s, "scheduling the canary pods and kwok making them Ready. The lower bound is the same API server, in the same run, patching\n")
	fmt.Fprintf(&s, "%d ConfigMaps (one write per Rollout per step) through a client that is not throttled.\n\n", lb.N)
	s.WriteString("| step | Rollouts | median (s) | p95 (s) | max (s) |\n| --- | --- | --- | --- | --- |\n")
	s.WriteString(strings.Join(lines, "\n") + "\n\n")
	s.WriteString(benchutil.Table([]benchutil.Row{r}))
	fmt.Fprintf(&s, "\nAPI writes per Rollout per step (the 3 steps and the promotion): %.1f, including kube-controller-manager's and kwok's for\n"+
		"the pods (pods, pods/status, replicasets/status, endpointslices, events), which Strata does not make. The Rollout controller's\n"+
		"own (Rollout status; ReplicaSet creates and patches; Deployment applies and patches): %.1f per Rollout per step.\n\n", writesPerStep, ownPerStep)
	s.WriteString("Writes by verb and resource:\n\n")
	s.WriteString(benchutil.WritesTable([]benchutil.Row{r}))
	if err := benchutil.WriteSection("rollout-bench", s.String()); err != nil {
		b.Error(err)
	}
}

func runtimeFromUnstructured(u *unstructured.Unstructured, out *deliveryv1.Rollout) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out)
}
