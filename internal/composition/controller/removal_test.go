package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/composition/controller"
)

const removalXRD = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xremovals.test.strata.dev}
spec:
  group: test.strata.dev
  names: {kind: XRemoval, plural: xremovals}
  claimNames: {kind: Removal, plural: removals}
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

const removalComp = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: removal}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XRemoval}
  resources:
  - name: cm
    template: {apiVersion: v1, kind: ConfigMap, data: %s}
`

// TestFieldLeavingTheTemplateIsRemoved: the engine skips applies that would
// change nothing, but an apply that would remove a field the XR applied
// before is not such an apply.
func TestFieldLeavingTheTemplateIsRemoved(t *testing.T) {
	ctx := context.Background()
	apply(t, removalXRD)
	apply(t, fmt.Sprintf(removalComp, `{value: "${xr.spec.value}", old: "1"}`))
	waitValid(t, "composition valid", "removal", "True")
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1ObjectMeta("removal")}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	apply(t, `{apiVersion: test.strata.dev/v1alpha1, kind: Removal, metadata: {name: r, namespace: removal}, spec: {value: v}}`)
	name := controller.XRName("removal", "r") + "-cm"
	data := func() (map[string]string, error) {
		cm := &corev1.ConfigMap{}
		err := env.Client.Get(ctx, clientKey("removal", name), cm)
		return cm.Data, err
	}
	eventually(t, 30*time.Second, "ConfigMap with old", func() error {
		d, err := data()
		if err != nil {
			return err
		}
		if d["old"] != "1" || d["value"] != "v" {
			return fmt.Errorf("data %v", d)
		}
		return nil
	})
	apply(t, fmt.Sprintf(removalComp, `{value: "${xr.spec.value}"}`))
	eventually(t, 30*time.Second, "old removed", func() error {
		d, err := data()
		if err != nil {
			return err
		}
		if _, ok := d["old"]; ok || d["value"] != "v" {
			return fmt.Errorf("data %v, want only value", d)
		}
		return nil
	})
	claim := &unstructured.Unstructured{}
	claim.SetGroupVersionKind(claimGVK.GroupVersion().WithKind("Removal"))
	claim.SetNamespace("removal")
	claim.SetName("r")
	if err := env.Client.Delete(ctx, claim); err != nil {
		t.Fatal(err)
	}
}

func clientKey(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
