package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/composition/controller"
	"github.com/strata-dev/strata/internal/kit/ssa"
)

const connXRD = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xconns.test.strata.dev}
spec:
  group: test.strata.dev
  names: {kind: XConn, plural: xconns}
  claimNames: {kind: Conn, plural: conns}
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

const connComposition = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: conn}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XConn}
  resources:
  - name: cfg
    template: {apiVersion: v1, kind: ConfigMap, data: {value: "${xr.spec.value}"}}
  connectionDetails:
    password: "${xr.spec.value}"
`

func setupConn(t *testing.T, ns string) {
	t.Helper()
	apply(t, connXRD)
	apply(t, connComposition)
	waitValid(t, "composition conn valid", "conn", "True")
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1ObjectMeta(ns)}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "Conn kind served", func() error {
		if _, err := get(connGVK, ns, "none"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("not served: %v", err)
		}
		return nil
	})
}

var connGVK = schema.GroupVersionKind{Group: "test.strata.dev", Version: "v1alpha1", Kind: "Conn"}

// pauseXR sets or removes the XR's paused annotation.
func pauseXR(t *testing.T, name string, paused bool) {
	t.Helper()
	xr := &unstructured.Unstructured{}
	xr.SetGroupVersionKind(connGVK.GroupVersion().WithKind("XConn"))
	xr.SetName(name)
	v := any(nil)
	if paused {
		v = "true"
	}
	p, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{controller.AnnotationPaused: v}}})
	if err := env.Client.Patch(context.Background(), xr, client.RawPatch(types.MergePatchType, p)); err != nil {
		t.Fatal(err)
	}
}

// TestClaimCannotPublishToAForeignSecret is the hostile claimant of the
// connection-Secret publisher: a claim points writeConnectionSecretToRef at
// a Secret of its namespace that another controller owns. The XR reports
// ResourceConflict naming the Secret and its owner, the Secret keeps its
// values and owner, and deleting the claim leaves it in place.
func TestClaimCannotPublishToAForeignSecret(t *testing.T) {
	ctx := context.Background()
	ns := "conn-hostile"
	setupConn(t, ns)
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "victim-app"}}
	if err := env.Client.Create(ctx, owner); err != nil {
		t.Fatal(err)
	}
	yes := true
	victim := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "victim-creds",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "victim-app", UID: owner.UID, Controller: &yes}}},
		Data: map[string][]byte{"password": []byte("victim-pw-1234")}}
	if err := env.Client.Create(ctx, victim, client.FieldOwner("victim-app")); err != nil {
		t.Fatal(err)
	}
	apply(t, fmt.Sprintf("{apiVersion: test.strata.dev/v1alpha1, kind: Conn, metadata: {name: grab, namespace: %s}, spec: {compositionRef: {name: conn}, value: attacker-pw-5678, writeConnectionSecretToRef: {name: victim-creds}}}", ns))
	xrGVK := connGVK.GroupVersion().WithKind("XConn")
	xrName := controllerXRName(ns, "grab")
	eventually(t, 30*time.Second, "XR reports the conflict", func() error {
		xr, err := get(xrGVK, "", xrName)
		if err != nil {
			return err
		}
		s, r, m := condition(xr, "Synced")
		if s != "False" || r != "ResourceConflict" || !strings.Contains(m, "Secret "+ns+"/victim-creds") || !strings.Contains(m, "ConfigMap victim-app") {
			return fmt.Errorf("Synced=%s %s %q", s, r, m)
		}
		if strings.Contains(m, "pw-") {
			t.Errorf("the condition shows a value: %q", m)
		}
		return nil
	})
	waitWarning(t, xrName, "ResourceConflict")
	// The XR's own resource is composed all the same.
	if _, err := get(cmGVK, ns, xrName+"-cfg"); err != nil {
		t.Fatalf("the XR's ConfigMap is not composed: %v", err)
	}
	assertSecret := func() {
		t.Helper()
		got := &corev1.Secret{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(victim), got); err != nil {
			t.Fatalf("victim Secret: %v", err)
		}
		if string(got.Data["password"]) != "victim-pw-1234" || len(got.Data) != 1 || len(got.OwnerReferences) != 1 || got.OwnerReferences[0].UID != owner.UID {
			t.Errorf("victim Secret changed: keys %d owners %+v", len(got.Data), got.OwnerReferences)
		}
		for _, f := range got.ManagedFields {
			if strings.HasPrefix(f.Manager, "strata") {
				t.Errorf("victim Secret has fields of %s", f.Manager)
			}
		}
	}
	assertSecret()
	deleteClaimAndWait(t, connGVK, ns, "grab")
	eventually(t, 30*time.Second, "XR deleted", func() error {
		if _, err := get(xrGVK, "", xrName); !apierrors.IsNotFound(err) {
			return fmt.Errorf("XR still there: %v", err)
		}
		return nil
	})
	assertSecret()
}

// TestCompositeMigratesSharedFieldManager: a composed resource whose fields
// an older Strata applied with the shared "strata" field manager moves to
// the XR's own manager on the XR's next apply: the old entry is gone, the
// XR's owns the fields, and a field only the old manager set (no longer in
// the template) is removed instead of staying orphaned.
func TestCompositeMigratesSharedFieldManager(t *testing.T) {
	ctx := context.Background()
	ns := "conn-migrate"
	setupConn(t, ns)
	apply(t, fmt.Sprintf("{apiVersion: test.strata.dev/v1alpha1, kind: Conn, metadata: {name: app, namespace: %s}, spec: {compositionRef: {name: conn}, value: one, writeConnectionSecretToRef: {name: app-conn}}}", ns))
	xrName := controllerXRName(ns, "app")
	var cm *unstructured.Unstructured
	eventually(t, 30*time.Second, "ConfigMap and connection Secret composed", func() error {
		var err error
		if cm, err = get(cmGVK, ns, xrName+"-cfg"); err != nil {
			return err
		}
		s := &corev1.Secret{}
		return env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "app-conn"}, s)
	})
	xrManager := ""
	for _, f := range cm.GetManagedFields() {
		if strings.HasPrefix(f.Manager, "strata/") {
			xrManager = f.Manager
		}
	}
	if xrManager == "" {
		t.Fatalf("no per-XR field manager on the composed ConfigMap: %s", managerNames(cm.GetManagedFields()))
	}
	// Make the object what an older Strata left: every field written by
	// the shared "strata" manager, one of them no longer in the template,
	// and no entry of the XR's own manager. The XR is paused meanwhile.
	pauseXR(t, xrName, true)
	eventually(t, 30*time.Second, "XR paused", func() error {
		xr, err := get(connGVK.GroupVersion().WithKind("XConn"), "", xrName)
		if err != nil {
			return err
		}
		if s, r, _ := condition(xr, "Synced"); r != "ReconciliationPaused" {
			return fmt.Errorf("Synced=%s %s", s, r)
		}
		return nil
	})
	for _, obj := range []*unstructured.Unstructured{cm, secretAsUnstructured(t, ns, "app-conn")} {
		legacy := &unstructured.Unstructured{Object: map[string]any{"apiVersion": obj.GetAPIVersion(), "kind": obj.GetKind(),
			"metadata": map[string]any{"name": obj.GetName(), "namespace": ns, "labels": toAny(obj.GetLabels()), "ownerReferences": ownerRefs(t, obj)}}}
		if obj.GetKind() == "Secret" {
			legacy.Object["data"] = map[string]any{"password": "b25l", "gone": "eA=="}
		} else {
			legacy.Object["data"] = map[string]any{"value": "one", "gone": "x"}
		}
		if err := ssa.Apply(ctx, env.Client, legacy, ssa.Options{FieldManager: ssa.LegacyFieldManager, Policy: ssa.Force}); err != nil {
			t.Fatal(err)
		}
		dropManager(t, legacy, xrManager)
	}
	pauseXR(t, xrName, false)
	for _, kind := range []string{"ConfigMap", "Secret"} {
		name := xrName + "-cfg"
		if kind == "Secret" {
			name = "app-conn"
		}
		eventually(t, 30*time.Second, kind+" moved to the XR's field manager", func() error {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("v1")
			u.SetKind(kind)
			if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, u); err != nil {
				return err
			}
			if _, gone, _ := unstructured.NestedString(u.Object, "data", "gone"); gone {
				return fmt.Errorf("data.gone is still there (orphaned by the old manager); managers %s", managerNames(u.GetManagedFields()))
			}
			for _, f := range u.GetManagedFields() {
				if f.Manager == ssa.LegacyFieldManager {
					return fmt.Errorf("the shared manager still has an entry: %s", managerNames(u.GetManagedFields()))
				}
			}
			if !ssa.HasApplyEntry(u, xrManager) {
				return fmt.Errorf("no entry of %s: %s", xrManager, managerNames(u.GetManagedFields()))
			}
			return nil
		})
	}
	// The XR's own manager now owns the fields: a change reaches them.
	apply(t, fmt.Sprintf("{apiVersion: test.strata.dev/v1alpha1, kind: Conn, metadata: {name: app, namespace: %s}, spec: {compositionRef: {name: conn}, value: two, writeConnectionSecretToRef: {name: app-conn}}}", ns))
	eventually(t, 30*time.Second, "change applied", func() error {
		u, err := get(cmGVK, ns, xrName+"-cfg")
		if err != nil {
			return err
		}
		if v, _, _ := unstructured.NestedString(u.Object, "data", "value"); v != "two" {
			return fmt.Errorf("data.value = %q", v)
		}
		return nil
	})
}

func secretAsUnstructured(t *testing.T, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Secret")
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

func toAny(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func ownerRefs(t *testing.T, u *unstructured.Unstructured) []any {
	t.Helper()
	refs, _, _ := unstructured.NestedSlice(u.Object, "metadata", "ownerReferences")
	return refs
}

// dropManager removes manager's entries from obj's managedFields, as if it
// had never written the object.
func dropManager(t *testing.T, obj *unstructured.Unstructured, manager string) {
	t.Helper()
	ctx := context.Background()
	live := obj.DeepCopy()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
		t.Fatal(err)
	}
	var keep []metav1.ManagedFieldsEntry
	for _, f := range live.GetManagedFields() {
		if f.Manager != manager {
			keep = append(keep, f)
		}
	}
	p, _ := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/resourceVersion", "value": live.GetResourceVersion()},
		{"op": "replace", "path": "/metadata/managedFields", "value": keep},
	})
	if err := env.Client.Patch(ctx, live, client.RawPatch(types.JSONPatchType, p)); err != nil {
		t.Fatal(err)
	}
}

func managerNames(fs []metav1.ManagedFieldsEntry) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Manager+"/"+string(f.Operation))
	}
	return strings.Join(out, ", ")
}
