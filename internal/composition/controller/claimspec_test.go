package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/strata-dev/strata/internal/composition/controller"
)

const pingXRD = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xpings.spec.strata.dev}
spec:
  group: spec.strata.dev
  names: {kind: XPing, plural: xpings}
  claimNames: {kind: Ping, plural: pings}
  versions:
  - name: v1alpha1
    served: true
    referenceable: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {value: {type: string}}}
`

const pingComposition = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: ping}
spec:
  compositeTypeRef: {apiVersion: spec.strata.dev/v1alpha1, kind: XPing}
  resources:
  - name: cm
    template: {apiVersion: v1, kind: ConfigMap, data: {value: "${xr.spec.value}"}}
`

// TestClaimSpecIsTheUsers: the controller never writes a claim's spec (a
// GitOps tool that applied the claim sees no drift, and its generation
// moves only when its user changes it); the XR it is bound to shows in
// status.resourceRef, and the only field the controller owns on the claim
// itself is its finalizer. A status.resourceRef someone else wrote binds
// and deletes nothing.
func TestClaimSpecIsTheUsers(t *testing.T) {
	ctx := context.Background()
	gvk := schema.GroupVersionKind{Group: "spec.strata.dev", Version: "v1alpha1", Kind: "Ping"}
	apply(t, pingXRD)
	apply(t, pingComposition)
	waitValid(t, "composition ping valid", "ping", "True")
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1ObjectMeta("team-ping")}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "Ping kind served", func() error {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"value": "v"}}}
		u.SetGroupVersionKind(gvk)
		u.SetNamespace("team-ping")
		u.SetName("a")
		return env.Client.Create(ctx, u)
	})
	xrName := controller.XRName("team-ping", "a")
	eventually(t, 30*time.Second, "claim Ready", func() error {
		c, err := get(gvk, "team-ping", "a")
		if err != nil {
			return err
		}
		if s, r, m := condition(c, "Ready"); s != "True" {
			return fmt.Errorf("Ready=%s %s %q", s, r, m)
		}
		return nil
	})
	c, err := get(gvk, "team-ping", "a")
	if err != nil {
		t.Fatal(err)
	}
	if ref, _, _ := unstructured.NestedStringMap(c.Object, "status", "resourceRef"); ref["name"] != xrName || ref["kind"] != "XPing" || ref["apiVersion"] != "spec.strata.dev/v1alpha1" {
		t.Errorf("status.resourceRef = %v, want XPing %s", ref, xrName)
	}
	if spec, _, _ := unstructured.NestedMap(c.Object, "spec"); len(spec) != 1 || spec["value"] != "v" || c.GetGeneration() != 1 {
		t.Errorf("the claim's spec was written: generation %d, spec %v", c.GetGeneration(), spec)
	}
	if !slices.Contains(c.GetFinalizers(), controller.FinalizerClaim) {
		t.Errorf("finalizers %v", c.GetFinalizers())
	}
	for _, mf := range c.GetManagedFields() {
		if mf.Subresource == "" && strings.HasPrefix(mf.Manager, "strata") && mf.FieldsV1 != nil && strings.Contains(string(mf.FieldsV1.Raw), `"f:spec"`) {
			t.Errorf("%s owns fields of the claim's spec: %s", mf.Manager, mf.FieldsV1.Raw)
		}
	}
	// The attack: a tenant who may write its claim's status points
	// status.resourceRef at another claim's XR. The controller never binds
	// or deletes by it: it writes its own record back, and deleting the
	// claim leaves the other XR alone.
	victim := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"value": "victim"}}}
	victim.SetGroupVersionKind(gvk)
	victim.SetNamespace("team-ping")
	victim.SetName("victim")
	if err := env.Client.Create(ctx, victim); err != nil {
		t.Fatal(err)
	}
	victimXR := controller.XRName("team-ping", "victim")
	eventually(t, 30*time.Second, "victim claim Ready", func() error {
		v, err := get(gvk, "team-ping", "victim")
		if err != nil {
			return err
		}
		if s, r, m := condition(v, "Ready"); s != "True" {
			return fmt.Errorf("Ready=%s %s %q", s, r, m)
		}
		return nil
	})
	_ = unstructured.SetNestedField(c.Object, victimXR, "status", "resourceRef", "name")
	if err := env.Client.Status().Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	// A change of the claim's spec brings the controller back at once.
	_ = unstructured.SetNestedField(c.Object, "v2", "spec", "value")
	if err := env.Client.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the controller's record written back", func() error {
		c, err := get(gvk, "team-ping", "a")
		if err != nil {
			return err
		}
		if ref, _, _ := unstructured.NestedString(c.Object, "status", "resourceRef", "name"); ref != xrName {
			return fmt.Errorf("status.resourceRef.name = %q", ref)
		}
		return nil
	})
	deleteClaimAndWait(t, gvk, "team-ping", "a")
	if v, err := get(schema.GroupVersionKind{Group: "spec.strata.dev", Version: "v1alpha1", Kind: "XPing"}, "", victimXR); err != nil || v.GetDeletionTimestamp() != nil {
		t.Errorf("the other claim's XR after the attacker's claim was deleted: %v (deleting: %v)", err, v.GetDeletionTimestamp())
	}
	deleteClaimAndWait(t, gvk, "team-ping", "victim")
	eventually(t, 30*time.Second, "XR deleted with its claim", func() error {
		if _, err := get(schema.GroupVersionKind{Group: "spec.strata.dev", Version: "v1alpha1", Kind: "XPing"}, "", xrName); !apierrors.IsNotFound(err) {
			return fmt.Errorf("XR: %v", err)
		}
		return nil
	})
}
