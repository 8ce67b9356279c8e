package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/internal/testenv"
)

// TestUninstallForceClearsStrataFinalizers installs Strata into an API
// server of its own (it deletes the CRDs), leaves objects with Strata's
// finalizers and no manager to remove them — one of them also with a
// finalizer that is not Strata's — and uninstalls: refused without
// --force, naming them; with --force --keep-crds only the objects being
// deleted lose Strata's finalizers; with --force every object loses them,
// after a list of what that orphans, and the CRDs go. The foreign finalizer
// stays in every case.
func TestUninstallForceClearsStrataFinalizers(t *testing.T) {
	ctx := context.Background()
	e, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := writeKubeconfig(e, kc); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		return strata(t, append(args, "--kubeconfig", kc)...)
	}
	const sysNS = "strata-force"
	if code, out, errOut := run("install", "-n", sysNS, "--lockdown"); code != 0 {
		t.Fatalf("install: exit %d\n%s%s", code, out, errOut)
	}
	create := func(y string) *unstructured.Unstructured {
		t.Helper()
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
			t.Fatal(err)
		}
		if err := e.Client.Create(ctx, u); err != nil {
			t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		return u
	}
	create(`{apiVersion: v1, kind: Namespace, metadata: {name: team}}`)
	create(`{apiVersion: gitops.strata.dev/v1alpha1, kind: GitRepository, metadata: {name: app, namespace: team, finalizers: [gitops.strata.dev/finalizer]},
	  spec: {url: "https://git.example/app.git", interval: 1m}}`)
	create(`{apiVersion: gitops.strata.dev/v1alpha1, kind: Sync, metadata: {name: app, namespace: team, finalizers: [gitops.strata.dev/finalizer]},
	  spec: {sourceRef: {name: app}, path: ./, interval: 1m}}`)
	create(`{apiVersion: gitops.strata.dev/v1alpha1, kind: Sync, metadata: {name: shared, namespace: team, finalizers: [gitops.strata.dev/finalizer, example.com/keep]},
	  spec: {sourceRef: {name: app}, path: ./, interval: 1m}}`)
	create(`{apiVersion: nop.strata.dev/v1alpha1, kind: NopResource, metadata: {name: live, finalizers: [managed.strata.dev/finalizer]}, spec: {forProvider: {}}}`)
	gone := create(`{apiVersion: nop.strata.dev/v1alpha1, kind: NopResource, metadata: {name: leaving, finalizers: [managed.strata.dev/finalizer]}, spec: {forProvider: {}}}`)
	if err := e.Client.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}

	get := func(apiVersion, kind, ns, name string) (*unstructured.Unstructured, error) {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		return u, e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u)
	}
	finalizersOf := func(apiVersion, kind, ns, name string) []string {
		t.Helper()
		u, err := get(apiVersion, kind, ns, name)
		if err != nil {
			t.Fatalf("%s %s: %v", kind, name, err)
		}
		return u.GetFinalizers()
	}

	// Without --force: refused, naming what uses Strata.
	code, out, errOut := run("uninstall", "-n", sysNS)
	if code != 1 {
		t.Fatalf("uninstall without --force: exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"refusing to uninstall", "Sync team/app", "Sync team/shared", "NopResource live", "NopResource leaving"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the refusal does not name %q:\n%s", want, errOut)
		}
	}

	// --force --keep-crds: only the object being deleted loses Strata's
	// finalizer (and so goes); the others keep theirs.
	code, out, errOut = run("uninstall", "-n", sysNS, "--force", "--keep-crds")
	if code != 0 {
		t.Fatalf("uninstall --force --keep-crds: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "NopResource leaving\n    managed.strata.dev/finalizer: its external resource is not deleted") ||
		strings.Contains(out, "NopResource live") || !strings.Contains(out, "removed Strata's finalizers from 1 objects") {
		t.Errorf("uninstall --force --keep-crds output:\n%s", out)
	}
	if _, err := get("nop.strata.dev/v1alpha1", "NopResource", "", "leaving"); !apierrors.IsNotFound(err) {
		t.Errorf("the NopResource being deleted is still there: %v", err)
	}
	if f := finalizersOf("nop.strata.dev/v1alpha1", "NopResource", "", "live"); !slices.Equal(f, []string{"managed.strata.dev/finalizer"}) {
		t.Errorf("--keep-crds removed the finalizers of an object not being deleted: %v", f)
	}

	// --force: the orphans are named with what each leaves behind, every
	// Strata finalizer goes, the foreign one stays.
	code, out, errOut = run("uninstall", "-n", sysNS, "--force")
	if code != 0 {
		t.Fatalf("uninstall --force: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("uninstall --force:\n%s", out)
	for _, want := range []string{
		"Strata's finalizers are removed from 4 objects without their cleanup; this orphans:",
		"GitRepository team/app\n    gitops.strata.dev/finalizer: nothing",
		"Sync team/app\n    gitops.strata.dev/finalizer: the objects it applied are not pruned",
		"Sync team/shared\n    gitops.strata.dev/finalizer: the objects it applied are not pruned: they stay in the cluster\n    keeps example.com/keep (not Strata's)",
		"NopResource live\n    managed.strata.dev/finalizer: its external resource is not deleted",
		"removed Strata's finalizers from 4 objects",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("uninstall --force does not say %q", want)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^  [A-Z]`).FindAllString(out, -1)); n != 4 {
		t.Errorf("uninstall --force lists %d objects, want 4", n)
	}
	crds := apiextensionsclient.NewForConfigOrDie(e.Config).ApiextensionsV1().CustomResourceDefinitions()
	poll(t, "the Syncs' CRD waits for Sync team/shared only", func() error {
		crd, err := crds.Get(ctx, "syncs.gitops.strata.dev", metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("the Syncs' CRD is gone although a Sync keeps a foreign finalizer: %w", err)
		}
		if crd.DeletionTimestamp == nil {
			return fmt.Errorf("the Syncs' CRD is not being deleted")
		}
		if _, err := get("gitops.strata.dev/v1alpha1", "Sync", "team", "app"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("Sync team/app is still there: %v", err)
		}
		return nil
	})
	if f := finalizersOf("gitops.strata.dev/v1alpha1", "Sync", "team", "shared"); !slices.Equal(f, []string{"example.com/keep"}) {
		t.Errorf("Sync team/shared finalizers %v, want only the foreign example.com/keep", f)
	}
	poll(t, "the other CRDs gone", func() error {
		for _, name := range []string{"nopresources.nop.strata.dev", "gitrepositories.gitops.strata.dev"} {
			if _, err := crds.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("CRD %s: %v", name, err)
			}
		}
		return nil
	})
	// The foreign finalizer's owner lets go: the last CRD goes.
	u, _ := get("gitops.strata.dev/v1alpha1", "Sync", "team", "shared")
	u.SetFinalizers(nil)
	if err := e.Client.Update(ctx, u); err != nil {
		t.Fatal(err)
	}
	poll(t, "the Syncs' CRD gone", func() error {
		if _, err := crds.Get(ctx, "syncs.gitops.strata.dev", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("CRD: %v", err)
		}
		return nil
	})

	// Without --force, when nothing uses Strata any more: a GitRepository
	// still carries Strata's finalizer; uninstall lists it, removes it, and
	// the CRDs go.
	if code, out, errOut := run("install", "-n", "strata-again", "--lockdown"); code != 0 {
		t.Fatalf("install again: exit %d\n%s%s", code, out, errOut)
	}
	create(`{apiVersion: gitops.strata.dev/v1alpha1, kind: GitRepository, metadata: {name: left, namespace: team, finalizers: [gitops.strata.dev/finalizer]},
	  spec: {url: "https://git.example/app.git", interval: 1m}}`)
	code, out, errOut = run("uninstall", "-n", "strata-again")
	if code != 0 || !strings.Contains(out, "GitRepository team/left\n    gitops.strata.dev/finalizer: nothing") ||
		!strings.Contains(out, "removed Strata's finalizers from 1 objects") {
		t.Fatalf("uninstall with a GitRepository left: exit %d\n%s%s", code, out, errOut)
	}
	poll(t, "the GitRepositories' CRD gone", func() error {
		if _, err := crds.Get(ctx, "gitrepositories.gitops.strata.dev", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("CRD: %v", err)
		}
		return nil
	})
}
