package rollout

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

func TestCanaryState(t *testing.T) {
	w := func(n int32) deliveryv1.CanaryStep { return deliveryv1.CanaryStep{SetWeight: ptr.To(n)} }
	pause := deliveryv1.CanaryStep{Pause: &deliveryv1.RolloutPause{}}
	steps := []deliveryv1.CanaryStep{w(20), pause, w(50), {SetCanaryScale: &deliveryv1.SetCanaryScale{Replicas: ptr.To[int32](1)}}, w(80),
		{SetCanaryScale: &deliveryv1.SetCanaryScale{MatchTrafficWeight: true}}, w(100)}
	cases := map[string]struct {
		c    deliveryv1.CanaryStrategy
		step int32
		n    int32
		want stepState
	}{
		"before any step":                   {c: deliveryv1.CanaryStrategy{Steps: steps}, step: -1, n: 10, want: stepState{}},
		"20% of 10":                         {c: deliveryv1.CanaryStrategy{Steps: steps}, step: 0, n: 10, want: stepState{Weight: 20, Replicas: 2}},
		"20% of 5 rounds up":                {c: deliveryv1.CanaryStrategy{Steps: steps}, step: 0, n: 5, want: stepState{Weight: 20, Replicas: 1}},
		"a pause keeps the weight":          {c: deliveryv1.CanaryStrategy{Steps: steps}, step: 1, n: 10, want: stepState{Weight: 20, Replicas: 2}},
		"setCanaryScale fixes the replicas": {c: deliveryv1.CanaryStrategy{Steps: steps}, step: 4, n: 10, want: stepState{Weight: 80, Replicas: 1}},
		"matchTrafficWeight returns":        {c: deliveryv1.CanaryStrategy{Steps: steps}, step: 6, n: 10, want: stepState{Weight: 100, Replicas: 10}},
		"after the steps":                   {c: deliveryv1.CanaryStrategy{Steps: steps}, step: 7, n: 10, want: stepState{Weight: 100, Replicas: 10}},
		"maxSurge caps": {c: deliveryv1.CanaryStrategy{Steps: steps, MaxSurge: ptr.To(intstr.FromString("30%"))}, step: 2, n: 10,
			want: stepState{Weight: 50, Replicas: 3, Capped: true}},
		"maxSurge as a number": {c: deliveryv1.CanaryStrategy{Steps: steps, MaxSurge: ptr.To(intstr.FromInt32(4))}, step: 6, n: 10,
			want: stepState{Weight: 100, Replicas: 4, Capped: true}},
		"zero replicas": {c: deliveryv1.CanaryStrategy{Steps: steps}, step: 0, n: 0, want: stepState{Weight: 20}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, canaryState(&tc.c, tc.step, tc.n)); d != "" {
				t.Errorf("-want +got:\n%s", d)
			}
		})
	}
}

func TestSelectorMatches(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "front"}
	cases := map[string]struct {
		sel  map[string]string
		want bool
	}{
		"subset":                {sel: map[string]string{"app": "web"}, want: true},
		"hash key is ours":      {sel: map[string]string{"app": "web", deliveryv1.PodTemplateHashLabel: "x"}, want: true},
		"other value":           {sel: map[string]string{"app": "api"}},
		"missing label":         {sel: map[string]string{"app": "web", "zone": "a"}},
		"empty selects nothing": {},
	}
	for name, tc := range cases {
		if got := selectorMatches(tc.sel, labels); got != tc.want {
			t.Errorf("%s: got %v, want %v", name, got, tc.want)
		}
	}
}

func TestAnalysisRunName(t *testing.T) {
	if got := analysisRunName("web", "abc", 0, deliveryv1.AnalysisKindStep, 2); got != "web-abc-0-s2" {
		t.Errorf("got %q", got)
	}
	if got := analysisRunName("web", "abc", 1, deliveryv1.AnalysisKindPrePromotion, -1); got != "web-abc-1-pre" {
		t.Errorf("got %q", got)
	}
}

func TestRewriteRules(t *testing.T) {
	route := func(refs ...any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"rules": []any{
			map[string]any{"matches": []any{map[string]any{"path": map[string]any{"value": "/"}}}, "backendRefs": refs},
		}}}}
	}
	ref := func(name string, extra ...any) map[string]any {
		m := map[string]any{"name": name, "port": int64(80)}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	split := func(w int64, others ...any) []any {
		return append(others, ref("web-stable", "weight", 100-w), ref("web-canary", "weight", w))
	}
	cases := map[string]struct {
		route *unstructured.Unstructured
		want  []any
		found bool
	}{
		"the Service is split":           {route: route(ref("web")), want: split(20), found: true},
		"an earlier split is reweighted": {route: route(ref("web-stable", "weight", int64(50)), ref("web-canary", "weight", int64(50))), want: split(20), found: true},
		"other backends are kept":        {route: route(ref("other", "weight", int64(1)), ref("web")), want: split(20, ref("other", "weight", int64(1))), found: true},
		"another namespace's web is not ours": {route: route(ref("web", "namespace", "victim")),
			want: []any{ref("web", "namespace", "victim")}},
		"a non-Service backend named web is not ours": {route: route(ref("web", "group", "example.com", "kind", "Bucket")),
			want: []any{ref("web", "group", "example.com", "kind", "Bucket")}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rules, found := rewriteRules(tc.route, "web", 20)
			if found != tc.found {
				t.Errorf("found %v, want %v", found, tc.found)
			}
			got := rules[0].(map[string]any)["backendRefs"]
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("-want +got:\n%s", d)
			}
		})
	}
}
