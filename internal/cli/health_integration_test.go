package cli

import (
	"context"
	"fmt"
	"os"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	compositionctrl "github.com/strata-dev/strata/internal/composition/controller"
	"github.com/strata-dev/strata/internal/gitops/controller"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/scheme"
	"github.com/strata-dev/strata/internal/testenv"
)

// startControllers runs the composition and delivery controllers for
// TestOneHealthEverywhere. They see namespaced objects of "default" only, so
// the diff tests' Syncs in their own namespaces are left alone.
func startControllers(e *testenv.Env) error {
	ctrl.SetLogger(logr.Discard())
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{metav1.NamespaceDefault: {}}},
	})
	if err == nil {
		err = compositionctrl.Setup(mgr, time.Minute, 2, compositionctrl.DefaultClientLimit)
	}
	if err == nil {
		err = controller.Setup(mgr, controller.Options{Workers: 2, HealthPollInterval: 300 * time.Millisecond, AllowFileURLs: []string{os.TempDir()}})
	}
	if err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	return nil
}

func applyYAML(t *testing.T, y string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Patch(context.Background(), u, client.Apply, client.FieldOwner("test"), client.ForceOwnership); err != nil {
		t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

func poll(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within 30s: %v", what, err)
}

func conditionOf(u *unstructured.Unstructured, typ string) (status, reason, message string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			status, _ = m["status"].(string)
			reason, _ = m["reason"].(string)
			message, _ = m["message"].(string)
		}
	}
	return status, reason, message
}

const webXRD = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xwebs.health.strata.dev}
spec:
  group: health.strata.dev
  names: {kind: XWeb, plural: xwebs}
  versions:
  - name: v1alpha1
    served: true
    referenceable: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {replicas: {type: integer}}}
`

// The composed Deployment has no readyWhen: its readiness is the default,
// kit/health.
const webComposition = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: web}
spec:
  compositeTypeRef: {apiVersion: health.strata.dev/v1alpha1, kind: XWeb}
  resources:
  - name: web
    template:
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: "${xr.metadata.name}-web"}
      spec:
        replicas: ${xr.spec.replicas}
        selector: {matchLabels: {app: web}}
        template:
          metadata: {labels: {app: web}}
          spec: {containers: [{name: web, image: nginx}]}
`

// TestOneHealthEverywhere: the same Deployment, with 1 of 2 replicas
// available and then 2 of 2, is read the same way by a composition's
// readiness (the XR's Ready), a Sync's health check and `strata trace`.
func TestOneHealthEverywhere(t *testing.T) {
	ctx := context.Background()
	applyYAML(t, webXRD)
	applyYAML(t, webComposition)
	poll(t, "XWeb served", func() error {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion("health.strata.dev/v1alpha1")
		l.SetKind("XWebList")
		return env.Client.List(ctx, l)
	})
	poll(t, "XWeb shop created", func() error {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte("{apiVersion: health.strata.dev/v1alpha1, kind: XWeb, metadata: {name: shop}, spec: {replicas: 2}}"), &u.Object); err != nil {
			return err
		}
		return env.Client.Patch(ctx, u, client.Apply, client.FieldOwner("test"), client.ForceOwnership)
	})
	dep := &appsv1.Deployment{}
	poll(t, "Deployment default/shop-web composed", func() error {
		return env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "shop-web"}, dep)
	})

	// A Sync applies a ConfigMap and checks the health of the Deployment.
	repo := gittest.NewRepo(t, t.TempDir(), "apps")
	repo.Commit("apps", map[string]string{"apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-settings}\ndata: {k: v}\n"})
	if err := env.Client.Create(ctx, &gitopsv1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "apps"},
		Spec:       gitopsv1.GitRepositorySpec{URL: repo.URL(), Interval: metav1.Duration{Duration: time.Hour}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &gitopsv1.Sync{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "apps"},
		Spec: gitopsv1.SyncSpec{
			SourceRef:    gitopsv1.SourceReference{Name: "apps"},
			Path:         "apps",
			Interval:     metav1.Duration{Duration: time.Hour},
			Prune:        gitopsv1.PruneEnabled,
			HealthChecks: []gitopsv1.ObjectReference{{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "shop-web"}},
		},
	}); err != nil {
		t.Fatal(err)
	}

	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr := &tracer{mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), dyn: dyn}

	// expect polls until the XR, the Sync and trace all read the Deployment
	// as ready (or all as waiting, with message).
	expect := func(ready bool, message string) {
		t.Helper()
		poll(t, fmt.Sprintf("ready=%v %q everywhere", ready, message), func() error {
			xr := &unstructured.Unstructured{}
			xr.SetGroupVersionKind(schema.GroupVersionKind{Group: "health.strata.dev", Version: "v1alpha1", Kind: "XWeb"})
			if err := env.Client.Get(ctx, client.ObjectKey{Name: "shop"}, xr); err != nil {
				return err
			}
			st, _, msg := conditionOf(xr, "Ready")
			if (st == "True") != ready || (!ready && !strings.Contains(msg, "web ("+message+")")) {
				return fmt.Errorf("composition: XR Ready=%s %q", st, msg)
			}

			s := &unstructured.Unstructured{}
			s.SetGroupVersionKind(gitopsv1.GroupVersion.WithKind("Sync"))
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "apps"}, s); err != nil {
				return err
			}
			st, _, msg = conditionOf(s, gitopsv1.Healthy)
			if (st == "True") != ready || (!ready && !strings.Contains(msg, "Deployment/default/shop-web: "+message)) {
				return fmt.Errorf("sync: Healthy=%s %q", st, msg)
			}

			root, err := tr.trace(ctx, "xweb", "", "shop")
			if err != nil {
				return err
			}
			var web *traceNode
			for _, c := range root.Children {
				if c.Kind == "Deployment" && c.Name == "shop-web" {
					web = c
				}
			}
			want := "False"
			if ready {
				want = "True"
			}
			if web == nil || web.Ready != want || (!ready && web.Message != message) {
				return fmt.Errorf("trace: %+v", web)
			}
			return nil
		})
	}

	setStatus := func(available int32) {
		t.Helper()
		poll(t, "Deployment status written", func() error {
			d := &appsv1.Deployment{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "shop-web"}, d); err != nil {
				return err
			}
			d.Status = appsv1.DeploymentStatus{
				ObservedGeneration: d.Generation, Replicas: 2, UpdatedReplicas: 2,
				ReadyReplicas: available, AvailableReplicas: available,
				Conditions: []appsv1.DeploymentCondition{
					{Type: appsv1.DeploymentAvailable, Status: "True", Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()},
					{Type: appsv1.DeploymentProgressing, Status: "True", Reason: "NewReplicaSetAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()},
				},
			}
			return env.Client.Status().Update(ctx, d)
		})
	}

	// Without status (no controller wrote it yet), the Deployment waits.
	start := time.Now()
	expect(false, "Replicas: 0/2")
	t.Logf("waiting read everywhere after %s", time.Since(start))
	setStatus(1)
	expect(false, "Available: 1/2")
	t.Logf("1/2 read everywhere after %s", time.Since(start))
	setStatus(2)
	expect(true, "")
	t.Logf("ready everywhere after %s", time.Since(start))
}
