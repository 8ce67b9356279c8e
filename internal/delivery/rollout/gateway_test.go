package rollout

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

var installRoutes sync.Once

// installHTTPRouteCRD installs the Gateway API HTTPRoute CRD of
// sigs.k8s.io/gateway-api v1.6.3 from the Go module cache.
func installHTTPRouteCRD(t *testing.T) {
	t.Helper()
	installRoutes.Do(func() {
		cache, err := exec.Command("go", "env", "GOMODCACHE").Output()
		if err != nil {
			t.Fatalf("go env GOMODCACHE: %v", err)
		}
		path := filepath.Join(strings.TrimSpace(string(cache)), "sigs.k8s.io", "gateway-api@v1.6.3", "config", "crd", "standard", "gateway.networking.k8s.io_httproutes.yaml")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("the Gateway API CRDs come from the module cache (go mod download sigs.k8s.io/gateway-api@v1.6.3): %v", err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(b, crd); err != nil {
			t.Fatal(err)
		}
		sch := runtime.NewScheme()
		if err := apiextensionsv1.AddToScheme(sch); err != nil {
			t.Fatal(err)
		}
		c, err := client.New(env.Config, client.Options{Scheme: sch})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Create(context.Background(), crd); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		waitFor(t, "HTTPRoute CRD established", func() error {
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(crd), crd); err != nil {
				return err
			}
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return nil
				}
			}
			return fmt.Errorf("not established")
		})
	})
}

func httpRoute(ns, name, backend string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": "gateway"}},
			"rules": []any{map[string]any{
				"backendRefs": []any{map[string]any{"name": backend, "port": int64(80)}},
			}},
		},
	}}
}

// routeWeights reads the HTTPRoute's backends as "name=weight ...".
func routeWeights(t *testing.T, ns, name string) string {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(httpRouteGVK)
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	var out []string
	for _, r := range rules {
		refs, _, _ := unstructured.NestedSlice(r.(map[string]any), "backendRefs")
		for _, ref := range refs {
			m := ref.(map[string]any)
			w, ok := m["weight"]
			if !ok {
				w = "-"
			}
			out = append(out, fmt.Sprintf("%v=%v", m["name"], w))
		}
	}
	return strings.Join(out, " ")
}

// TestGatewayAPIWeights: with Gateway API routing the canary steps set the
// HTTPRoute's backend weights between the `-stable` and `-canary`
// Services the Rollout manages, each selecting one revision's pods (their
// EndpointSlices are checked); after promotion all weight is on stable. A
// Rollout whose HTTPRoute does not reference its Service is not Ready,
// naming the route, and changes nothing.
func TestGatewayAPIWeights(t *testing.T) {
	installHTTPRouteCRD(t)
	startManager(t)
	ns := namespace(t)
	ro := canaryRollout(ns, "web", "web", weight(20), pause(), weight(50), pause())
	ro.Spec.Strategy.Canary.TrafficRouting = &deliveryv1.TrafficRouting{GatewayAPI: &deliveryv1.GatewayAPIRouting{HTTPRoutes: []string{"web"}}}
	elsewhere := canaryRollout(ns, "elsewhere", "api", weight(20))
	elsewhere.Spec.Strategy.Canary.TrafficRouting = &deliveryv1.TrafficRouting{GatewayAPI: &deliveryv1.GatewayAPIRouting{HTTPRoutes: []string{"api"}}}
	create(t, deployment(ns, "web", 4, "web:1"), service(ns, "web", map[string]string{"app": "web"}), httpRoute(ns, "web", "web"), ro,
		deployment(ns, "api", 1, "api:1"), service(ns, "api", map[string]string{"app": "api"}), httpRoute(ns, "api", "other"), elsewhere)

	notReady(t, elsewhere, deliveryv1.ReasonRouteNotReferencingService, "HTTPRoute "+ns+"/api", "Service api")
	if got := routeWeights(t, ns, "api"); got != "other=1" { // the API server defaults weight to 1
		t.Errorf("the unrelated route changed: %s", got)
	}

	waitRollout(t, ro, "healthy", healthy)
	waitFor(t, "route all on stable", func() error {
		if got := routeWeights(t, ns, "web"); got != "web-stable=100 web-canary=0" {
			return fmt.Errorf("route %s", got)
		}
		return nil
	})
	setImage(t, ns, "web", "web:2")
	waitRollout(t, ro, "paused at step 1", atStep(1))
	if got := routeWeights(t, ns, "web"); got != "web-stable=80 web-canary=20" {
		t.Errorf("route %s at 20%%", got)
	}
	waitFor(t, "revision Services' endpoints", func() error {
		if got := counts(endpointsByImage(t, ns, "web-stable")); got != "web:1=4" {
			return fmt.Errorf("web-stable endpoints %s", got)
		}
		if got := counts(endpointsByImage(t, ns, "web-canary")); got != "web:2=1" {
			return fmt.Errorf("web-canary endpoints %s", got)
		}
		return nil
	})
	annotate(t, ro, deliveryv1.PromoteAnnotation)
	waitRollout(t, ro, "paused at step 3", atStep(3))
	if got := routeWeights(t, ns, "web"); got != "web-stable=50 web-canary=50" {
		t.Errorf("route %s at 50%%", got)
	}
	annotate(t, ro, deliveryv1.PromoteAnnotation)
	waitRollout(t, ro, "healthy on web:2", func(ro *deliveryv1.Rollout) error {
		if err := healthy(ro); err != nil {
			return err
		}
		if ro.Status.StableRevision.PodTemplateHash == "" || ro.Status.CanaryRevision != nil {
			return fmt.Errorf("stable %+v canary %+v", ro.Status.StableRevision, ro.Status.CanaryRevision)
		}
		return nil
	})
	waitFor(t, "all on the new stable", func() error {
		if got := routeWeights(t, ns, "web"); got != "web-stable=100 web-canary=0" {
			return fmt.Errorf("route %s", got)
		}
		if got := counts(endpointsByImage(t, ns, "web-stable")); got != "web:2=4" {
			return fmt.Errorf("web-stable endpoints %s", got)
		}
		return nil
	})
	svc := &corev1.Service{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web-canary"}, svc); err != nil {
		t.Fatal(err)
	}
	if svc.Labels[deliveryv1.RolloutNameLabel] != "web" || len(svc.OwnerReferences) != 1 || svc.OwnerReferences[0].Kind != "Rollout" {
		t.Errorf("web-canary labels %v owners %v", svc.Labels, svc.OwnerReferences)
	}
}

// TestGatewayAPIServiceConflict: a Rollout does not take over a Service
// named like the ones it manages (`<service>-canary`) that someone else
// created: it is refused with ResourceConflict naming it, and neither that
// Service nor the route changes.
func TestGatewayAPIServiceConflict(t *testing.T) {
	installHTTPRouteCRD(t)
	startManager(t)
	ns := namespace(t)
	ro := canaryRollout(ns, "pre", "pre", weight(20))
	ro.Spec.Strategy.Canary.TrafficRouting = &deliveryv1.TrafficRouting{GatewayAPI: &deliveryv1.GatewayAPIRouting{HTTPRoutes: []string{"pre"}}}
	squatter := service(ns, "pre-canary", map[string]string{"app": "someone-else"})
	create(t, deployment(ns, "pre", 1, "pre:1"), service(ns, "pre", map[string]string{"app": "pre"}), httpRoute(ns, "pre", "pre"), squatter, ro)
	notReady(t, ro, deliveryv1.ReasonResourceConflict, "Service "+ns+"/pre-canary")
	get(t, squatter)
	if squatter.Spec.Selector["app"] != "someone-else" || len(squatter.OwnerReferences) != 0 {
		t.Errorf("the squatter's Service changed: selector %v owners %v", squatter.Spec.Selector, squatter.OwnerReferences)
	}
	if got := routeWeights(t, ns, "pre"); got != "pre=1" {
		t.Errorf("route changed: %s", got)
	}
}
