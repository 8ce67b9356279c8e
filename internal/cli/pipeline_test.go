package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

func TestPromotionOrder(t *testing.T) {
	st := func(ns, name, srcNS, src string) deliveryv1.Stage {
		s := deliveryv1.Stage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if src == "" {
			s.Spec.Source.GitRepository = "app"
		} else {
			s.Spec.Source = deliveryv1.StageSource{Stage: src, Namespace: srcNS}
		}
		return s
	}
	cases := map[string]struct {
		in   []deliveryv1.Stage
		want []string
	}{
		"chain across namespaces": {
			in:   []deliveryv1.Stage{st("prod", "production", "qa", "qa"), st("dev", "dev", "", ""), st("qa", "qa", "dev", "dev")},
			want: []string{"dev/dev", "qa/qa", "prod/production"},
		},
		"same namespace": {
			in:   []deliveryv1.Stage{st("a", "production", "", "staging"), st("a", "staging", "", "")},
			want: []string{"a/staging", "a/production"},
		},
		"unknown source sorts first": {
			in:   []deliveryv1.Stage{st("a", "b", "", "elsewhere"), st("a", "a", "", "")},
			want: []string{"a/a", "a/b"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, s := range promotionOrder(tc.in) {
				got = append(got, s.Namespace+"/"+s.Name)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("order (-want +got):\n%s", d)
			}
		})
	}
}

// TestPromotionOrderCycle: stages that take revisions from each other (a
// mistake) are still all printed.
func TestPromotionOrderCycle(t *testing.T) {
	in := []deliveryv1.Stage{{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "x"}, Spec: deliveryv1.StageSpec{Source: deliveryv1.StageSource{Stage: "y"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "y"}, Spec: deliveryv1.StageSpec{Source: deliveryv1.StageSource{Stage: "x"}}}}
	if got := promotionOrder(in); len(got) != 2 || got[0].Name == got[1].Name {
		t.Errorf("promotionOrder of a cycle = %v", got)
	}
}

func TestStageName(t *testing.T) {
	for ref, want := range map[string]string{
		"stage/production":                     "production",
		"stages/production":                    "production",
		"Stage/production":                     "production",
		"stage.delivery.strata.dev/production": "production",
		"sync/production":                      "",
		"production":                           "",
		"stage/":                               "",
	} {
		got, err := stageName(ref)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("stageName(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
}
