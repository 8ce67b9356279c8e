package rollout

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/testenv/promtest"
)

// TestPrometheusAnalysisGatesTheCanary: the canary's analysis queries a
// real Prometheus for the error rate of the canary's own pods (the metric
// is served per pod-template-hash, the run reads the canary's hash from the
// Rollout). A revision whose error rate is high is aborted with every pod
// back on stable; the next revision, with a low rate, is promoted.
func TestPrometheusAnalysisGatesTheCanary(t *testing.T) {
	startManager(t)
	ns := namespace(t)
	tg := promtest.NewTarget(t)
	rate := tg.Gauge("http_error_rate", "revision")
	prom := promtest.Start(t, tg.Addr)
	tmpl := &deliveryv1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "error-rate"},
		Spec: deliveryv1.AnalysisTemplateSpec{
			Args: []deliveryv1.Argument{{Name: "canary"}},
			Metrics: []deliveryv1.Metric{{
				Name: "error-rate", NoData: deliveryv1.NoDataFail, SuccessCondition: "result[0] < 0.05",
				Interval: &metav1.Duration{Duration: time.Second}, Count: ptr.To[int32](2),
				Provider: deliveryv1.MetricProvider{Prometheus: &deliveryv1.PrometheusMetric{
					Address: prom.Address, Query: `http_error_rate{revision="{{args.canary}}"}`}},
			}},
		},
	}
	ro := canaryRollout(ns, "pay", "pay", weight(50), pause(),
		deliveryv1.CanaryStep{Analysis: &deliveryv1.RolloutAnalysis{Templates: []deliveryv1.TemplateRef{{Name: "error-rate"}}, Args: canaryHashArg}})
	create(t, deployment(ns, "pay", 2, "pay:1"), service(ns, "pay", map[string]string{"app": "pay"}), tmpl, ro)
	waitRollout(t, ro, "healthy", healthy)
	stable := ro.Status.StableRevision.PodTemplateHash

	// release waits at the pause for the canary, serves its error rate,
	// waits for Prometheus to have scraped it, and promotes to the
	// analysis.
	release := func(image string, errorRate float64) string {
		setImage(t, ns, "pay", image)
		waitRollout(t, ro, "paused at step 1 with "+image, atStep(1))
		hash := ro.Status.CanaryRevision.PodTemplateHash
		rate.WithLabelValues(hash).Set(errorRate)
		prom.WaitFor(t, fmt.Sprintf(`http_error_rate{revision=%q}`, hash))
		annotate(t, ro, deliveryv1.PromoteAnnotation)
		return hash
	}

	bad := release("pay:bad", 0.4)
	waitRollout(t, ro, "aborted", phaseIs(deliveryv1.RolloutPhaseAborted))
	if a := ro.Status.Aborted; a.Reason != deliveryv1.ReasonAnalysisFailed || a.Revision.PodTemplateHash != bad ||
		!strings.Contains(a.Message, "0.4") || !strings.Contains(a.Message, "error-rate") {
		t.Errorf("aborted %+v; want the failed metric and value", a)
	}
	wantPods(t, ns, "pay", map[string]int{"pay:1": 2})

	good := release("pay:3", 0.01)
	waitRollout(t, ro, "healthy on pay:3", func(ro *deliveryv1.Rollout) error {
		if err := healthy(ro); err != nil {
			return err
		}
		if ro.Status.StableRevision.PodTemplateHash != good || good == stable {
			return fmt.Errorf("stable %s, want %s", ro.Status.StableRevision.PodTemplateHash, good)
		}
		return nil
	})
	wantPods(t, ns, "pay", map[string]int{"pay:3": 2})
}
