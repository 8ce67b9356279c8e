package apply

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestStage(t *testing.T) {
	cases := map[string]struct {
		gvk  schema.GroupVersionKind
		want int
	}{
		"crd":         {schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, 0},
		"namespace":   {schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, 0},
		"xrd":         {schema.GroupVersionKind{Group: "apiextensions.strata.dev", Version: "v1alpha1", Kind: "CompositeResourceDefinition"}, 1},
		"composition": {schema.GroupVersionKind{Group: "apiextensions.strata.dev", Version: "v1alpha1", Kind: "Composition"}, 1},
		"deployment":  {schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, 2},
		"claim":       {schema.GroupVersionKind{Group: "platform.strata.dev", Version: "v1alpha1", Kind: "Database"}, 2},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := Stage(tc.gvk); got != tc.want {
				t.Errorf("Stage = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	ns := Entry{APIVersion: "v1", Kind: "Namespace", Name: "shop"}
	crd := Entry{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition", Name: "x.y"}
	xrd := Entry{APIVersion: "apiextensions.strata.dev/v1alpha1", Kind: "CompositeResourceDefinition", Name: "xdb"}
	dep := Entry{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web"}
	cm := Entry{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "cfg"}
	depV2 := Entry{APIVersion: "apps/v1beta2", Kind: "Deployment", Namespace: "shop", Name: "web"}
	cases := map[string]struct {
		old, cur, want []Entry
	}{
		"nothing left":                        {[]Entry{cm}, []Entry{cm}, nil},
		"removed in reverse stage order":      {[]Entry{ns, crd, xrd, dep, cm}, []Entry{cm}, []Entry{dep, xrd, ns, crd}},
		"a version change is the same object": {[]Entry{dep}, []Entry{depV2}, nil},
		"everything":                          {[]Entry{cm, ns}, nil, []Entry{cm, ns}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, Diff(tc.old, tc.cur)); d != "" {
				t.Errorf("Diff (-want +got):\n%s", d)
			}
		})
	}
}
