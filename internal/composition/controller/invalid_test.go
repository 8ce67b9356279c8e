package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/composition/controller"
)

const cacheXRD = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xcaches.test.strata.dev}
spec:
  group: test.strata.dev
  names: {kind: XCache, plural: xcaches}
  claimNames: {kind: Cache, plural: caches}
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
              size: {type: integer, minimum: 1}
`

func TestInvalidCompositionKeepsRunningXRs(t *testing.T) {
	ctx := context.Background()
	apply(t, cacheXRD)
	cacheGVK := schema.GroupVersionKind{Group: "test.strata.dev", Version: "v1alpha1", Kind: "Cache"}
	good := `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: cache}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XCache}
  resources:
  - name: cfg
    template: {apiVersion: v1, kind: ConfigMap, data: {size: "${string(xr.spec.size)}"}}
`
	apply(t, good)
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1ObjectMeta("team-b")}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "Cache kind served", func() error {
		_, err := get(cacheGVK, "team-b", "none")
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("kind not served yet: %v", err)
	})
	// A claim that violates the schema is refused by the API server.
	bad := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "test.strata.dev/v1alpha1", "kind": "Cache",
		"metadata": map[string]any{"name": "bad", "namespace": "team-b"}, "spec": map[string]any{"size": int64(0)}}}
	if err := env.Client.Create(ctx, bad); err == nil || !strings.Contains(err.Error(), "spec.size") {
		t.Errorf("claim with size 0: err = %v, want a schema error naming spec.size", err)
	}
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Cache, metadata: {name: c1, namespace: team-b}, spec: {size: 2}}")
	xrName := controller.XRName("team-b", "c1")
	eventually(t, 30*time.Second, "claim ready", func() error {
		c, err := get(claimGVK.GroupVersion().WithKind("Cache"), "team-b", "c1")
		if err != nil {
			return err
		}
		if s, _, m := condition(c, "Ready"); s != "True" {
			return fmt.Errorf("Ready=%s %q", s, m)
		}
		return nil
	})

	// The Composition changes to a wrong field: it is reported and the XR
	// keeps its last valid revision.
	apply(t, strings.Replace(good, "xr.spec.size", "xr.spec.sise", 1))
	eventually(t, 30*time.Second, "composition invalid", func() error {
		c, err := get(compGVK, "", "cache")
		if err != nil {
			return err
		}
		s, r, m := condition(c, "Valid")
		if s != "False" || r != "CompositionInvalid" {
			return fmt.Errorf("Valid=%s %s %q", s, r, m)
		}
		for _, want := range []string{`resource "cfg"`, "template.data.size", `"string(xr.spec.sise)"`, "undefined field 'sise'"} {
			if !strings.Contains(m, want) {
				return fmt.Errorf("message %q does not name %s", m, want)
			}
		}
		return nil
	})
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Cache, metadata: {name: c1, namespace: team-b}, spec: {size: 3}}")
	eventually(t, 30*time.Second, "running XR keeps the last valid revision", func() error {
		cm, err := get(cmGVK, "team-b", xrName+"-cfg")
		if err != nil {
			return err
		}
		if v, _, _ := unstructured.NestedString(cm.Object, "data", "size"); v != "3" {
			return fmt.Errorf("size = %q", v)
		}
		return nil
	})

	// A claim of a Composition that was never valid says why.
	apply(t, `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: cache-broken}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XCache}
  resources:
  - name: cfg
    template: {apiVersion: v1, kind: ConfigMap, data: {size: "${xr.spec.size +}"}}
`)
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Cache, metadata: {name: c2, namespace: team-b}, spec: {size: 1, compositionRef: {name: cache-broken}}}")
	eventually(t, 30*time.Second, "claim reports the bad expression", func() error {
		c, err := get(claimGVK.GroupVersion().WithKind("Cache"), "team-b", "c2")
		if err != nil {
			return err
		}
		s, r, m := condition(c, "Synced")
		if s != "False" || !strings.Contains(m, "template.data.size") || !strings.Contains(m, `"xr.spec.size +"`) {
			return fmt.Errorf("Synced=%s %s %q", s, r, m)
		}
		if s, _, _ := condition(c, "Stalled"); s != "True" {
			return fmt.Errorf("Stalled=%s", s)
		}
		return nil
	})
	for _, n := range []string{"c1", "c2"} {
		c, _ := get(claimGVK.GroupVersion().WithKind("Cache"), "team-b", n)
		if err := env.Client.Delete(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "claims gone", func() error {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(cacheGVK.GroupVersion().WithKind("CacheList"))
		if err := env.Client.List(ctx, l, client.InNamespace("team-b")); err != nil {
			return err
		}
		if len(l.Items) > 0 {
			return fmt.Errorf("%d claims remain", len(l.Items))
		}
		return nil
	})
}

func TestCompositionCheckedAgainstTargetSchema(t *testing.T) {
	apply(t, cacheXRD)
	apply(t, `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: cache-deploy}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XCache}
  resources:
  - name: deploy
    template:
      apiVersion: apps/v1
      kind: Deployment
      spec:
        replicas: ${xr.spec.size > 1}
`)
	waitValid(t, "wrong type for a Deployment field", "cache-deploy", "False",
		"template.spec.replicas", "expression gives bool, field wants integer")
	apply(t, `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: cache-deploy}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XCache}
  resources:
  - name: deploy
    template:
      apiVersion: apps/v1
      kind: Deployment
      spec:
        replica: ${xr.spec.size}
`)
	waitValid(t, "unknown Deployment field", "cache-deploy", "False", "Deployment has no field replica")
	apply(t, `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: cache-deploy}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XCache}
  resources:
  - name: deploy
    template:
      apiVersion: apps/v1
      kind: Deployment
      spec:
        replicas: ${xr.spec.size}
        template:
          spec:
            containers: [{name: c, image: "cache:${xr.spec.size}"}]
`)
	waitValid(t, "valid Deployment template", "cache-deploy", "True")
}

func TestInvalidXRDSchema(t *testing.T) {
	apply(t, `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xbads.test.strata.dev}
spec:
  group: test.strata.dev
  names: {kind: XBad, plural: xbads}
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
              compositionRef: {type: string}
`)
	eventually(t, 30*time.Second, "XRD reports the reserved field", func() error {
		x, err := get(xrdGVK, "", "xbads.test.strata.dev")
		if err != nil {
			return err
		}
		s, r, m := condition(x, "Established")
		if s != "False" || r != "InvalidSchema" || !strings.Contains(m, "spec.compositionRef is reserved") {
			return fmt.Errorf("Established=%s %s %q", s, r, m)
		}
		return nil
	})
}
