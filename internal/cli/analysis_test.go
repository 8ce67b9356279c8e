package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	deliverycontroller "github.com/strata-dev/strata/internal/delivery/controller"
	"github.com/strata-dev/strata/internal/testenv/managedtest"
)

// TestAnalysisRunAndGet runs a template once with `strata analysis run`,
// as a template author does, and reads the run back with `analysis get`.
func TestAnalysisRunAndGet(t *testing.T) {
	managedtest.StartManager(t, env.Config, func(mgr ctrl.Manager) error {
		return deliverycontroller.Setup(mgr, deliverycontroller.Options{Workers: 2})
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rate := "0.01"
		if r.URL.Path == "/bad" {
			rate = "0.9"
		}
		_, _ = w.Write([]byte(`{"rate":` + rate + `}`))
	}))
	defer srv.Close()
	tmpl := &deliveryv1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cli-web"},
		Spec: deliveryv1.AnalysisTemplateSpec{
			Args: []deliveryv1.Argument{{Name: "path"}},
			Metrics: []deliveryv1.Metric{{Name: "rate", NoData: deliveryv1.NoDataFail, SuccessCondition: "result < 0.05",
				Provider: deliveryv1.MetricProvider{Web: &deliveryv1.WebMetric{URL: srv.URL + "/{{args.path}}", JSONPath: "{.rate}"}}}},
		},
	}
	if err := env.Client.Create(context.Background(), tmpl); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		path string
		code int
		want []string
	}{
		"passes": {path: "ok", code: 0, want: []string{": Successful", srv.URL + "/ok", "0.01"}},
		"fails":  {path: "bad", code: 1, want: []string{": Failed", srv.URL + "/bad", "0.9", `does not meet successCondition "result < 0.05"`}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run(context.Background(), []string{"analysis", "run", "cli-web", "--arg", "path=" + tc.path}, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out.String(), errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			name := regexp.MustCompile(`AnalysisRun default/(\S+) created`).FindStringSubmatch(errb.String())
			if name == nil {
				t.Fatalf("no run name in %q", errb.String())
			}
			out.Reset()
			if code := Run(context.Background(), []string{"analysis", "get", name[1], "-o", "json"}, &out, &errb); code != 0 {
				t.Fatalf("get: exit %d: %s", code, errb.String())
			}
			run := &deliveryv1.AnalysisRun{}
			if err := json.Unmarshal(out.Bytes(), run); err != nil {
				t.Fatal(err)
			}
			if run.Status.MetricResults[0].Measurements[0].Query != srv.URL+"/"+tc.path {
				t.Errorf("resolved URL %q", run.Status.MetricResults[0].Measurements[0].Query)
			}
		})
	}
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"analysis", "get", "nope"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "cannot get AnalysisRun default/nope") {
		t.Errorf("get of a missing run: exit %d, %q", code, errb.String())
	}
}
