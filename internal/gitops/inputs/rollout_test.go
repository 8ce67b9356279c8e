package inputs

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestKeepRolloutBackends: applying an HTTPRoute from Git keeps the
// weighted -stable/-canary backendRefs a Rollout put in place of the
// Service, and nothing else.
func TestKeepRolloutBackends(t *testing.T) {
	route := func(refs ...map[string]any) *unstructured.Unstructured {
		list := make([]any, len(refs))
		for i, r := range refs {
			list[i] = r
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
			"metadata": map[string]any{"name": "api"},
			"spec":     map[string]any{"rules": []any{map[string]any{"backendRefs": list}}},
		}}
	}
	ref := func(name string, weight ...int64) map[string]any {
		m := map[string]any{"name": name, "port": int64(80)}
		if len(weight) > 0 {
			m["weight"] = weight[0]
		}
		return m
	}
	rewritten := func(manager string) *unstructured.Unstructured {
		u := route(ref("other"), ref("api-stable", 75), ref("api-canary", 25))
		u.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate}})
		return u
	}
	cases := map[string]struct {
		live *unstructured.Unstructured
		want []any
	}{
		"the Rollout's weights stay": {
			live: rewritten("strata/rollout/shop/api"),
			want: []any{ref("other"), ref("api-stable", 75), ref("api-canary", 25)},
		},
		"a route no Rollout wrote is Git's": {
			live: rewritten("kubectl"),
			want: []any{ref("other"), ref("api")},
		},
		"a new route is Git's": {
			want: []any{ref("other"), ref("api")},
		},
	}
	for name, tc := range cases {
		desired := route(ref("other"), ref("api"))
		keepRolloutBackends(tc.live, desired)
		rules, _, _ := unstructured.NestedSlice(desired.Object, "spec", "rules")
		got := rules[0].(map[string]any)["backendRefs"]
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", name, diff)
		}
	}
}

// TestKeepRolloutSelector: applying a Service from Git keeps the
// pod-template-hash key a Rollout put in its selector (an atomic map, which
// Git's apply would otherwise replace whole), and nothing else.
func TestKeepRolloutSelector(t *testing.T) {
	service := func(manager string, sel map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": "site"}}}
		if sel != nil {
			u.Object["spec"] = map[string]any{"selector": sel}
		}
		if manager != "" {
			u.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: manager, Operation: metav1.ManagedFieldsOperationApply}})
		}
		return u
	}
	hashed := map[string]any{"app": "site", "pod-template-hash": "abc"}
	cases := map[string]struct {
		live *unstructured.Unstructured
		git  map[string]any
		want map[string]any
	}{
		"the Rollout's hash stays": {
			live: service("strata/rollout/shop/site", hashed),
			git:  map[string]any{"app": "site"},
			want: map[string]any{"app": "site", "pod-template-hash": "abc"},
		},
		"Git's other keys win": {
			live: service("strata/rollout/shop/site", hashed),
			git:  map[string]any{"app": "site-v2", "tier": "web"},
			want: map[string]any{"app": "site-v2", "tier": "web", "pod-template-hash": "abc"},
		},
		"a hash Git sets is Git's": {
			live: service("strata/rollout/shop/site", hashed),
			git:  map[string]any{"app": "site", "pod-template-hash": "def"},
			want: map[string]any{"app": "site", "pod-template-hash": "def"},
		},
		"a hash no Rollout wrote goes": {
			live: service("kubectl", hashed),
			git:  map[string]any{"app": "site"},
			want: map[string]any{"app": "site"},
		},
		"a released Service is Git's": {
			live: service("strata/rollout/shop/site", map[string]any{"app": "site"}),
			git:  map[string]any{"app": "site"},
			want: map[string]any{"app": "site"},
		},
		"no selector in Git gets none": {
			live: service("strata/rollout/shop/site", hashed),
		},
		"a new Service is Git's": {
			git:  map[string]any{"app": "site"},
			want: map[string]any{"app": "site"},
		},
	}
	for name, tc := range cases {
		desired := service("", tc.git)
		keepRolloutSelector(tc.live, desired)
		got, _, _ := unstructured.NestedMap(desired.Object, "spec", "selector")
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", name, diff)
		}
	}
}
