package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// providerCRD is a CRD a provider installed, with objects of its own.
const providerCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.prov.test.strata.dev}
spec:
  group: prov.test.strata.dev
  names: {kind: Widget, plural: widgets, listKind: WidgetList, singular: widget}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`

func applyAs(t *testing.T, manager, y string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Patch(context.Background(), u, client.Apply, client.FieldOwner(manager), client.ForceOwnership); err != nil {
		t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// TestXRDDoesNotTakeOverAForeignCRD is hole 7: an XRD naming the kind of a
// provider's CRD must neither change that CRD nor delete it with itself.
func TestXRDDoesNotTakeOverAForeignCRD(t *testing.T) {
	ctx := context.Background()
	widgetGVK := schema.GroupVersionKind{Group: "prov.test.strata.dev", Version: "v1", Kind: "Widget"}
	applyAs(t, "provider-widgets", providerCRD)
	eventually(t, 30*time.Second, "Widget served", func() error {
		if _, err := get(widgetGVK, "", "none"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("not served: %v", err)
		}
		return nil
	})
	applyAs(t, "provider-widgets", "{apiVersion: prov.test.strata.dev/v1, kind: Widget, metadata: {name: w1}, spec: {size: 3}}")
	crdBefore, err := get(crdGVK, "", "widgets.prov.test.strata.dev")
	if err != nil {
		t.Fatal(err)
	}

	apply(t, `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: widgets.prov.test.strata.dev}
spec:
  group: prov.test.strata.dev
  names: {kind: Widget, plural: widgets}
  versions:
  - name: v1
    served: true
    referenceable: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              colour: {type: string}
`)
	eventually(t, 30*time.Second, "XRD reports the conflict", func() error {
		x, err := get(xrdGVK, "", "widgets.prov.test.strata.dev")
		if err != nil {
			return err
		}
		s, r, m := condition(x, "Established")
		if s != "False" || r != "CRDConflict" {
			return fmt.Errorf("Established=%s %s %q", s, r, m)
		}
		for _, w := range []string{"CustomResourceDefinition widgets.prov.test.strata.dev already exists", "provider-widgets", "CompositeResourceDefinition widgets.prov.test.strata.dev does not modify it"} {
			if !strings.Contains(m, w) {
				return fmt.Errorf("message %q does not say %q", m, w)
			}
		}
		if s, r, _ := condition(x, "Stalled"); s != "True" || r != "CRDConflict" {
			return fmt.Errorf("Stalled=%s %s", s, r)
		}
		return nil
	})
	assertProviderIntact := func(when string) {
		t.Helper()
		crd, err := get(crdGVK, "", "widgets.prov.test.strata.dev")
		if err != nil {
			t.Fatalf("%s: provider CRD: %v", when, err)
		}
		if crd.GetUID() != crdBefore.GetUID() || crd.GetGeneration() != crdBefore.GetGeneration() || len(crd.GetOwnerReferences()) != 0 || crd.GetLabels()["strata.dev/xrd"] != "" {
			t.Errorf("%s: provider CRD changed: uid %s->%s generation %d->%d owners %v labels %v", when,
				crdBefore.GetUID(), crd.GetUID(), crdBefore.GetGeneration(), crd.GetGeneration(), crd.GetOwnerReferences(), crd.GetLabels())
		}
		w, err := get(widgetGVK, "", "w1")
		if err != nil {
			t.Fatalf("%s: provider object: %v", when, err)
		}
		if size, _, _ := unstructured.NestedInt64(w.Object, "spec", "size"); size != 3 {
			t.Errorf("%s: widget spec = %v", when, w.Object["spec"])
		}
	}
	assertProviderIntact("while the XRD exists")
	if slices.Contains(engine.Running(), widgetGVK) {
		t.Errorf("the engine reconciles the provider's kind: %v", engine.Running())
	}

	// Deleting the XRD neither waits for the provider's objects nor deletes
	// the provider's CRD.
	x, _ := get(xrdGVK, "", "widgets.prov.test.strata.dev")
	if err := env.Client.Delete(ctx, x); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "XRD deleted", func() error {
		if _, err := get(xrdGVK, "", "widgets.prov.test.strata.dev"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("XRD still there: %v", err)
		}
		return nil
	})
	assertProviderIntact("after the XRD is deleted")
}

const tempXRD = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xtemps.test.strata.dev}
spec:
  group: test.strata.dev
  names: {kind: XTemp, plural: xtemps}
  claimNames: {kind: Temp, plural: temps}
  versions:
  - {name: v1alpha1, served: true, referenceable: %t}
  - {name: v1beta1, served: %t, referenceable: %t}
`

// TestEngineStopsTheControllersOfAnXRD is issue 9: changing the referenced
// version replaces an XRD's controllers, deleting the XRD stops them, and an
// object of a CRD re-created under the same name is reconciled by no one.
func TestEngineStopsTheControllersOfAnXRD(t *testing.T) {
	ctx := context.Background()
	gv1 := schema.GroupVersion{Group: "test.strata.dev", Version: "v1alpha1"}
	gv2 := schema.GroupVersion{Group: "test.strata.dev", Version: "v1beta1"}
	waitRunning := func(what string, want, notWant []schema.GroupVersionKind) {
		t.Helper()
		eventually(t, 30*time.Second, what, func() error {
			run := engine.Running()
			for _, w := range want {
				if !slices.Contains(run, w) {
					return fmt.Errorf("%s not running: %v", w, run)
				}
			}
			for _, w := range notWant {
				if slices.Contains(run, w) {
					return fmt.Errorf("%s still running: %v", w, run)
				}
			}
			return nil
		})
	}
	v1 := []schema.GroupVersionKind{gv1.WithKind("XTemp"), gv1.WithKind("Temp")}
	v2 := []schema.GroupVersionKind{gv2.WithKind("XTemp"), gv2.WithKind("Temp")}
	apply(t, fmt.Sprintf(tempXRD, true, true, false))
	waitRunning("v1alpha1 controllers", v1, v2)
	apply(t, fmt.Sprintf(tempXRD, false, true, true))
	waitRunning("v1beta1 controllers replace them", v2, v1)
	// A referenceable version that is not served stops them.
	apply(t, fmt.Sprintf(tempXRD, false, false, true))
	eventually(t, 30*time.Second, "unserved referenceable version refused", func() error {
		x, err := get(xrdGVK, "", "xtemps.test.strata.dev")
		if err != nil {
			return err
		}
		if s, r, m := condition(x, "Established"); s != "False" || r != "InvalidSchema" || !strings.Contains(m, "version v1beta1 is referenceable but not served") {
			return fmt.Errorf("Established=%s %s %q", s, r, m)
		}
		return nil
	})
	waitRunning("no controllers for an unserved version", nil, append(v1, v2...))
	apply(t, fmt.Sprintf(tempXRD, false, true, true))
	waitRunning("served again", v2, v1)

	x, _ := get(xrdGVK, "", "xtemps.test.strata.dev")
	if err := env.Client.Delete(ctx, x); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "XRD and its CRD deleted", func() error {
		if _, err := get(xrdGVK, "", "xtemps.test.strata.dev"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("XRD still there: %v", err)
		}
		if _, err := get(crdGVK, "", "xtemps.test.strata.dev"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("CRD still there: %v", err)
		}
		return nil
	})
	waitRunning("no controllers after deletion", nil, append(v1, v2...))

	// Someone re-creates the CRD by hand: its objects are left alone (a
	// controller still running would add its finalizer at once).
	applyAs(t, "someone", `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: xtemps.test.strata.dev}
spec:
  group: test.strata.dev
  names: {kind: XTemp, plural: xtemps, listKind: XTempList, singular: xtemp}
  scope: Cluster
  versions:
  - {name: v1beta1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
`)
	// The dynamic client names the resource itself: the test client's
	// RESTMapper may still remember the kind as gone.
	xtemps := dynamic.NewForConfigOrDie(env.Config).Resource(gv2.WithResource("xtemps"))
	eventually(t, 30*time.Second, "hand-made XTemp created", func() error {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": gv2.String(), "kind": "XTemp", "metadata": map[string]any{"name": "orphan"}, "spec": map[string]any{"compositionRef": map[string]any{"name": "none"}}}}
		if _, err := xtemps.Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		o, err := xtemps.Get(ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(o.GetFinalizers()) > 0 || o.Object["status"] != nil {
			t.Fatalf("a stopped controller reconciled the re-created kind: finalizers %v status %v", o.GetFinalizers(), o.Object["status"])
		}
		time.Sleep(200 * time.Millisecond)
	}
	crd, _ := get(crdGVK, "", "xtemps.test.strata.dev")
	if err := env.Client.Delete(ctx, crd); err != nil {
		t.Fatal(err)
	}
}
