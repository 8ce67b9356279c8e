package rollout

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	analysiscontroller "github.com/strata-dev/strata/internal/delivery/controller"
	"github.com/strata-dev/strata/internal/testenv"
	"github.com/strata-dev/strata/internal/testenv/managedtest"
)

// The tests run against a whole local cluster: the Deployment, ReplicaSet
// and EndpointSlice controllers of kube-controller-manager run, and kwok
// makes pods Running and Ready, so the tests see what a data plane would.
var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, testenv.StartCluster))
}

// startManager runs the Rollout and AnalysisRun controllers until the test
// ends.
func startManager(t *testing.T) {
	t.Helper()
	managedtest.StartManager(t, env.Config, func(mgr ctrl.Manager) error {
		if err := analysiscontroller.Setup(mgr, analysiscontroller.Options{Workers: 2}); err != nil {
			return err
		}
		return Setup(mgr, Options{Workers: 4})
	})
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "rollout-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

func deployment(ns, name string, replicas int32, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

func service(ns, name string, selector map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Selector: selector,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
}

func weight(n int32) deliveryv1.CanaryStep { return deliveryv1.CanaryStep{SetWeight: ptr.To(n)} }

func pause() deliveryv1.CanaryStep {
	return deliveryv1.CanaryStep{Pause: &deliveryv1.RolloutPause{}}
}

func canaryRollout(ns, name, target string, steps ...deliveryv1.CanaryStep) *deliveryv1.Rollout {
	return &deliveryv1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: deliveryv1.RolloutSpec{
			TargetRef: deliveryv1.RolloutTargetReference{Kind: "Deployment", Name: target},
			Service:   target,
			Strategy:  deliveryv1.RolloutStrategy{Canary: &deliveryv1.CanaryStrategy{Steps: steps}},
		},
	}
}

// verdictServer answers web metrics with the verdict it holds ("true" or
// "false"), so a test decides when an analysis passes.
type verdictServer struct {
	*httptest.Server
	pass atomic.Bool
}

func newVerdictServer(t *testing.T, pass bool) *verdictServer {
	v := &verdictServer{}
	v.pass.Store(pass)
	v.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, v.pass.Load())
	}))
	t.Cleanup(v.Close)
	return v
}

// template is an AnalysisTemplate with one web metric against v.
func (v *verdictServer) template(ns, name string) *deliveryv1.AnalysisTemplate {
	return &deliveryv1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: deliveryv1.AnalysisTemplateSpec{
			Args: []deliveryv1.Argument{{Name: "canary"}},
			Metrics: []deliveryv1.Metric{{Name: "healthy", NoData: deliveryv1.NoDataFail,
				Provider: deliveryv1.MetricProvider{Web: &deliveryv1.WebMetric{URL: v.URL + "/?canary={{args.canary}}"}}}},
		},
	}
}

// canaryHashArg gives a run the canary's pod-template-hash from its subject.
var canaryHashArg = []deliveryv1.Argument{{Name: "canary", ValueFrom: &deliveryv1.ArgumentValueFrom{
	FieldRef: &deliveryv1.FieldSelector{FieldPath: "{.status.canaryRevision.podTemplateHash}"}}}}

func get(t *testing.T, o client.Object) {
	t.Helper()
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
		t.Fatal(err)
	}
}

// setImage changes the Deployment's template as a Git commit would.
func setImage(t *testing.T, ns, name, image string) {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		t.Fatal(err)
	}
	base := d.DeepCopy()
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := env.Client.Patch(context.Background(), d, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
}

// annotate makes a request to a Rollout as `kubectl annotate` would.
func annotate(t *testing.T, ro *deliveryv1.Rollout, key string) {
	t.Helper()
	cur := &deliveryv1.Rollout{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ro), cur); err != nil {
		t.Fatal(err)
	}
	base := cur.DeepCopy()
	if cur.Annotations == nil {
		cur.Annotations = map[string]string{}
	}
	cur.Annotations[key] = fmt.Sprint(time.Now().UnixNano())
	if err := env.Client.Patch(context.Background(), cur, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
}

// pods counts the Ready pods of a namespace by pod-template-hash and by
// image.
type podCount struct {
	byHash  map[string]int
	byImage map[string]int
}

func readyPods(t *testing.T, ns string, selector map[string]string) podCount {
	t.Helper()
	list := &corev1.PodList{}
	if err := env.Client.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels(selector)); err != nil {
		t.Fatal(err)
	}
	pc := podCount{byHash: map[string]int{}, byImage: map[string]int{}}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil || !podReady(&p) {
			continue
		}
		pc.byHash[p.Labels[deliveryv1.PodTemplateHashLabel]]++
		pc.byImage[p.Spec.Containers[0].Image]++
	}
	return pc
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// endpointsByImage counts the ready endpoints of a Service's EndpointSlices
// by the image of the pod behind each: what a data plane load-balances
// over.
func endpointsByImage(t *testing.T, ns, svc string) map[string]int {
	t.Helper()
	ctx := context.Background()
	slices := &discoveryv1.EndpointSliceList{}
	if err := env.Client.List(ctx, slices, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: svc}); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || !*e.Conditions.Ready || e.TargetRef == nil {
				continue
			}
			p := &corev1.Pod{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: e.TargetRef.Name}, p); err != nil {
				continue
			}
			out[p.Spec.Containers[0].Image]++
		}
	}
	return out
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

// waitFor polls until f returns nil.
func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	managedtest.Eventually(t, 2*time.Minute, what, f)
}

// waitRollout waits until the Rollout satisfies f.
func waitRollout(t *testing.T, ro *deliveryv1.Rollout, what string, f func(*deliveryv1.Rollout) error) {
	t.Helper()
	waitFor(t, "rollout "+ro.Name+": "+what, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ro), ro); err != nil {
			return err
		}
		return f(ro)
	})
}

func phaseIs(phase string) func(*deliveryv1.Rollout) error {
	return func(ro *deliveryv1.Rollout) error {
		if ro.Status.Phase != phase {
			return fmt.Errorf("phase %q (%s), want %s", ro.Status.Phase, ro.Status.Message, phase)
		}
		return nil
	}
}

func healthy(ro *deliveryv1.Rollout) error {
	if ro.Status.Phase != deliveryv1.RolloutPhaseHealthy || !conditions.IsTrue(ro, conditions.Ready) || ro.Status.ObservedGeneration != ro.Generation {
		return fmt.Errorf("phase %q (%s)", ro.Status.Phase, ro.Status.Message)
	}
	return nil
}

// atStep waits for the Rollout to be paused at step i.
func atStep(i int32) func(*deliveryv1.Rollout) error {
	return func(ro *deliveryv1.Rollout) error {
		if ptr.Deref(ro.Status.CurrentStep, -1) != i || ro.Status.Phase != deliveryv1.RolloutPhasePaused {
			return fmt.Errorf("step %d, phase %q (%s); want paused at step %d", ptr.Deref(ro.Status.CurrentStep, -1), ro.Status.Phase, ro.Status.Message, i)
		}
		return nil
	}
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
