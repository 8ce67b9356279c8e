package promtest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestScrapesTarget checks that the Prometheus started here scrapes the
// test's own /metrics: a gauge the test sets can be queried.
func TestScrapesTarget(t *testing.T) {
	tg := NewTarget(t)
	tg.Gauge("promtest_value", "app").WithLabelValues("demo").Set(42)
	p := Start(t, tg.Addr)
	p.WaitFor(t, `promtest_value{app="demo"} == 42`)
	n, err := p.Query(context.Background(), `promtest_value{app="other"}`)
	if err != nil || n != 0 {
		t.Fatalf("query for another app: %d samples, err %v; want 0", n, err)
	}
}

// TestPodTrafficPerVersion serves simulated traffic for two versions of a
// Deployment (pod-template hashes) and a pod that is not Ready: the real
// Prometheus scrapes it, and the error ratio of each version is what its
// pods' annotation says; the pod that is not Ready serves nothing.
func TestPodTrafficPerVersion(t *testing.T) {
	pod := func(name, hash, ratio string, ready corev1.ConditionStatus) corev1.Pod {
		p := corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID(name), Labels: map[string]string{"pod-template-hash": hash}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}},
		}
		if ratio != "" {
			p.Annotations = map[string]string{ErrorRatioAnnotation: ratio}
		}
		return p
	}
	pods := []corev1.Pod{
		pod("web-good-1", "good", "", corev1.ConditionTrue),
		pod("web-good-2", "good", "0", corev1.ConditionTrue),
		pod("web-bad-1", "bad", "0.4", corev1.ConditionTrue),
		pod("web-crashing-1", "crashing", "", corev1.ConditionFalse),
	}
	tg := NewTarget(t)
	tg.Traffic(func(context.Context) ([]corev1.Pod, error) { return pods, nil })
	p := Start(t, tg.Addr)
	ratio := func(hash string) string {
		return `sum(rate(http_requests_total{namespace="shop",pod_template_hash="` + hash + `",code="500"}[5s])) / sum(rate(http_requests_total{namespace="shop",pod_template_hash="` + hash + `"}[5s]))`
	}
	p.WaitFor(t, ratio("bad")+` > 0`)
	ctx := context.Background()
	cases := map[string]struct {
		query string
		want  []float64
	}{
		"good version answers every request": {query: ratio("good"), want: []float64{0}},
		"bad version fails 40%":              {query: ratio("bad"), want: []float64{0.4}},
		"a pod that is not Ready serves nothing": {
			query: `http_requests_total{pod_template_hash="crashing"}`, want: []float64{},
		},
	}
	for name, tc := range cases {
		got, err := p.Values(ctx, tc.query)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", name, diff)
		}
	}
}
