package render

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
)

func TestNamespaceAllowed(t *testing.T) {
	cases := map[string]struct {
		ns, claimNS string
		allowed     []string
		want        bool
	}{
		"claim's own":           {ns: "team-a", claimNS: "team-a", want: true},
		"elsewhere":             {ns: "kube-system", claimNS: "team-a", want: false},
		"empty is not the same": {ns: "", claimNS: "team-a", want: false},
		"listed":                {ns: "shared", claimNS: "team-a", allowed: []string{"shared"}, want: true},
		"prefix pattern":        {ns: "team-x", claimNS: "a", allowed: []string{"team-*"}, want: true},
		"prefix pattern only":   {ns: "kube-team-x", claimNS: "a", allowed: []string{"team-*"}, want: false},
		"star alone":            {ns: "kube-system", claimNS: "a", allowed: []string{"*"}, want: true},
		"question mark":         {ns: "ns-1", claimNS: "a", allowed: []string{"ns-?"}, want: true},
		"question mark is one":  {ns: "ns-12", claimNS: "a", allowed: []string{"ns-?"}, want: false},
		"star in the middle":    {ns: "a-b-c", claimNS: "x", allowed: []string{"a*c"}, want: true},
		"star needs the suffix": {ns: "a-b-cd", claimNS: "x", allowed: []string{"a*c"}, want: false},
		"brackets are literal":  {ns: "a", claimNS: "x", allowed: []string{"[a]"}, want: false},
		"several stars":         {ns: "team-a-prod", claimNS: "x", allowed: []string{"*-*-prod"}, want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := NamespaceAllowed(tc.ns, tc.claimNS, tc.allowed); got != tc.want {
				t.Errorf("NamespaceAllowed(%q, %q, %v) = %v, want %v", tc.ns, tc.claimNS, tc.allowed, got, tc.want)
			}
		})
	}
}

// clusterScoped is the scope test renders use: Namespaces are cluster-scoped.
func clusterScoped(gvk schema.GroupVersionKind) bool { return gvk.Kind != "Namespace" }

const claimComposition = `
compositeTypeRef: {apiVersion: example.org/v1, kind: XApp}
resources:
- name: own
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: "${xr.spec.name}"}
- name: there
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: "${xr.spec.name}", namespace: "${xr.spec.namespace}"}
- name: shared
  allowedNamespaces: [shared, "team-*"]
  template:
    apiVersion: v1
    kind: Secret
    metadata: {name: "x-${xr.spec.name}", namespace: "${xr.spec.namespace}"}
- name: ns
  template:
    apiVersion: v1
    kind: Namespace
    metadata: {name: "${xr.spec.name}", namespace: "${xr.spec.namespace}"}
`

func claimXR(name, namespace string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.org/v1", "kind": "XApp",
		"metadata": map[string]any{"name": "x", "labels": map[string]any{
			LabelClaimName: "c", LabelClaimNamespace: "team-a"}},
		"spec": map[string]any{"name": name, "namespace": namespace},
	}}
}

func TestRenderConfinesClaims(t *testing.T) {
	comp := composition(t, claimComposition)
	states := func(name, namespace string) map[string]State {
		out, err := Render(Input{XR: claimXR(name, namespace), Composition: comp, DefaultNamespace: "team-a", Namespaced: clusterScoped})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]State{}
		for _, r := range out.Resources {
			got[r.ID] = r.State
			if r.ID == "ns" && (r.Desired.GetNamespace() != "" || r.Desired.GetLabels()[LabelClaimNamespace] != "team-a") {
				t.Errorf("cluster-scoped object: namespace %q labels %v", r.Desired.GetNamespace(), r.Desired.GetLabels())
			}
		}
		return got
	}
	cases := map[string]struct {
		namespace string
		want      map[string]State
	}{
		"own namespace": {"team-a", map[string]State{"own": Apply, "there": Apply, "shared": Apply, "ns": Apply}},
		"kube-system":   {"kube-system", map[string]State{"own": Apply, "there": Refused, "shared": Refused, "ns": Apply}},
		"allowed":       {"shared", map[string]State{"own": Apply, "there": Refused, "shared": Apply, "ns": Apply}},
		"pattern":       {"team-b", map[string]State{"own": Apply, "there": Refused, "shared": Apply, "ns": Apply}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, states("victim", tc.namespace)); diff != "" {
				t.Errorf("states (-want +got):\n%s", diff)
			}
		})
	}
	// Without a claim, nothing is confined.
	xr := claimXR("victim", "kube-system")
	xr.SetLabels(nil)
	out, err := Render(Input{XR: xr, Composition: comp, DefaultNamespace: "default", Namespaced: clusterScoped})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Resources {
		if r.State != Apply {
			t.Errorf("%s: %s without a claim", r.ID, r.State)
		}
	}
}

// FuzzClaimNamespace renders a Composition whose names and namespaces come
// from a claim's spec, and asserts that no input panics and that no
// namespaced object composed for a claim is to be applied outside the
// claim's namespace and the resource's allowedNamespaces.
func FuzzClaimNamespace(f *testing.F) {
	for _, s := range [][2]string{
		{"victim", "kube-system"}, {"app", "team-a"}, {"app", ""}, {"x", "shared"}, {"x", "team-"},
		{"", "team-b"}, {"a/b", "../kube-system"}, {"x", "team-a\x00"}, {"${xr}", "*"}, {"x", "TEAM-A"},
	} {
		f.Add(s[0], s[1])
	}
	spec := &v1alpha1.CompositionSpec{}
	if err := yaml.UnmarshalStrict([]byte(claimComposition), spec); err != nil {
		f.Fatal(err)
	}
	plan, err := NewPlan(spec, nil)
	if err != nil {
		f.Fatal(err)
	}
	allowed := map[string][]string{}
	for _, r := range spec.Resources {
		allowed[r.Name] = r.AllowedNamespaces
	}
	f.Fuzz(func(t *testing.T, name, namespace string) {
		out, err := Render(Input{XR: claimXR(name, namespace), Composition: spec, Plan: plan, DefaultNamespace: "team-a", Namespaced: clusterScoped})
		if err != nil {
			return
		}
		for _, r := range out.Resources {
			if r.State != Apply {
				continue
			}
			ns := r.Desired.GetNamespace()
			if !clusterScoped(r.Desired.GroupVersionKind()) {
				if ns != "" {
					t.Errorf("%s: cluster-scoped object keeps namespace %q", r.ID, ns)
				}
				continue
			}
			if ns == "team-a" {
				continue
			}
			// An oracle independent of globMatch: the allowed entries
			// here are names or end in a single '*'.
			ok := false
			for _, a := range allowed[r.Name] {
				if a == ns || (len(a) > 0 && a[len(a)-1] == '*' && len(ns) >= len(a)-1 && ns[:len(a)-1] == a[:len(a)-1]) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s: %s applied in namespace %q outside team-a and %v", r.ID, r.Desired.GetName(), ns, allowed[r.Name])
			}
		}
	})
}
