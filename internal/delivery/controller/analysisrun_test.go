package controller

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/testenv/managedtest"
	"github.com/strata-dev/strata/internal/testenv/promtest"
)

func every(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func errorRateTemplate(ns, address string) *deliveryv1.AnalysisTemplate {
	return &deliveryv1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "error-rate"},
		Spec: deliveryv1.AnalysisTemplateSpec{
			Args: []deliveryv1.Argument{{Name: "app"}},
			Metrics: []deliveryv1.Metric{{
				Name:             "error-rate",
				Interval:         every(time.Second),
				Count:            ptr.To[int32](2),
				NoData:           deliveryv1.NoDataFail,
				SuccessCondition: "result[0] < 0.05",
				Provider: deliveryv1.MetricProvider{Prometheus: &deliveryv1.PrometheusMetric{
					Address: address,
					Query:   `app_error_rate{app="{{args.app}}"}`,
				}},
			}},
		},
	}
}

func runOf(ns, name string, templates []deliveryv1.TemplateRef, args map[string]string, metrics ...deliveryv1.Metric) *deliveryv1.AnalysisRun {
	run := &deliveryv1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       deliveryv1.AnalysisRunSpec{Templates: templates, Metrics: metrics},
	}
	for k, v := range args {
		run.Spec.Args = append(run.Spec.Args, deliveryv1.Argument{Name: k, Value: ptr.To(v)})
	}
	return run
}

// TestPrometheusAnalysis runs a template against a real Prometheus that
// scrapes this test's /metrics: a low error rate passes, a high one fails
// with an event naming metric, value and condition, a series that is not
// there follows noData, and an argument that tries to escape its label
// value matches nothing instead of passing.
func TestPrometheusAnalysis(t *testing.T) {
	startManager(t)
	ctx := context.Background()
	tg := promtest.NewTarget(t)
	rate := tg.Gauge("app_error_rate", "app")
	rate.WithLabelValues("good").Set(0.01)
	rate.WithLabelValues("bad").Set(0.5)
	prom := promtest.Start(t, tg.Addr)
	prom.WaitFor(t, `app_error_rate{app="bad"}`)

	ns := namespace(t)
	if err := env.Client.Create(ctx, errorRateTemplate(ns, prom.Address)); err != nil {
		t.Fatal(err)
	}
	tmpl := []deliveryv1.TemplateRef{{Name: "error-rate"}}
	cases := map[string]struct {
		app       string
		phase     string
		value     string
		message   string
		wantQuery string
	}{
		"low error rate passes":    {app: "good", phase: deliveryv1.PhaseSuccessful, value: "[0.01]", wantQuery: `app_error_rate{app="good"}`},
		"high error rate fails":    {app: "bad", phase: deliveryv1.PhaseFailed, value: "[0.5]", message: `value [0.5] does not meet successCondition "result[0] < 0.05"`},
		"no series follows noData": {app: "gone", phase: deliveryv1.PhaseFailed, message: "no data (noData: Fail)"},
		"an argument cannot escape its label value": {app: `good"} or vector(0) or {app="`, phase: deliveryv1.PhaseFailed, message: "no data",
			wantQuery: `app_error_rate{app="good\"} or vector(0) or {app=\""}`},
	}
	i := 0
	for name, tc := range cases {
		i++
		t.Run(name, func(t *testing.T) {
			run := runOf(ns, "run-"+managedtest.Suffix(), tmpl, map[string]string{"app": tc.app})
			if err := env.Client.Create(ctx, run); err != nil {
				t.Fatal(err)
			}
			run = waitDone(t, run)
			if run.Status.Phase != tc.phase {
				t.Fatalf("phase %s (%s), want %s", run.Status.Phase, run.Status.Message, tc.phase)
			}
			mr := run.Status.MetricResults[0]
			if len(mr.Measurements) == 0 {
				t.Fatal("no measurement recorded")
			}
			last := mr.Measurements[len(mr.Measurements)-1]
			if last.Value != tc.value {
				t.Errorf("value %q, want %q", last.Value, tc.value)
			}
			if !strings.Contains(last.Message, tc.message) || (tc.phase != deliveryv1.PhaseSuccessful && !strings.Contains(run.Status.Message, "error-rate")) {
				t.Errorf("measurement message %q, run message %q; want %q naming the metric", last.Message, run.Status.Message, tc.message)
			}
			if tc.wantQuery != "" && last.Query != tc.wantQuery {
				t.Errorf("resolved query %q, want %q", last.Query, tc.wantQuery)
			}
			ready := conditions.Get(run, conditions.Ready)
			wantReady := metav1.ConditionFalse
			if tc.phase == deliveryv1.PhaseSuccessful {
				wantReady = metav1.ConditionTrue
			}
			if ready == nil || ready.Status != wantReady || ready.Reason != tc.phase {
				t.Errorf("Ready %+v", ready)
			}
			if tc.phase == deliveryv1.PhaseFailed {
				managedtest.HasEvent(t, env.Client, run.Name, deliveryv1.EventMeasurementFailed)
			}
		})
	}
}

// TestUnreachablePrometheus: a Prometheus that does not answer gives Error
// measurements and an Error verdict, never a pass.
func TestUnreachablePrometheus(t *testing.T) {
	startManager(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ns := namespace(t)
	run := runOf(ns, "unreachable", nil, nil, deliveryv1.Metric{
		Name: "error-rate", Interval: every(200 * time.Millisecond), Count: ptr.To[int32](5), ConsecutiveErrorLimit: ptr.To[int32](1),
		NoData: deliveryv1.NoDataPass, SuccessCondition: "result[0] < 0.05",
		Provider: deliveryv1.MetricProvider{Prometheus: &deliveryv1.PrometheusMetric{Address: "http://" + addr, Query: "up"}},
	})
	if err := env.Client.Create(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	run = waitDone(t, run)
	if run.Status.Phase != deliveryv1.PhaseError {
		t.Fatalf("phase %s (%s), want Error", run.Status.Phase, run.Status.Message)
	}
	mr := run.Status.MetricResults[0]
	if mr.Error != 2 || mr.Successful != 0 {
		t.Errorf("measurements %+v, want 2 errors and no success", mr)
	}
	if !strings.Contains(run.Status.Message, "consecutiveErrorLimit") || !strings.Contains(mr.Measurements[0].Message, "request failed") {
		t.Errorf("run message %q, measurement %q", run.Status.Message, mr.Measurements[0].Message)
	}
	if c := conditions.Get(run, conditions.Stalled); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Stalled %+v", c)
	}
}

// TestWebAndKubernetesMetrics: a loopback web server's JSON and a
// condition over live ConfigMaps.
func TestWebAndKubernetesMetrics(t *testing.T) {
	startManager(t)
	ctx := context.Background()
	var gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.RequestURI()
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"rate": 0.02}})
	}))
	defer srv.Close()
	ns := namespace(t)
	for _, n := range []string{"a", "b"} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n, Labels: map[string]string{"app": "demo"}}, Data: map[string]string{"ready": "true"}}
		if err := env.Client.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}
	run := runOf(ns, "web", nil, map[string]string{"svc": "my svc"},
		deliveryv1.Metric{Name: "web-rate", NoData: deliveryv1.NoDataFail, SuccessCondition: "result < 0.05",
			Provider: deliveryv1.MetricProvider{Web: &deliveryv1.WebMetric{URL: srv.URL + "/rate?svc={{args.svc}}", JSONPath: "{.data.rate}"}}},
		deliveryv1.Metric{Name: "configs-ready", NoData: deliveryv1.NoDataFail,
			Provider: deliveryv1.MetricProvider{Kubernetes: &deliveryv1.KubernetesMetric{APIVersion: "v1", Kind: "ConfigMap",
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "demo"}}, Condition: `size(objects) == 2 && objects.all(o, o.data.ready == "true")`}}},
		deliveryv1.Metric{Name: "nothing-there", NoData: deliveryv1.NoDataPass,
			Provider: deliveryv1.MetricProvider{Kubernetes: &deliveryv1.KubernetesMetric{APIVersion: "v1", Kind: "ConfigMap", Name: "absent", Condition: "false"}}},
	)
	if err := env.Client.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	run = waitDone(t, run)
	if run.Status.Phase != deliveryv1.PhaseSuccessful {
		t.Fatalf("phase %s (%s)", run.Status.Phase, run.Status.Message)
	}
	var got []string
	for _, mr := range run.Status.MetricResults {
		got = append(got, mr.Name+"="+mr.Measurements[0].Value)
	}
	if diff := cmp.Diff([]string{"web-rate=0.02", "configs-ready=true", "nothing-there="}, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if gotPath != "/rate?svc=my+svc" {
		t.Errorf("web request %q", gotPath)
	}
	if q := run.Status.MetricResults[0].Measurements[0].Query; q != srv.URL+"/rate?svc=my+svc" {
		t.Errorf("resolved URL %q", q)
	}
}

// TestInvalidRun: a missing template or a condition that does not compile
// ends the run in Error at once, naming it.
func TestInvalidRun(t *testing.T) {
	startManager(t)
	ns := namespace(t)
	cases := map[string]struct {
		run  *deliveryv1.AnalysisRun
		want string
	}{
		"missing template": {runOf(ns, "missing", []deliveryv1.TemplateRef{{Name: "nope"}}, nil), "AnalysisTemplate nope"},
		"bad condition": {runOf(ns, "badcel", nil, nil, deliveryv1.Metric{Name: "m", NoData: deliveryv1.NoDataFail, SuccessCondition: "result <",
			Provider: deliveryv1.MetricProvider{Kubernetes: &deliveryv1.KubernetesMetric{APIVersion: "v1", Kind: "ConfigMap", Condition: "true"}}}), `successCondition "result <" does not compile`},
		"missing argument": {runOf(ns, "noarg", nil, nil, deliveryv1.Metric{Name: "m", NoData: deliveryv1.NoDataFail,
			Provider: deliveryv1.MetricProvider{Web: &deliveryv1.WebMetric{URL: "http://127.0.0.1:1/{{args.x}}"}}}), "metric m uses argument x, which is not defined"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if err := env.Client.Create(context.Background(), tc.run); err != nil {
				t.Fatal(err)
			}
			run := waitDone(t, tc.run)
			if !strings.Contains(run.Status.Message, tc.want) {
				t.Errorf("message %q, want %q", run.Status.Message, tc.want)
			}
		})
	}
}
