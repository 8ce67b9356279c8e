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

// The vault XRD lets claims choose only Compositions labelled
// tenant-visible=true; the admin XRD composes something only platform admins
// may have (a ConfigMap standing in for a ClusterRoleBinding to cluster-admin).
const (
	vaultXRD = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xvaults.test.strata.dev}
spec:
  group: test.strata.dev
  names: {kind: XVault, plural: xvaults}
  claimNames: {kind: Vault, plural: vaults}
  claimCompositionSelector: {matchLabels: {tenant-visible: "true"}}
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
              secret: {type: string}
`
	adminXRD = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xadmins.test.strata.dev}
spec:
  group: test.strata.dev
  names: {kind: XAdmin, plural: xadmins}
  enforcedCompositionRef: {name: vault-allowed}
  versions:
  - name: v1alpha1
    served: true
    referenceable: true
`
	vaultAllowed = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: vault-allowed, labels: {tenant-visible: "true", flavour: plain}}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XVault}
  resources:
  - name: cfg
    template: {apiVersion: v1, kind: ConfigMap, data: {secret: "${xr.spec.secret}"}}
`
	vaultInternal = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: vault-internal, labels: {flavour: internal}}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XVault}
  resources:
  - name: cfg
    template: {apiVersion: v1, kind: ConfigMap, metadata: {name: vault-internal-cfg}, data: {internal: "yes"}}
`
	adminGrant = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: admin-grant, labels: {tenant-visible: "true", flavour: grant}}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XAdmin}
  resources:
  - name: grant
    template: {apiVersion: v1, kind: ConfigMap, metadata: {name: admin-granted}, data: {role: cluster-admin}}
`
)

var (
	vaultGVK  = schema.GroupVersionKind{Group: "test.strata.dev", Version: "v1alpha1", Kind: "Vault"}
	xVaultGVK = schema.GroupVersionKind{Group: "test.strata.dev", Version: "v1alpha1", Kind: "XVault"}
	crdGVK    = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}
)

func namespace(t *testing.T, name string) {
	t.Helper()
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1ObjectMeta(name)}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// setupVaults applies the vault and admin XRDs and their Compositions and
// waits until claims can be made.
func setupVaults(t *testing.T) {
	t.Helper()
	apply(t, vaultXRD)
	apply(t, adminXRD)
	for _, c := range []string{vaultAllowed, vaultInternal, adminGrant} {
		apply(t, c)
	}
	for _, c := range []string{"vault-allowed", "vault-internal", "admin-grant"} {
		waitValid(t, c+" valid", c, "True")
	}
	eventually(t, 30*time.Second, "Vault kind served", func() error {
		if _, err := get(vaultGVK, "default", "none"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("not served: %v", err)
		}
		return nil
	})
}

// waitSynced waits until obj reports Synced=False with reason and a message
// containing every one of wants.
func waitSynced(t *testing.T, what string, gvk schema.GroupVersionKind, ns, name, reason string, wants ...string) {
	t.Helper()
	eventually(t, 30*time.Second, what, func() error {
		o, err := get(gvk, ns, name)
		if err != nil {
			return err
		}
		s, r, m := condition(o, "Synced")
		if s != "False" || r != reason {
			return fmt.Errorf("Synced=%s %s %q", s, r, m)
		}
		for _, w := range wants {
			if !strings.Contains(m, w) {
				return fmt.Errorf("Synced message %q does not say %q", m, w)
			}
		}
		return nil
	})
}

// composedBy lists the ConfigMaps composed for the composite xr.
func composedBy(t *testing.T, xr string) []string {
	t.Helper()
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(cmGVK.GroupVersion().WithKind("ConfigMapList"))
	if err := env.Client.List(context.Background(), l, client.MatchingLabels{"strata.dev/composite": xr}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range l.Items {
		out = append(out, i.GetNamespace()+"/"+i.GetName())
	}
	return out
}

func assertNotGranted(t *testing.T) {
	t.Helper()
	if _, err := get(cmGVK, "default", "admin-granted"); !apierrors.IsNotFound(err) {
		t.Fatalf("the admin Composition's object was composed: %v", err)
	}
}

// TestCompositionMustMatchTheCompositeKind is the attack of hole 3: a tenant
// points its claim (or an XR) at a Composition written for another composite
// kind, directly, through a pinned revision, or at a Composition the XRD does
// not offer to claims.
func TestCompositionMustMatchTheCompositeKind(t *testing.T) {
	ctx := context.Background()
	setupVaults(t)
	namespace(t, "team-v")

	// A claim naming the admin Composition is refused before its XR exists.
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Vault, metadata: {name: steal, namespace: team-v}, spec: {secret: x, compositionRef: {name: admin-grant}}}")
	waitSynced(t, "claim refused", vaultGVK, "team-v", "steal", "CompositionMismatch", "composition admin-grant composes test.strata.dev/v1alpha1 XAdmin, not test.strata.dev/v1alpha1 XVault")
	if _, err := get(xVaultGVK, "", controller.XRName("team-v", "steal")); !apierrors.IsNotFound(err) {
		t.Errorf("the refused claim's XR exists: %v", err)
	}
	assertNotGranted(t)

	// An XR naming it directly is refused and composes nothing.
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: XVault, metadata: {name: steal-xr}, spec: {secret: x, compositionRef: {name: admin-grant}}}")
	waitSynced(t, "XR refused", xVaultGVK, "", "steal-xr", "CompositionMismatch", "composition admin-grant composes")
	if got := composedBy(t, "steal-xr"); len(got) != 0 {
		t.Errorf("the refused XR composed %v", got)
	}
	assertNotGranted(t)

	// The XRD's own enforced (or default) ref must be of its kind too.
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: XAdmin, metadata: {name: enforced}, spec: {}}")
	waitSynced(t, "enforced ref of another kind refused", xVaultGVK.GroupVersion().WithKind("XAdmin"), "", "enforced", "CompositionMismatch",
		"composition vault-allowed composes test.strata.dev/v1alpha1 XVault, not test.strata.dev/v1alpha1 XAdmin")
	if got := composedBy(t, "enforced"); len(got) != 0 {
		t.Errorf("the XR with a mismatched enforced ref composed %v", got)
	}

	// A pinned revision of the admin Composition behind an allowed
	// Composition's name is refused too.
	comp, err := get(compGVK, "", "admin-grant")
	if err != nil {
		t.Fatal(err)
	}
	adminRev, _, _ := unstructured.NestedString(comp.Object, "status", "latestRevisionName")
	if adminRev == "" {
		t.Fatal("admin-grant has no revision")
	}
	apply(t, fmt.Sprintf("{apiVersion: test.strata.dev/v1alpha1, kind: Vault, metadata: {name: pin, namespace: team-v}, spec: {secret: x, compositionRef: {name: vault-allowed}, compositionUpdatePolicy: Manual, compositionRevisionRef: {name: %s}}}", adminRev))
	pinXR := controller.XRName("team-v", "pin")
	waitSynced(t, "pinned foreign revision refused on the XR", xVaultGVK, "", pinXR, "CompositionMismatch", "composition revision "+adminRev+" belongs to composition \"admin-grant\"")
	waitSynced(t, "and on the claim", vaultGVK, "team-v", "pin", "CompositionMismatch", adminRev)
	if got := composedBy(t, pinXR); len(got) != 0 {
		t.Errorf("the pinned XR composed %v", got)
	}
	assertNotGranted(t)

	// A Composition of the right kind that the XRD does not offer to claims.
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Vault, metadata: {name: internal, namespace: team-v}, spec: {secret: x, compositionRef: {name: vault-internal}}}")
	waitSynced(t, "not allowed by name", vaultGVK, "team-v", "internal", "CompositionNotAllowed", "composition vault-internal is not one claims may choose", "tenant-visible=true")
	if _, err := get(xVaultGVK, "", controller.XRName("team-v", "internal")); !apierrors.IsNotFound(err) {
		t.Errorf("the refused claim's XR exists: %v", err)
	}
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Vault, metadata: {name: internal-sel, namespace: team-v}, spec: {secret: x, compositionSelector: {matchLabels: {flavour: internal}}}}")
	waitSynced(t, "not allowed by selector", vaultGVK, "team-v", "internal-sel", "CompositionNotAllowed", "compositions vault-internal match labels flavour=internal")
	if got := composedBy(t, controller.XRName("team-v", "internal-sel")); len(got) != 0 {
		t.Errorf("the refused selector composed %v", got)
	}
	if _, err := get(cmGVK, "team-v", "vault-internal-cfg"); !apierrors.IsNotFound(err) {
		t.Errorf("vault-internal composed for a claim: %v", err)
	}
	// A selector matching another kind's Composition only finds nothing.
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Vault, metadata: {name: grant-sel, namespace: team-v}, spec: {secret: x, compositionSelector: {matchLabels: {flavour: grant}}}}")
	waitSynced(t, "selector ignores other kinds", vaultGVK, "team-v", "grant-sel", "CompositionInvalid", "no composition for XVault matches labels flavour=grant")
	assertNotGranted(t)

	// The offered Composition works, by name and by selector.
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Vault, metadata: {name: ok, namespace: team-v}, spec: {secret: fine, compositionRef: {name: vault-allowed}}}")
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Vault, metadata: {name: ok-sel, namespace: team-v}, spec: {secret: fine, compositionSelector: {matchLabels: {flavour: plain}}}}")
	for _, n := range []string{"ok", "ok-sel"} {
		eventually(t, 30*time.Second, n+" composed", func() error {
			cm, err := get(cmGVK, "team-v", controller.XRName("team-v", n)+"-cfg")
			if err != nil {
				return err
			}
			if v, _, _ := unstructured.NestedString(cm.Object, "data", "secret"); v != "fine" {
				return fmt.Errorf("secret = %q", v)
			}
			return nil
		})
	}
	// Switching a working claim to a foreign Composition leaves its XR as it was.
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Vault, metadata: {name: ok, namespace: team-v}, spec: {secret: changed, compositionRef: {name: admin-grant}}}")
	waitSynced(t, "switch refused", vaultGVK, "team-v", "ok", "CompositionMismatch", "admin-grant")
	xr, err := get(xVaultGVK, "", controller.XRName("team-v", "ok"))
	if err != nil {
		t.Fatal(err)
	}
	if n, _, _ := unstructured.NestedString(xr.Object, "spec", "compositionRef", "name"); n != "vault-allowed" {
		t.Errorf("XR compositionRef = %q, want vault-allowed", n)
	}
	if s, _, _ := unstructured.NestedString(xr.Object, "spec", "secret"); s != "fine" {
		t.Errorf("XR spec.secret = %q, want fine", s)
	}
	assertNotGranted(t)

	for _, n := range []string{"steal", "pin", "internal", "internal-sel", "grant-sel", "ok", "ok-sel"} {
		c, _ := get(vaultGVK, "team-v", n)
		if err := env.Client.Delete(ctx, c); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	for _, x := range []struct {
		gvk  schema.GroupVersionKind
		name string
	}{{xVaultGVK, "steal-xr"}, {xVaultGVK.GroupVersion().WithKind("XAdmin"), "enforced"}} {
		o, _ := get(x.gvk, "", x.name)
		if err := env.Client.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
}

// TestClaimCannotBindAnAdminXR: a tenant names an admin-created XR in its
// claim's spec.resourceRef. It is refused until the XR allows claims from the
// tenant's namespace.
func TestClaimCannotBindAnAdminXR(t *testing.T) {
	ctx := context.Background()
	setupVaults(t)
	namespace(t, "team-t")
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: XVault, metadata: {name: admin-vault}, spec: {secret: admin-data, compositionRef: {name: vault-allowed}}}")
	eventually(t, 30*time.Second, "admin XR composed", func() error {
		if got := composedBy(t, "admin-vault"); len(got) != 1 {
			return fmt.Errorf("composed %v", got)
		}
		return nil
	})
	before, err := get(xVaultGVK, "", "admin-vault")
	if err != nil {
		t.Fatal(err)
	}

	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Vault, metadata: {name: grab, namespace: team-t}, spec: {secret: stolen, resourceRef: {apiVersion: test.strata.dev/v1alpha1, kind: XVault, name: admin-vault}}}")
	waitSynced(t, "binding refused", vaultGVK, "team-t", "grab", "ClaimNotAllowed",
		"composite resource admin-vault is bound to no claim and does not allow claims from namespace team-t", "strata.dev/claim-namespaces")
	after, err := get(xVaultGVK, "", "admin-vault")
	if err != nil {
		t.Fatal(err)
	}
	if s, _, _ := unstructured.NestedString(after.Object, "spec", "secret"); s != "admin-data" {
		t.Errorf("XR spec.secret = %q, want admin-data", s)
	}
	if ref, ok, _ := unstructured.NestedMap(after.Object, "spec", "claimRef"); ok {
		t.Errorf("XR got claimRef %v", ref)
	}
	if after.GetGeneration() != before.GetGeneration() || after.GetLabels()["strata.dev/claim-name"] != "" {
		t.Errorf("XR changed: generation %d -> %d, labels %v", before.GetGeneration(), after.GetGeneration(), after.GetLabels())
	}
	// Another namespace listed does not let team-t in.
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: XVault, metadata: {name: admin-vault, annotations: {strata.dev/claim-namespaces: 'team-x, team-y'}}, spec: {secret: admin-data, compositionRef: {name: vault-allowed}}}")
	waitSynced(t, "binding still refused", vaultGVK, "team-t", "grab", "ClaimNotAllowed", "namespace team-t")

	// The admin allows team-t: the claim binds the XR.
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: XVault, metadata: {name: admin-vault, annotations: {strata.dev/claim-namespaces: 'team-x, team-t'}}, spec: {secret: admin-data, compositionRef: {name: vault-allowed}}}")
	eventually(t, 30*time.Second, "bound once allowed", func() error {
		xr, err := get(xVaultGVK, "", "admin-vault")
		if err != nil {
			return err
		}
		ref, _, _ := unstructured.NestedStringMap(xr.Object, "spec", "claimRef")
		if ref["namespace"] != "team-t" || ref["name"] != "grab" {
			return fmt.Errorf("claimRef = %v", ref)
		}
		return nil
	})
	c, _ := get(vaultGVK, "team-t", "grab")
	if err := env.Client.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "claim and its XR deleted", func() error {
		if _, err := get(xVaultGVK, "", "admin-vault"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("XR still there: %v", err)
		}
		return nil
	})
}
