package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/testenv"
)

// The tenancy tests are attacks a claimant makes on objects that are not
// theirs. Each asserts the refusal, the reason on the composite and that the
// victim is unchanged and still there afterwards.

const tenantXRD = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xtenants.test.strata.dev}
spec:
  group: test.strata.dev
  names: {kind: XTenant, plural: xtenants}
  claimNames: {kind: Tenant, plural: tenants}
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
              name: {type: string}
              namespace: {type: string}
              value: {type: string}
`

// Compositions for XTenant: each takes a name or namespace from the claim.
const tenantCompositions = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: tenant-anywhere}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XTenant}
  resources:
  - name: target
    allowedNamespaces: ["*"]
    template:
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: "${xr.spec.name}", namespace: "${xr.spec.namespace}"}
      data: {value: "${xr.spec.value}"}
  - name: own
    template: {apiVersion: v1, kind: ConfigMap, data: {value: "${xr.spec.value}"}}
---
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: tenant-named}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XTenant}
  resources:
  - name: target
    template:
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: "${xr.spec.name}"}
      data: {value: "${xr.spec.value}"}
---
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: tenant-cluster}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XTenant}
  resources:
  - name: ns
    template:
      apiVersion: v1
      kind: Namespace
      metadata: {name: "${xr.spec.name}"}
`

var tenantGVK = schema.GroupVersionKind{Group: "test.strata.dev", Version: "v1alpha1", Kind: "Tenant"}

func setupTenants(t *testing.T, namespaces ...string) {
	t.Helper()
	ctx := context.Background()
	apply(t, tenantXRD)
	for _, doc := range strings.Split(tenantCompositions, "\n---\n") {
		apply(t, doc)
	}
	for _, c := range []string{"tenant-anywhere", "tenant-named", "tenant-cluster"} {
		waitValid(t, "composition "+c+" valid", c, "True")
	}
	for _, ns := range namespaces {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1ObjectMeta(ns)}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "Tenant kind served", func() error {
		if _, err := get(tenantGVK, "default", "none"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("not served: %v", err)
		}
		return nil
	})
}

func tenantClaim(ns, name, comp, spec string) string {
	return fmt.Sprintf("{apiVersion: test.strata.dev/v1alpha1, kind: Tenant, metadata: {name: %s, namespace: %s}, spec: {compositionRef: {name: %s}, %s}}", name, ns, comp, spec)
}

// waitXR waits until the XR of claim ns/name has condition typ with the
// status and reason, and a message containing every one of wants.
func waitXR(t *testing.T, what, ns, name, typ, status, reason string, wants ...string) *unstructured.Unstructured {
	t.Helper()
	var xr *unstructured.Unstructured
	eventually(t, 30*time.Second, what, func() error {
		var err error
		xr, err = get(schema.GroupVersionKind{Group: "test.strata.dev", Version: "v1alpha1", Kind: "XTenant"}, "", controllerXRName(ns, name))
		if err != nil {
			return err
		}
		s, r, m := condition(xr, typ)
		if s != status || r != reason {
			return fmt.Errorf("%s=%s %s %q", typ, s, r, m)
		}
		for _, w := range wants {
			if !strings.Contains(m, w) {
				return fmt.Errorf("%s=%s %s %q does not say %q", typ, s, r, m, w)
			}
		}
		return nil
	})
	return xr
}

func deleteClaimAndWait(t *testing.T, gvk schema.GroupVersionKind, ns, name string) {
	t.Helper()
	c, err := get(gvk, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "claim "+ns+"/"+name+" deleted", func() error {
		if _, err := get(gvk, ns, name); !apierrors.IsNotFound(err) {
			return fmt.Errorf("claim still there: %v", err)
		}
		return nil
	})
}

// assertVictim checks that the ConfigMap still exists with its data, no
// owner and no field written by Strata.
func assertVictim(t *testing.T, ns, name, value string) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		t.Fatalf("victim %s/%s: %v", ns, name, err)
	}
	if cm.Data["value"] != value || len(cm.OwnerReferences) != 0 || cm.DeletionTimestamp != nil {
		t.Errorf("victim %s/%s changed: data %v owners %v deleting %v", ns, name, cm.Data, cm.OwnerReferences, cm.DeletionTimestamp)
	}
	for _, f := range cm.ManagedFields {
		if strings.HasPrefix(f.Manager, "strata") {
			t.Errorf("victim %s/%s has fields of %s", ns, name, f.Manager)
		}
	}
}

func waitWarning(t *testing.T, xrName, reason string) {
	t.Helper()
	eventually(t, 30*time.Second, "Warning event "+reason+" on "+xrName, func() error {
		l := &eventsv1.EventList{}
		if err := env.Client.List(context.Background(), l); err != nil {
			return err
		}
		for _, e := range l.Items {
			if e.Regarding.Name == xrName && e.Type == corev1.EventTypeWarning && e.Reason == reason {
				return nil
			}
		}
		return fmt.Errorf("no %s Warning among %d events", reason, len(l.Items))
	})
}

// TestClaimCannotTakeOverExistingObject is the attack of issue 8 hole 1: a
// claim whose Composition takes a name and namespace from the claim names
// kube-system/victim. The XR reports ResourceConflict naming the object and
// its owner, composes its other resources, never writes the victim, and
// deleting the claim leaves the victim in place.
func TestClaimCannotTakeOverExistingObject(t *testing.T) {
	setupTenants(t, "ten-a")
	apply(t, "{apiVersion: v1, kind: ConfigMap, metadata: {name: victim, namespace: kube-system}, data: {value: original}}")
	apply(t, tenantClaim("ten-a", "grab", "tenant-anywhere", "name: victim, namespace: kube-system, value: pwned"))
	xrName := controllerXRName("ten-a", "grab")
	waitXR(t, "XR reports the conflict", "ten-a", "grab", "Synced", "False", "ResourceConflict",
		"ConfigMap kube-system/victim", "field managers test")
	waitXR(t, "XR stalled on the conflict", "ten-a", "grab", "Stalled", "True", "ResourceConflict")
	eventually(t, 30*time.Second, "claim reports the conflict", func() error {
		c, err := get(tenantGVK, "ten-a", "grab")
		if err != nil {
			return err
		}
		if s, r, m := condition(c, "Synced"); s != "False" || r != "ResourceConflict" || !strings.Contains(m, "kube-system/victim") {
			return fmt.Errorf("Synced=%s %s %q", s, r, m)
		}
		return nil
	})
	waitWarning(t, xrName, "ResourceConflict")
	// The other resource is composed all the same.
	if _, err := get(cmGVK, "ten-a", xrName+"-own"); err != nil {
		t.Fatalf("other resource not composed: %v", err)
	}
	assertVictim(t, "kube-system", "victim", "original")

	// An object that wears the XR's labels but is not controlled by it is
	// not the XR's to prune, neither as a resource that left the
	// Composition nor when the XR is deleted.
	apply(t, fmt.Sprintf("{apiVersion: v1, kind: ConfigMap, metadata: {name: decoy, namespace: ten-a, labels: {strata.dev/composite: %s, strata.dev/resource-name: gone}}, data: {value: decoy}}", xrName))
	apply(t, tenantClaim("ten-a", "grab", "tenant-anywhere", "name: victim, namespace: kube-system, value: pwned-again"))
	eventually(t, 30*time.Second, "XR reconciled the change", func() error {
		xr, err := get(schema.GroupVersionKind{Group: "test.strata.dev", Version: "v1alpha1", Kind: "XTenant"}, "", xrName)
		if err != nil {
			return err
		}
		og, _, _ := unstructured.NestedInt64(xr.Object, "status", "observedGeneration")
		if v, _, _ := unstructured.NestedString(xr.Object, "spec", "value"); v != "pwned-again" || og != xr.GetGeneration() {
			return fmt.Errorf("spec.value %q observedGeneration %d generation %d", v, og, xr.GetGeneration())
		}
		return nil
	})
	assertVictim(t, "ten-a", "decoy", "decoy")

	deleteClaimAndWait(t, tenantGVK, "ten-a", "grab")
	assertVictim(t, "kube-system", "victim", "original")
	assertVictim(t, "ten-a", "decoy", "decoy")
	if _, err := get(cmGVK, "ten-a", xrName+"-own"); !apierrors.IsNotFound(err) {
		t.Errorf("the XR's own resource is not deleted: %v", err)
	}
}

// TestReplacedObjectIsNotTakenOver: between the XR's read of a composed
// ConfigMap and its apply of a change, someone deletes the ConfigMap and
// makes another of the same name. The apply is refused (it names the UID it
// read); the XR then reports the new ConfigMap as a conflict and never
// writes it, and deleting the claim leaves it.
func TestReplacedObjectIsNotTakenOver(t *testing.T) {
	ctx := context.Background()
	setupTenants(t, "ten-r")
	apply(t, tenantClaim("ten-r", "swap", "tenant-named", "name: swapped, value: v1"))
	eventually(t, 30*time.Second, "ConfigMap composed", func() error {
		cm := &corev1.ConfigMap{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "ten-r", Name: "swapped"}, cm); err != nil {
			return err
		}
		if cm.Data["value"] != "v1" || len(cm.OwnerReferences) != 1 {
			return fmt.Errorf("data %v owners %v", cm.Data, cm.OwnerReferences)
		}
		return nil
	})
	swapped := testenv.ReplaceBefore(t, &hook, env.Client, testenv.BeforeApply, "/namespaces/ten-r/configmaps/swapped",
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ten-r", Name: "swapped"}, Data: map[string]string{"value": "theirs"}})
	apply(t, tenantClaim("ten-r", "swap", "tenant-named", "name: swapped, value: v2"))
	waitXR(t, "XR reports the replacement as a conflict", "ten-r", "swap", "Synced", "False", "ResourceConflict", "ConfigMap ten-r/swapped")
	if !swapped.Load() {
		t.Fatal("the XR never applied the change (the hook did not run)")
	}
	assertVictim(t, "ten-r", "swapped", "theirs")
	deleteClaimAndWait(t, tenantGVK, "ten-r", "swap")
	assertVictim(t, "ten-r", "swapped", "theirs")
}

// TestReplacedObjectIsNotPruned: a resource leaves the Composition, and
// right before the XR deletes the ConfigMap it composed, someone deletes it
// and makes another of the same name. The XR's delete names the UID it read
// and is refused: the new ConfigMap stays, with its data.
func TestReplacedObjectIsNotPruned(t *testing.T) {
	ctx := context.Background()
	setupTenants(t, "ten-p")
	const comp = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: tenant-prune}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XTenant}
  resources:
  - name: kept
    template: {apiVersion: v1, kind: ConfigMap, metadata: {name: kept}, data: {value: "${xr.spec.value}"}}
%s`
	apply(t, fmt.Sprintf(comp, `  - name: leaving
    template: {apiVersion: v1, kind: ConfigMap, metadata: {name: leaving}, data: {value: "${xr.spec.value}"}}`))
	waitValid(t, "composition tenant-prune valid", "tenant-prune", "True")
	apply(t, tenantClaim("ten-p", "prune", "tenant-prune", "value: v1"))
	eventually(t, 30*time.Second, "both ConfigMaps composed", func() error {
		for _, n := range []string{"kept", "leaving"} {
			cm := &corev1.ConfigMap{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "ten-p", Name: n}, cm); err != nil {
				return err
			}
			if len(cm.OwnerReferences) != 1 {
				return fmt.Errorf("%s has owners %v", n, cm.OwnerReferences)
			}
		}
		return nil
	})
	swapped := testenv.ReplaceBefore(t, &hook, env.Client, testenv.BeforeDelete, "/namespaces/ten-p/configmaps/leaving",
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ten-p", Name: "leaving"}, Data: map[string]string{"value": "theirs"}})
	apply(t, fmt.Sprintf(comp, ""))
	eventually(t, 30*time.Second, "the XR deleted what left the Composition", func() error {
		if !swapped.Load() {
			return fmt.Errorf("no delete of ConfigMap ten-p/leaving yet")
		}
		return nil
	})
	// The refused delete is retried; give the XR time to reconcile again.
	waitXR(t, "XR in sync again", "ten-p", "prune", "Synced", "True", "ReconcileSuccess")
	time.Sleep(2 * time.Second)
	assertVictim(t, "ten-p", "leaving", "theirs")
	deleteClaimAndWait(t, tenantGVK, "ten-p", "prune")
	assertVictim(t, "ten-p", "leaving", "theirs")
}

// TestAdoptionOnlyWhenHandedOver: an existing object is taken over only
// after its owner annotates it with strata.dev/adopt naming the XR.
func TestAdoptionOnlyWhenHandedOver(t *testing.T) {
	ctx := context.Background()
	setupTenants(t, "ten-e")
	xrName := controllerXRName("ten-e", "legacy")
	apply(t, "{apiVersion: v1, kind: ConfigMap, metadata: {name: legacy-config, namespace: ten-e}, data: {value: old}}")
	// A hand-over naming another XR does not count.
	apply(t, "{apiVersion: v1, kind: ConfigMap, metadata: {name: legacy-config, namespace: ten-e, annotations: {strata.dev/adopt: XTenant/someone-else}}, data: {value: old}}")
	apply(t, tenantClaim("ten-e", "legacy", "tenant-named", "name: legacy-config, value: new"))
	waitXR(t, "not handed over: conflict", "ten-e", "legacy", "Synced", "False", "ResourceConflict", "ConfigMap ten-e/legacy-config")
	assertVictim(t, "ten-e", "legacy-config", "old")

	// The owner hands it over; the next reconcile (here: a claim change)
	// adopts it.
	apply(t, fmt.Sprintf("{apiVersion: v1, kind: ConfigMap, metadata: {name: legacy-config, namespace: ten-e, annotations: {strata.dev/adopt: XTenant/%s}}, data: {value: old}}", xrName))
	apply(t, tenantClaim("ten-e", "legacy", "tenant-named", "name: legacy-config, value: newer"))
	waitXR(t, "adopted", "ten-e", "legacy", "Synced", "True", "ReconcileSuccess")
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "ten-e", Name: "legacy-config"}, cm); err != nil {
		t.Fatal(err)
	}
	ref := metav1.GetControllerOf(cm)
	if ref == nil || ref.Name != xrName || cm.Data["value"] != "newer" {
		t.Fatalf("not adopted: controller %v data %v", ref, cm.Data)
	}
	managers := map[string]bool{}
	for _, f := range cm.ManagedFields {
		managers[f.Manager] = true
	}
	if !managers["strata/xtenant/"+xrName] {
		t.Errorf("field managers %v lack the XR's own", managers)
	}
	// Once adopted, it is the XR's: deleting the claim deletes it.
	deleteClaimAndWait(t, tenantGVK, "ten-e", "legacy")
	eventually(t, 30*time.Second, "adopted object deleted with its XR", func() error {
		if _, err := get(cmGVK, "ten-e", "legacy-config"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
}

// TestClaimStaysInItsNamespace is hole 2: a claim renders a namespaced
// object into another namespace. Nothing is applied there until the
// platform team lists the namespace in allowedNamespaces.
func TestClaimStaysInItsNamespace(t *testing.T) {
	ctx := context.Background()
	setupTenants(t, "ten-b", "ten-c")
	apply(t, `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: tenant-elsewhere}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XTenant}
  resources:
  - name: target
    template:
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: "${xr.spec.name}", namespace: "${xr.spec.namespace}"}
      data: {value: "${xr.spec.value}"}
`)
	waitValid(t, "composition valid", "tenant-elsewhere", "True")
	apply(t, tenantClaim("ten-b", "escape", "tenant-elsewhere", "name: planted, namespace: ten-c, value: x"))
	waitXR(t, "namespace refused", "ten-b", "escape", "Synced", "False", "NamespaceNotAllowed",
		`ConfigMap ten-c/planted`, `claim's namespace "ten-b"`)
	if _, err := get(cmGVK, "ten-c", "planted"); !apierrors.IsNotFound(err) {
		t.Fatalf("object planted in another namespace: %v", err)
	}

	// The platform team allows ten-c explicitly: now it is composed.
	apply(t, `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: tenant-elsewhere}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XTenant}
  resources:
  - name: target
    allowedNamespaces: [ten-c]
    template:
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: "${xr.spec.name}", namespace: "${xr.spec.namespace}"}
      data: {value: "${xr.spec.value}"}
`)
	comp, err := get(compGVK, "", "tenant-elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	if l, _, _ := unstructured.NestedSlice(comp.Object, "spec", "resources"); len(l) != 1 || l[0].(map[string]any)["allowedNamespaces"] == nil {
		t.Fatalf("allowedNamespaces not stored: %v", l)
	}
	waitXR(t, "allowed namespace composed", "ten-b", "escape", "Synced", "True", "ReconcileSuccess")
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "ten-c", Name: "planted"}, cm); err != nil {
		t.Fatal(err)
	}
	deleteClaimAndWait(t, tenantGVK, "ten-b", "escape")
}

// TestClusterScopedClaimObjects: a cluster-scoped object composed for a
// claim carries the claim's identity, and another claim choosing the same
// name gets ResourceConflict instead of the object.
func TestClusterScopedClaimObjects(t *testing.T) {
	ctx := context.Background()
	setupTenants(t, "ten-f", "ten-g")
	apply(t, tenantClaim("ten-f", "first", "tenant-cluster", "name: shared-ns-f"))
	waitXR(t, "first composed", "ten-f", "first", "Ready", "True", "Available")
	ns := &corev1.Namespace{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "shared-ns-f"}, ns); err != nil {
		t.Fatal(err)
	}
	if ns.Labels["strata.dev/claim-name"] != "first" || ns.Labels["strata.dev/claim-namespace"] != "ten-f" {
		t.Errorf("claim identity labels: %v", ns.Labels)
	}
	rv := ns.ResourceVersion
	apply(t, tenantClaim("ten-g", "second", "tenant-cluster", "name: shared-ns-f"))
	waitXR(t, "second conflicts", "ten-g", "second", "Synced", "False", "ResourceConflict",
		"Namespace shared-ns-f", "XTenant "+controllerXRName("ten-f", "first"))
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "shared-ns-f"}, ns); err != nil {
		t.Fatal(err)
	}
	if ns.ResourceVersion != rv || ns.Labels["strata.dev/claim-namespace"] != "ten-f" {
		t.Errorf("the first claim's Namespace was written: rv %s→%s labels %v", rv, ns.ResourceVersion, ns.Labels)
	}
	// The second claim's deletion leaves the first's Namespace alone.
	deleteClaimAndWait(t, tenantGVK, "ten-g", "second")
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "shared-ns-f"}, ns); err != nil || ns.DeletionTimestamp != nil {
		t.Fatalf("first claim's Namespace after the second's deletion: %v %v", err, ns.DeletionTimestamp)
	}
}

// TestTwoWritersDoNotFight is issue 8 hole 9: two claims compose the same
// ConfigMap. The first keeps it; the second reports ResourceConflict and
// stops writing, so the object's resourceVersion stops changing.
func TestTwoWritersDoNotFight(t *testing.T) {
	ctx := context.Background()
	setupTenants(t, "ten-d")
	apply(t, tenantClaim("ten-d", "one", "tenant-named", "name: contested, value: one"))
	waitXR(t, "first ready", "ten-d", "one", "Ready", "True", "Available")
	apply(t, tenantClaim("ten-d", "two", "tenant-named", "name: contested, value: two"))
	waitXR(t, "second conflicts", "ten-d", "two", "Synced", "False", "ResourceConflict",
		"ConfigMap ten-d/contested", "XTenant "+controllerXRName("ten-d", "one"))
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "ten-d", Name: "contested"}, cm); err != nil {
		t.Fatal(err)
	}
	rv := cm.ResourceVersion
	// Make the second XR reconcile again, twice, and wait until it has.
	for _, v := range []string{"two-again", "two-thrice"} {
		apply(t, tenantClaim("ten-d", "two", "tenant-named", "name: contested, value: "+v))
		eventually(t, 30*time.Second, "second reconciled "+v, func() error {
			xr, err := get(schema.GroupVersionKind{Group: "test.strata.dev", Version: "v1alpha1", Kind: "XTenant"}, "", controllerXRName("ten-d", "two"))
			if err != nil {
				return err
			}
			val, _, _ := unstructured.NestedString(xr.Object, "spec", "value")
			og, _, _ := unstructured.NestedInt64(xr.Object, "status", "observedGeneration")
			if val != v || og != xr.GetGeneration() {
				return fmt.Errorf("spec.value %q observedGeneration %d generation %d", val, og, xr.GetGeneration())
			}
			if s, r, _ := condition(xr, "Synced"); s != "False" || r != "ResourceConflict" {
				return fmt.Errorf("Synced=%s %s", s, r)
			}
			return nil
		})
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "ten-d", Name: "contested"}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.ResourceVersion != rv || cm.Data["value"] != "one" {
		t.Errorf("the second writer wrote: rv %s→%s data %v", rv, cm.ResourceVersion, cm.Data)
	}
	waitXR(t, "first still ready", "ten-d", "one", "Ready", "True", "Available")
	deleteClaimAndWait(t, tenantGVK, "ten-d", "two")
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "ten-d", Name: "contested"}, cm); err != nil || cm.DeletionTimestamp != nil {
		t.Fatalf("first claim's ConfigMap after the second's deletion: %v", err)
	}
	deleteClaimAndWait(t, tenantGVK, "ten-d", "one")
}

// TestForeignFinalizerNamedInStatus: a composed object held by another
// controller's finalizer is named, with the finalizer, while the XR waits.
func TestForeignFinalizerNamedInStatus(t *testing.T) {
	ctx := context.Background()
	setupTenants(t, "ten-h")
	apply(t, tenantClaim("ten-h", "held", "tenant-named", "name: held-config, value: x"))
	waitXR(t, "ready", "ten-h", "held", "Ready", "True", "Available")
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "ten-h", Name: "held-config"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Finalizers = append(cm.Finalizers, "example.com/hold")
	if err := env.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	c, _ := get(tenantGVK, "ten-h", "held")
	if err := env.Client.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitXR(t, "finalizer named", "ten-h", "held", "Ready", "False", "Deleting", "ConfigMap ten-h/held-config", "example.com/hold")
	// The claim, which its user reads, names it too.
	eventually(t, 30*time.Second, "claim names the finalizer", func() error {
		c, err := get(tenantGVK, "ten-h", "held")
		if err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(c.Object, "status", "conditions")
		for _, x := range conds {
			m, _ := x.(map[string]any)
			if msg, _ := m["message"].(string); m["type"] == "Ready" && strings.Contains(msg, "example.com/hold") && strings.Contains(msg, "ConfigMap ten-h/held-config") {
				return nil
			}
		}
		return fmt.Errorf("claim conditions %v do not name the finalizer", conds)
	})
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "ten-h", Name: "held-config"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Finalizers = nil
	if err := env.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "claim gone once released", func() error {
		if _, err := get(tenantGVK, "ten-h", "held"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("claim still there: %v", err)
		}
		return nil
	})
}

// TestTeamNamespaceCannotTakeExistingNamespace is the attack of issue 8 on
// the shipped team-namespace Composition: a claim in team-b names an
// existing namespace. It is refused, grants no RoleBinding there, and
// deleting the claim leaves the namespace in place.
func TestTeamNamespaceCannotTakeExistingNamespace(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join("..", "..", "..", "compositions", "team-namespace")
	for _, f := range []string{"xrd.yaml", "composition.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		apply(t, string(b))
	}
	waitValid(t, "team-namespace valid", "team-namespace", "True")
	for _, ns := range []string{"team-b", "team-victim"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"owner": "admins"}}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	teamGVK := schema.GroupVersionKind{Group: "platform.strata.dev", Version: "v1alpha1", Kind: "TeamEnvironment"}
	eventually(t, 30*time.Second, "TeamEnvironment served", func() error {
		if _, err := get(teamGVK, "team-b", "none"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("not served: %v", err)
		}
		return nil
	})
	apply(t, "{apiVersion: platform.strata.dev/v1alpha1, kind: TeamEnvironment, metadata: {name: grab, namespace: team-b}, spec: {team: victim, role: admin, members: [mallory@example.com]}}")
	eventually(t, 30*time.Second, "claim refused", func() error {
		c, err := get(teamGVK, "team-b", "grab")
		if err != nil {
			return err
		}
		if s, r, m := condition(c, "Synced"); s != "False" || r != "ResourceConflict" || !strings.Contains(m, "Namespace team-victim") {
			return fmt.Errorf("Synced=%s %s %q", s, r, m)
		}
		return nil
	})
	rbs := &rbacv1.RoleBindingList{}
	if err := env.Client.List(ctx, rbs, client.InNamespace("team-victim")); err != nil {
		t.Fatal(err)
	}
	if len(rbs.Items) != 0 {
		t.Fatalf("RoleBindings granted in team-victim: %v", rbs.Items)
	}
	checkNS := func() {
		t.Helper()
		ns := &corev1.Namespace{}
		if err := env.Client.Get(ctx, client.ObjectKey{Name: "team-victim"}, ns); err != nil {
			t.Fatalf("team-victim: %v", err)
		}
		if ns.DeletionTimestamp != nil || len(ns.OwnerReferences) != 0 || ns.Labels["platform.strata.dev/team"] != "" || ns.Labels["owner"] != "admins" {
			t.Fatalf("team-victim changed: deleting %v owners %v labels %v", ns.DeletionTimestamp, ns.OwnerReferences, ns.Labels)
		}
	}
	checkNS()
	deleteClaimAndWait(t, teamGVK, "team-b", "grab")
	checkNS()

	// A claim for a new team still gets its namespace, quota, policy and
	// RoleBindings.
	apply(t, "{apiVersion: platform.strata.dev/v1alpha1, kind: TeamEnvironment, metadata: {name: fresh, namespace: team-b}, spec: {team: fresh, members: [ann@example.com]}}")
	eventually(t, 30*time.Second, "fresh team ready", func() error {
		c, err := get(teamGVK, "team-b", "fresh")
		if err != nil {
			return err
		}
		if s, r, m := condition(c, "Ready"); s != "True" {
			return fmt.Errorf("Ready=%s %s %q", s, r, m)
		}
		return nil
	})
	rb := &rbacv1.RoleBinding{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "team-fresh", Name: "member-ann-at-example-com"}, rb); err != nil {
		t.Fatalf("RoleBinding of the new team: %v", err)
	}
}

// TestDependentOfComposedResource: a Secret that a composed resource's
// writer created with a (non-controller) owner reference to that resource,
// as a provider does with a managed resource's connection Secret, belongs to
// the XR and is taken over when the Composition composes it. The same Secret
// owned by anything else is a conflict.
func TestDependentOfComposedResource(t *testing.T) {
	ctx := context.Background()
	setupTenants(t, "ten-i")
	apply(t, `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: tenant-dependent}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XTenant}
  resources:
  - name: parent
    readyWhen: ['${parent.data.?ready.orValue("") == "yes"}']
    template: {apiVersion: v1, kind: ConfigMap, data: {x: "1"}}
  - name: child
    template:
      apiVersion: v1
      kind: Secret
      metadata: {name: "${parent.metadata.name}-conn"}
      stringData: {composed: "yes"}
`)
	waitValid(t, "composition valid", "tenant-dependent", "True")
	for _, tc := range []struct {
		claim     string
		ownParent bool
	}{{"dep", true}, {"notdep", false}} {
		xrName := controllerXRName("ten-i", tc.claim)
		apply(t, tenantClaim("ten-i", tc.claim, "tenant-dependent", "value: x"))
		var parent *unstructured.Unstructured
		eventually(t, 30*time.Second, "parent composed", func() error {
			var err error
			parent, err = get(cmGVK, "ten-i", xrName+"-parent")
			return err
		})
		// The "provider" writes the Secret first.
		uid := parent.GetUID()
		if !tc.ownParent {
			other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unrelated-" + tc.claim, Namespace: "ten-i"}}
			if err := env.Client.Create(ctx, other); err != nil {
				t.Fatal(err)
			}
			uid = other.UID
		}
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: xrName + "-parent-conn", Namespace: "ten-i",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: uid}}},
			Data: map[string][]byte{"password": []byte("s3cret")}}
		if err := env.Client.Create(ctx, sec); err != nil {
			t.Fatal(err)
		}
		apply(t, fmt.Sprintf("{apiVersion: v1, kind: ConfigMap, metadata: {name: %s-parent, namespace: ten-i}, data: {ready: 'yes'}}", xrName))
		if !tc.ownParent {
			waitXR(t, "foreign dependent conflicts", "ten-i", tc.claim, "Synced", "False", "ResourceConflict", "Secret ten-i/"+xrName+"-parent-conn")
			got := &corev1.Secret{}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sec), got); err != nil {
				t.Fatal(err)
			}
			if _, ok := got.Data["composed"]; ok || metav1.GetControllerOf(got) != nil {
				t.Errorf("foreign Secret written: %v %v", got.Data, got.OwnerReferences)
			}
			continue
		}
		waitXR(t, "dependent taken over", "ten-i", tc.claim, "Ready", "True", "Available")
		got := &corev1.Secret{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(sec), got); err != nil {
			t.Fatal(err)
		}
		if ref := metav1.GetControllerOf(got); ref == nil || ref.Name != xrName || string(got.Data["password"]) != "s3cret" || string(got.Data["composed"]) != "yes" {
			t.Errorf("Secret not taken over: %v %v", got.OwnerReferences, got.Data)
		}
	}
}
