package rollout

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

func selectorHash(t *testing.T, ns, name string) string {
	t.Helper()
	svc := &corev1.Service{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
		t.Fatal(err)
	}
	return svc.Spec.Selector[deliveryv1.PodTemplateHashLabel]
}

// wantUserKeys fails unless the Service's selector, the Rollout's
// pod-template-hash key aside, is want: a Service's selector is an atomic
// map for server-side apply, and a Rollout that applied its key alone would
// drop the user's.
func wantUserKeys(t *testing.T, ns, name string, want map[string]string) {
	t.Helper()
	svc := &corev1.Service{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, v := range svc.Spec.Selector {
		if k != deliveryv1.PodTemplateHashLabel {
			got[k] = v
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Service %s selects %v besides the hash, want %v (whole selector %v)", name, got, want, svc.Spec.Selector)
	}
}

// TestBlueGreen: the preview runs beside the stable pods, reachable by the
// preview Service only; the active Service keeps selecting the stable pods
// while the pre-promotion analysis fails and until it passes and the
// rollout is promoted; then it switches to the new pods at once, and after
// the scale-down delay the Deployment runs only the new revision.
func TestBlueGreen(t *testing.T) {
	startManager(t)
	ns := namespace(t)
	verdict := newVerdictServer(t, false)
	ro := &deliveryv1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "site"},
		Spec: deliveryv1.RolloutSpec{
			TargetRef: deliveryv1.RolloutTargetReference{Kind: "Deployment", Name: "site"},
			Service:   "site",
			Strategy: deliveryv1.RolloutStrategy{BlueGreen: &deliveryv1.BlueGreenStrategy{
				PreviewService:       "site-preview",
				PrePromotionAnalysis: &deliveryv1.RolloutAnalysis{Templates: []deliveryv1.TemplateRef{{Name: "healthy"}}, Args: canaryHashArg},
				ScaleDownDelay:       &metav1.Duration{Duration: 1e9},
			}},
		},
	}
	// The analysis's metric measures every second until it passes, with
	// any number of failures tolerated: the test decides when it passes.
	tmpl := verdict.template(ns, "healthy")
	tmpl.Spec.Metrics[0].Interval = &metav1.Duration{Duration: 1e9}
	tmpl.Spec.Metrics[0].FailureLimit = ptrInt32(-1)
	tmpl.Spec.Metrics[0].ConsecutiveSuccessLimit = ptrInt32(1)
	create(t, deployment(ns, "site", 3, "site:1"), service(ns, "site", map[string]string{"app": "site"}),
		service(ns, "site-preview", map[string]string{"app": "site"}), tmpl, ro)
	waitRollout(t, ro, "healthy", healthy)
	stable := ro.Status.StableRevision.PodTemplateHash
	if got := selectorHash(t, ns, "site"); got != stable {
		t.Fatalf("active selector hash %q, want %q", got, stable)
	}
	wantUserKeys(t, ns, "site", map[string]string{"app": "site"})

	setImage(t, ns, "site", "site:2")
	waitRollout(t, ro, "pre-promotion analysis running", func(ro *deliveryv1.Rollout) error {
		if len(ro.Status.AnalysisRuns) == 0 || ro.Status.AnalysisRuns[0].Kind != deliveryv1.AnalysisKindPrePromotion {
			return fmt.Errorf("phase %s (%s) runs %+v", ro.Status.Phase, ro.Status.Message, ro.Status.AnalysisRuns)
		}
		return nil
	})
	preview := ro.Status.CanaryRevision.PodTemplateHash
	waitFor(t, "preview pods and endpoints", func() error {
		if pods := readyPods(t, ns, map[string]string{"app": "site"}); counts(pods.byImage) != "site:1=3 site:2=3" {
			return fmt.Errorf("ready pods %s", counts(pods.byImage))
		}
		if eps := endpointsByImage(t, ns, "site-preview"); counts(eps) != "site:2=3" {
			return fmt.Errorf("preview endpoints %s", counts(eps))
		}
		return nil
	})
	if eps := endpointsByImage(t, ns, "site"); counts(eps) != "site:1=3" {
		t.Errorf("active endpoints %s before promotion", counts(eps))
	}
	if got := selectorHash(t, ns, "site"); got != stable {
		t.Fatalf("active selector switched to %q while the analysis runs", got)
	}
	wantUserKeys(t, ns, "site-preview", map[string]string{"app": "site"})

	verdict.pass.Store(true)
	waitRollout(t, ro, "waiting for promotion", phaseIs(deliveryv1.RolloutPhasePaused))
	if got := selectorHash(t, ns, "site"); got != stable {
		t.Fatalf("active selector switched to %q before promotion", got)
	}
	annotate(t, ro, deliveryv1.PromoteAnnotation)
	waitRollout(t, ro, "healthy on site:2", func(ro *deliveryv1.Rollout) error {
		if err := healthy(ro); err != nil {
			return err
		}
		if ro.Status.StableRevision.PodTemplateHash != preview {
			return fmt.Errorf("stable %s", ro.Status.StableRevision.PodTemplateHash)
		}
		return nil
	})
	if got := selectorHash(t, ns, "site"); got != preview {
		t.Errorf("active selector hash %q, want %q", got, preview)
	}
	wantUserKeys(t, ns, "site", map[string]string{"app": "site"})
	wantPods(t, ns, "site", map[string]int{"site:2": 3})

	// Deleting the Rollout takes its key out of both selectors and leaves
	// the user's: the Services select the app's pods, not none.
	if err := env.Client.Delete(context.Background(), ro); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"site", "site-preview"} {
		waitFor(t, "Service "+name+" released", func() error {
			if got := selectorHash(t, ns, name); got != "" {
				return fmt.Errorf("selector hash %q", got)
			}
			return nil
		})
		wantUserKeys(t, ns, name, map[string]string{"app": "site"})
	}
}

func ptrInt32(v int32) *int32 { return &v }

// TestBlueGreenPostPromotionSwitchesBack: with autoPromotion the active
// Service switches by itself once the preview is Ready; a failing
// post-promotion analysis switches it back to the stable pods at once and
// aborts, the preview kept at zero replicas.
func TestBlueGreenPostPromotionSwitchesBack(t *testing.T) {
	startManager(t)
	ns := namespace(t)
	verdict := newVerdictServer(t, false)
	ro := &deliveryv1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "docs"},
		Spec: deliveryv1.RolloutSpec{
			TargetRef: deliveryv1.RolloutTargetReference{Kind: "Deployment", Name: "docs"},
			Service:   "docs",
			Strategy: deliveryv1.RolloutStrategy{BlueGreen: &deliveryv1.BlueGreenStrategy{
				PreviewReplicas:       ptrInt32(1),
				AutoPromotion:         &deliveryv1.AutoPromotion{Enabled: true},
				PostPromotionAnalysis: &deliveryv1.RolloutAnalysis{Templates: []deliveryv1.TemplateRef{{Name: "healthy"}}, Args: canaryHashArg},
			}},
		},
	}
	create(t, deployment(ns, "docs", 2, "docs:1"), service(ns, "docs", map[string]string{"app": "docs"}), verdict.template(ns, "healthy"), ro)
	waitRollout(t, ro, "healthy", healthy)
	stable := ro.Status.StableRevision.PodTemplateHash

	setImage(t, ns, "docs", "docs:2")
	waitRollout(t, ro, "aborted", phaseIs(deliveryv1.RolloutPhaseAborted))
	a := ro.Status.Aborted
	if a.Reason != deliveryv1.ReasonAnalysisFailed || !strings.Contains(a.Message, "post-promotion analysis") || ro.Status.PromotedAt == nil {
		t.Errorf("aborted %+v promotedAt %v; want a post-promotion failure after the switch", a, ro.Status.PromotedAt)
	}
	if got := selectorHash(t, ns, "docs"); got != stable {
		t.Errorf("active selector hash %q after the abort, want stable %q", got, stable)
	}
	wantPods(t, ns, "docs", map[string]int{"docs:1": 2})
}
