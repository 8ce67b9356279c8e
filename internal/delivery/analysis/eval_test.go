package analysis

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

func TestEvaluate(t *testing.T) {
	e, err := NewEvaluator()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		metric deliveryv1.Metric
		value  any
		noData bool
		want   string
	}{
		"success condition met":           {deliveryv1.Metric{SuccessCondition: "result[0] < 0.05"}, []any{0.01}, false, deliveryv1.PhaseSuccessful},
		"success condition not met":       {deliveryv1.Metric{SuccessCondition: "result[0] < 0.05"}, []any{0.5}, false, deliveryv1.PhaseFailed},
		"failure condition met":           {deliveryv1.Metric{FailureCondition: "result[0] >= 0.05"}, []any{0.5}, false, deliveryv1.PhaseFailed},
		"failure condition not met":       {deliveryv1.Metric{FailureCondition: "result[0] >= 0.05"}, []any{0.01}, false, deliveryv1.PhaseSuccessful},
		"both, neither met":               {deliveryv1.Metric{SuccessCondition: "result < 1.0", FailureCondition: "result > 5.0"}, 3.0, false, deliveryv1.PhaseInconclusive},
		"both, failure wins":              {deliveryv1.Metric{SuccessCondition: "result > 1.0", FailureCondition: "result > 5.0"}, 6.0, false, deliveryv1.PhaseFailed},
		"no condition, false":             {deliveryv1.Metric{}, false, false, deliveryv1.PhaseFailed},
		"no condition, true":              {deliveryv1.Metric{}, true, false, deliveryv1.PhaseSuccessful},
		"no condition, number":            {deliveryv1.Metric{}, 2.0, false, deliveryv1.PhaseSuccessful},
		"index out of range is an error":  {deliveryv1.Metric{SuccessCondition: "result[1] < 1.0"}, []any{0.1}, false, deliveryv1.PhaseError},
		"non-bool condition is an error":  {deliveryv1.Metric{SuccessCondition: "result"}, 1.0, false, deliveryv1.PhaseError},
		"no data fails":                   {deliveryv1.Metric{NoData: deliveryv1.NoDataFail, SuccessCondition: "result[0] < 1.0"}, []any{}, true, deliveryv1.PhaseFailed},
		"no data passes":                  {deliveryv1.Metric{NoData: deliveryv1.NoDataPass, SuccessCondition: "result[0] < 1.0"}, []any{}, true, deliveryv1.PhaseSuccessful},
		"no data inconclusive":            {deliveryv1.Metric{NoData: deliveryv1.NoDataInconclusive, SuccessCondition: "result[0] < 1.0"}, nil, true, deliveryv1.PhaseInconclusive},
		"map result with jsonpath values": {deliveryv1.Metric{SuccessCondition: "result.rate < 0.1"}, map[string]any{"rate": 0.01}, false, deliveryv1.PhaseSuccessful},
		"int compared with double":        {deliveryv1.Metric{SuccessCondition: "result == 1"}, 1.0, false, deliveryv1.PhaseSuccessful},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := e.Evaluate(tc.metric, tc.value, tc.noData)
			if got.Phase != tc.want {
				t.Errorf("phase %s (%s), want %s", got.Phase, got.Message, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	e, _ := NewEvaluator()
	if err := e.Check(deliveryv1.Metric{Name: "m", SuccessCondition: "result <"}); err == nil {
		t.Error("a condition that does not compile passed Check")
	}
	if err := e.Check(deliveryv1.Metric{Name: "m", Provider: deliveryv1.MetricProvider{Kubernetes: &deliveryv1.KubernetesMetric{Condition: "size(objects) > 0"}}}); err != nil {
		t.Errorf("kubernetes condition: %v", err)
	}
}

func measurements(phases ...string) *deliveryv1.MetricResult {
	r := &deliveryv1.MetricResult{}
	for _, p := range phases {
		Record(r, deliveryv1.Measurement{Phase: p})
	}
	return r
}

func TestAssess(t *testing.T) {
	const (
		S = deliveryv1.PhaseSuccessful
		F = deliveryv1.PhaseFailed
		I = deliveryv1.PhaseInconclusive
		E = deliveryv1.PhaseError
		R = deliveryv1.PhaseRunning
	)
	cases := map[string]struct {
		metric deliveryv1.Metric
		got    []string
		want   string
	}{
		"one measurement by default":              {deliveryv1.Metric{}, []string{S}, S},
		"one failure fails by default":            {deliveryv1.Metric{}, []string{F}, F},
		"count not reached":                       {deliveryv1.Metric{Count: ptr.To[int32](3)}, []string{S, S}, R},
		"count reached":                           {deliveryv1.Metric{Count: ptr.To[int32](3)}, []string{S, S, S}, S},
		"failures within failureLimit":            {deliveryv1.Metric{Count: ptr.To[int32](3), FailureLimit: ptr.To[int32](1)}, []string{F, S, S}, S},
		"failures beyond failureLimit":            {deliveryv1.Metric{Count: ptr.To[int32](5), FailureLimit: ptr.To[int32](1)}, []string{F, S, F}, F},
		"failureLimit -1 tolerates all":           {deliveryv1.Metric{Count: ptr.To[int32](3), FailureLimit: ptr.To[int32](-1)}, []string{F, F, F}, S},
		"inconclusive beyond limit":               {deliveryv1.Metric{Count: ptr.To[int32](3)}, []string{I}, I},
		"inconclusive within limit":               {deliveryv1.Metric{Count: ptr.To[int32](3), InconclusiveLimit: ptr.To[int32](1)}, []string{I, S}, R},
		"errors up to the default limit of 4":     {deliveryv1.Metric{Count: ptr.To[int32](10)}, []string{E, E, E, E}, R},
		"errors beyond the default limit":         {deliveryv1.Metric{Count: ptr.To[int32](10)}, []string{E, E, E, E, E}, E},
		"a success resets consecutive errors":     {deliveryv1.Metric{Count: ptr.To[int32](10), ConsecutiveErrorLimit: ptr.To[int32](1)}, []string{E, S, E, S}, R},
		"consecutiveErrorLimit 0":                 {deliveryv1.Metric{Count: ptr.To[int32](10), ConsecutiveErrorLimit: ptr.To[int32](0)}, []string{E}, E},
		"errors alone never pass at count":        {deliveryv1.Metric{Count: ptr.To[int32](2)}, []string{E, E}, E},
		"an error among successes passes":         {deliveryv1.Metric{Count: ptr.To[int32](2)}, []string{E, S}, S},
		"consecutive successes reached":           {deliveryv1.Metric{ConsecutiveSuccessLimit: ptr.To[int32](2), FailureLimit: ptr.To[int32](-1), Interval: dur()}, []string{F, S, S}, S},
		"consecutive successes not yet":           {deliveryv1.Metric{ConsecutiveSuccessLimit: ptr.To[int32](2), FailureLimit: ptr.To[int32](-1), Interval: dur()}, []string{S, F, S}, R},
		"count reached without consecutive":       {deliveryv1.Metric{Count: ptr.To[int32](3), ConsecutiveSuccessLimit: ptr.To[int32](3), FailureLimit: ptr.To[int32](-1)}, []string{S, F, S}, F},
		"interval without count runs on":          {deliveryv1.Metric{Interval: dur()}, []string{S, S, S, S}, R},
		"interval without count fails on failure": {deliveryv1.Metric{Interval: dur()}, []string{S, F}, F},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := Assess(LimitsOf(tc.metric), measurements(tc.got...))
			if got.Phase != tc.want {
				t.Errorf("phase %s (%s), want %s", got.Phase, got.Message, tc.want)
			}
		})
	}
}

// TestErrorsCountTowardsCount pins a choice: Error measurements count
// towards count, so a metric whose every measurement errs within the error
// limit ends Successful only if errors stay under consecutiveErrorLimit.
func TestErrorsCountTowardsCount(t *testing.T) {
	r := measurements(deliveryv1.PhaseError, deliveryv1.PhaseSuccessful)
	if r.Count != 2 || r.Error != 1 || r.ConsecutiveError != 0 || r.ConsecutiveSuccess != 1 {
		t.Errorf("counters %+v", r)
	}
}

func TestRecordBoundsMeasurements(t *testing.T) {
	r := &deliveryv1.MetricResult{}
	for i := 0; i < MaxMeasurements+5; i++ {
		Record(r, deliveryv1.Measurement{Phase: deliveryv1.PhaseSuccessful})
	}
	if len(r.Measurements) != MaxMeasurements || r.Count != MaxMeasurements+5 {
		t.Errorf("%d measurements kept, count %d", len(r.Measurements), r.Count)
	}
}

func TestSubstitute(t *testing.T) {
	a := Args{Values: map[string]string{"app": `x"} or vector(1) or {a="`, "token": "s3cret", "svc": "a b&c=d"}, Secret: map[string]bool{"token": true}}
	cases := map[string]struct {
		in, want, shown string
		esc             Escaper
		err             bool
	}{
		"promql label value cannot break out": {in: `rate(errors{app="{{args.app}}"}[1m])`, esc: PromQL,
			want: `rate(errors{app="x\"} or vector(1) or {a=\""}[1m])`, shown: `rate(errors{app="x\"} or vector(1) or {a=\""}[1m])`},
		"secret is masked in what is shown": {in: "http://h/?t={{ args.token }}", esc: URL, want: "http://h/?t=s3cret", shown: "http://h/?t=" + Masked},
		"url escaping":                      {in: "http://h/{{args.svc}}", esc: URL, want: "http://h/a+b%26c%3Dd", shown: "http://h/a+b%26c%3Dd"},
		"undefined argument":                {in: "{{args.nope}}", esc: Raw, err: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, shown, err := a.Substitute(tc.in, tc.esc)
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("resolved (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.shown, shown); diff != "" {
				t.Errorf("shown (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrometheusResults(t *testing.T) {
	cases := map[string]struct {
		body   string
		want   any
		noData bool
		err    bool
	}{
		"vector":          {body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.25"]}]}}`, want: []any{0.25}},
		"empty vector":    {body: `{"status":"success","data":{"resultType":"vector","result":[]}}`, want: []any{}, noData: true},
		"NaN vector":      {body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}`, want: []any{}, noData: true},
		"scalar":          {body: `{"status":"success","data":{"resultType":"scalar","result":[1,"3"]}}`, want: 3.0},
		"NaN scalar":      {body: `{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}`, want: math.NaN(), noData: true},
		"matrix refused":  {body: `{"status":"success","data":{"resultType":"matrix","result":[]}}`, err: true},
		"bad query":       {body: `{"status":"error","errorType":"bad_data","error":"parse error"}`, err: true},
		"not prometheus":  {body: `<html>`, err: true},
		"garbage numbers": {body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}`, err: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v1/query" || r.URL.Query().Get("query") != "up" {
					http.Error(w, "unexpected request", http.StatusBadRequest)
					return
				}
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			got, noData, err := Prometheus(context.Background(), srv.Client(), srv.URL, "up", Request{})
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if noData != tc.noData {
				t.Errorf("noData %v", noData)
			}
			if f, ok := tc.want.(float64); ok && math.IsNaN(f) {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" && !tc.err {
				t.Errorf("value (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJSONPath(t *testing.T) {
	doc := map[string]any{"data": map[string]any{"rate": 0.5, "list": []any{1.0, 2.0}}}
	cases := map[string]struct {
		path   string
		want   any
		noData bool
	}{
		"braces":    {path: "{.data.rate}", want: 0.5},
		"no braces": {path: ".data.rate", want: 0.5},
		"missing":   {path: "{.data.nope}", noData: true},
		"list":      {path: "{.data.list[*]}", want: []any{1.0, 2.0}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, noData, err := JSONPath(doc, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if noData != tc.noData {
				t.Errorf("noData %v", noData)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func dur() *metav1.Duration { return &metav1.Duration{Duration: time.Second} }
