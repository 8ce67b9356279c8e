package controller_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/composition/controller"
	"github.com/strata-dev/strata/internal/kit/patch"
)

var (
	besideClaimGVK = schema.GroupVersionKind{Group: "beside.test.strata.dev", Version: "v1", Kind: "Cache"}
	besideXRGVK    = schema.GroupVersionKind{Group: "beside.test.strata.dev", Version: "v1", Kind: "XCache"}
)

// staleReader hands out a claim as it was before someone changed it, like a
// cache that has not seen the change yet.
type staleReader struct {
	client.Client
	stale *unstructured.Unstructured
}

func (s staleReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if u, ok := obj.(*unstructured.Unstructured); ok && key == client.ObjectKeyFromObject(s.stale) {
		s.stale.DeepCopyInto(u)
		return nil
	}
	return s.Client.Get(ctx, key, obj, opts...)
}

// TestClaimStatusBesideComposite: when a composite resource's readiness
// changes, the composite controller writes its claim's status right after
// the XR's (writeClaimStatus), but only the status the claim controller
// would write: for the claim the XR is bound to, when that claim is settled
// on it, and never over a change it has not seen. Every other claim is left
// to the claim controller.
func TestClaimStatusBesideComposite(t *testing.T) {
	ctx := context.Background()
	for _, y := range []string{`
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: caches.beside.test.strata.dev}
spec:
  group: beside.test.strata.dev
  names: {kind: Cache, plural: caches, listKind: CacheList, singular: cache}
  scope: Namespaced
  versions:
  - {name: v1, served: true, storage: true, subresources: {status: {}}, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
`, `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: xcaches.beside.test.strata.dev}
spec:
  group: beside.test.strata.dev
  names: {kind: XCache, plural: xcaches, listKind: XCacheList, singular: xcache}
  scope: Cluster
  versions:
  - {name: v1, served: true, storage: true, subresources: {status: {}}, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
`} {
		applyAs(t, "test", y)
	}
	for _, ns := range []string{"beside-a", "beside-b"} {
		apply(t, fmt.Sprintf("{apiVersion: v1, kind: Namespace, metadata: {name: %s}}", ns))
	}

	cond := func(typ, status, reason, msg string) map[string]any {
		return map[string]any{"type": typ, "status": status, "reason": reason, "message": msg,
			"observedGeneration": int64(1), "lastTransitionTime": "2026-12-01T00:00:00Z"}
	}
	// claim makes a claim settled on the XR of the same name: bound,
	// reporting on its generation, Synced, not yet Ready.
	claim := func(ns, name string, edit func(*unstructured.Unstructured)) *unstructured.Unstructured {
		t.Helper()
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(besideClaimGVK)
		u.SetNamespace(ns)
		u.SetName(name)
		u.SetFinalizers([]string{controller.FinalizerClaim})
		u.Object["spec"] = map[string]any{"resourceRef": map[string]any{"name": name}}
		if err := env.Client.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		u.Object["status"] = map[string]any{
			"observedGeneration": u.GetGeneration(),
			"resourceRef":        map[string]any{"apiVersion": besideXRGVK.GroupVersion().String(), "kind": besideXRGVK.Kind, "name": name},
			"conditions": []any{
				cond("Synced", "True", "ReconcileSuccess", "composite resource "+name+" is in sync with the claim"),
				cond("Ready", "False", "Creating", "waiting for: deployment"),
				cond("Reconciling", "True", "Creating", "waiting for: deployment"),
			},
		}
		if edit != nil {
			edit(u)
		}
		if err := env.Client.Status().Update(ctx, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	// xr makes a composite resource bound to claim ns/claimName that has
	// just become Ready.
	xr := func(name, ns, claimName string) *unstructured.Unstructured {
		t.Helper()
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(besideXRGVK)
		u.SetName(name)
		u.Object["spec"] = map[string]any{"claimRef": map[string]any{
			"apiVersion": besideClaimGVK.GroupVersion().String(), "kind": besideClaimGVK.Kind, "namespace": ns, "name": claimName}}
		if err := env.Client.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		u.Object["status"] = map[string]any{
			"observedGeneration": u.GetGeneration(),
			"endpoint":           "cache." + ns + ".svc",
			"conditions": []any{
				cond("Synced", "True", "ReconcileSuccess", "composed resources are in sync"),
				cond("Ready", "True", "Available", "all 1 composed resources are ready"),
			},
		}
		if err := env.Client.Status().Update(ctx, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	readyOf := func(ns, name string) (string, string) {
		t.Helper()
		u, err := get(besideClaimGVK, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		s, _, m := condition(u, "Ready")
		e, _, _ := unstructured.NestedString(u.Object, "status", "endpoint")
		return s + " " + m, e
	}

	cases := map[string]struct {
		// setup makes the claims and the XR, and returns the XR, the
		// client writeClaimStatus reads with, and the claim to look at.
		setup func(name string) (x *unstructured.Unstructured, c client.Client, ns string)
		wrote bool
		// other: the claim looked at is not the one written.
		other bool
	}{
		"settled claim": {wrote: true, setup: func(name string) (*unstructured.Unstructured, client.Client, string) {
			claim("beside-a", name, nil)
			return xr(name, "beside-a", name), env.Client, "beside-a"
		}},
		"claim changed since it was read": {setup: func(name string) (*unstructured.Unstructured, client.Client, string) {
			c := claim("beside-a", name, nil)
			stale := c.DeepCopy()
			c.SetLabels(map[string]string{"changed": "yes"})
			if err := env.Client.Update(ctx, c); err != nil {
				t.Fatal(err)
			}
			return xr(name, "beside-a", name), staleReader{Client: env.Client, stale: stale}, "beside-a"
		}},
		"claim not reporting on its generation": {setup: func(name string) (*unstructured.Unstructured, client.Client, string) {
			claim("beside-a", name, func(u *unstructured.Unstructured) {
				unstructured.RemoveNestedField(u.Object, "status", "observedGeneration")
			})
			return xr(name, "beside-a", name), env.Client, "beside-a"
		}},
		"claim with an error of its own": {setup: func(name string) (*unstructured.Unstructured, client.Client, string) {
			claim("beside-a", name, func(u *unstructured.Unstructured) {
				u.Object["status"].(map[string]any)["conditions"].([]any)[0] = cond("Synced", "False", "CompositionNotAllowed", "composition x is not allowed")
			})
			return xr(name, "beside-a", name), env.Client, "beside-a"
		}},
		"paused claim": {setup: func(name string) (*unstructured.Unstructured, client.Client, string) {
			claim("beside-a", name, nil)
			c, _ := get(besideClaimGVK, "beside-a", name)
			c.SetAnnotations(map[string]string{controller.AnnotationPaused: "true"})
			if err := env.Client.Update(ctx, c); err != nil {
				t.Fatal(err)
			}
			return xr(name, "beside-a", name), env.Client, "beside-a"
		}},
		// A tenant's claim that names another tenant's XR (spec.resourceRef)
		// and says it is bound to it (its own status) gets nothing of it:
		// the XR's claimRef names the claim it is bound to.
		"another namespace's claim naming the XR": {wrote: true, other: true, setup: func(name string) (*unstructured.Unstructured, client.Client, string) {
			claim("beside-a", name, nil)
			claim("beside-b", name, nil)
			return xr(name, "beside-a", name), env.Client, "beside-b"
		}},
		"claim bound to another XR": {setup: func(name string) (*unstructured.Unstructured, client.Client, string) {
			claim("beside-a", name, func(u *unstructured.Unstructured) {
				_ = unstructured.SetNestedField(u.Object, name+"-other", "status", "resourceRef", "name")
			})
			return xr(name, "beside-a", name), env.Client, "beside-a"
		}},
	}
	// Names unique to this run: -count reruns the test in the same cluster.
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	i := 0
	for name, tc := range cases {
		i++
		t.Run(name, func(t *testing.T) {
			n := fmt.Sprintf("cache-%s-%d", run, i)
			x, c, ns := tc.setup(n)
			wrote, err := controller.WriteClaimStatus(ctx, c, patch.NewMemory(), besideClaimGVK, besideXRGVK, x)
			if err != nil {
				t.Fatalf("writeClaimStatus: %v", err)
			}
			ready, endpoint := readyOf(ns, n)
			if wrote != tc.wrote {
				t.Fatalf("wrote = %v, want %v (claim Ready %s)", wrote, tc.wrote, ready)
			}
			want, wantEndpoint := "False waiting for: deployment", ""
			if tc.wrote && !tc.other {
				want, wantEndpoint = "True all 1 composed resources are ready", "cache.beside-a.svc"
			}
			if ready != want || endpoint != wantEndpoint {
				t.Fatalf("claim %s/%s: Ready %q, endpoint %q; want %q, %q", ns, n, ready, endpoint, want, wantEndpoint)
			}
		})
	}
}
