package event

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
)

func TestFilter(t *testing.T) {
	sync := Object{APIVersion: "gitops.strata.dev/v1alpha1", Kind: "Sync", Namespace: "team", Name: "app"}
	cases := map[string]struct {
		spec    notificationv1.AlertSpec
		obj     Object
		labels  map[string]string
		event   Event
		source  bool
		wanted  bool
		wantErr string
	}{
		"any sync": {spec: notificationv1.AlertSpec{EventSources: []notificationv1.EventSource{{Kind: "Sync", Name: "*"}}},
			obj: sync, event: Event{Severity: "info"}, source: true, wanted: true},
		"other name": {spec: notificationv1.AlertSpec{EventSources: []notificationv1.EventSource{{Kind: "Sync", Name: "web"}}},
			obj: sync, event: Event{Severity: "info"}},
		"other namespace object": {spec: notificationv1.AlertSpec{EventSources: []notificationv1.EventSource{{Kind: "Sync", Name: "*"}}},
			obj: Object{APIVersion: sync.APIVersion, Kind: "Sync", Namespace: "other", Name: "app"}, event: Event{Severity: "info"}},
		"not a strata kind": {spec: notificationv1.AlertSpec{EventSources: []notificationv1.EventSource{{Kind: "Deployment", Name: "*"}}},
			obj: Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "team", Name: "app"}, event: Event{Severity: "info"}},
		"labels match": {spec: notificationv1.AlertSpec{EventSources: []notificationv1.EventSource{{Kind: "Sync", Name: "*", MatchLabels: map[string]string{"tier": "web"}}}},
			obj: sync, labels: map[string]string{"tier": "web"}, event: Event{Severity: "info"}, source: true, wanted: true},
		"labels differ": {spec: notificationv1.AlertSpec{EventSources: []notificationv1.EventSource{{Kind: "Sync", Name: "*", MatchLabels: map[string]string{"tier": "web"}}}},
			obj: sync, labels: map[string]string{"tier": "db"}, event: Event{Severity: "info"}},
		"errors only drops info": {spec: notificationv1.AlertSpec{EventSeverity: "error", EventSources: []notificationv1.EventSource{{Kind: "Sync", Name: "*"}}},
			obj: sync, event: Event{Severity: "info"}, source: true},
		"inclusion": {spec: notificationv1.AlertSpec{InclusionList: []string{"^revision"}, EventSources: []notificationv1.EventSource{{Kind: "Sync", Name: "*"}}},
			obj: sync, event: Event{Severity: "error", Message: "revision x failed"}, source: true, wanted: true},
		"exclusion": {spec: notificationv1.AlertSpec{ExclusionList: []string{"noise"}, EventSources: []notificationv1.EventSource{{Kind: "Sync", Name: "*"}}},
			obj: sync, event: Event{Severity: "error", Message: "some noise"}, source: true},
		"bad regex": {spec: notificationv1.AlertSpec{ExclusionList: []string{"("}, EventSources: []notificationv1.EventSource{{Kind: "Sync", Name: "*"}}},
			wantErr: "spec.exclusionList[0]"},
		"cross namespace": {spec: notificationv1.AlertSpec{EventSources: []notificationv1.EventSource{{Kind: "Sync", Name: "*", Namespace: "victim"}}},
			wantErr: "spec.eventSources[0].namespace"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := NewFilter("team", &tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			src := f.Source(tc.obj, func() map[string]string { return tc.labels }) != nil
			wanted := src && f.Wanted(&tc.event, false)
			if diff := cmp.Diff([]bool{tc.source, tc.wanted}, []bool{src, wanted}); diff != "" {
				t.Errorf("(source, wanted) -want +got:\n%s", diff)
			}
		})
	}
}

func TestTemplates(t *testing.T) {
	ev := From(&corev1.Event{
		InvolvedObject: corev1.ObjectReference{APIVersion: "gitops.strata.dev/v1alpha1", Kind: "Sync", Namespace: "team", Name: "app"},
		Type:           corev1.EventTypeWarning, Reason: "HealthCheckFailed", Message: "not ready",
	}, map[string]string{"env": "prod"})
	ev.Revision = "main@sha1:0123abc"
	cases := map[string]struct {
		summary, body         string
		wantSummary, wantBody string
		wantErr               string
	}{
		"defaults": {wantSummary: "Sync team/app: HealthCheckFailed", wantBody: "not ready"},
		"fields": {summary: "{{.Severity}} {{.InvolvedObject.Kind}}", body: `{{.Reason}} {{.CommitSHA}} {{index .Metadata "env"}}`,
			wantSummary: "error Sync", wantBody: "HealthCheckFailed 0123abc prod"},
		"parse error":   {body: "{{.Reason", wantErr: "spec.template"},
		"unknown field": {summary: "{{.Nope}}", wantErr: "spec.summary"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tm, err := NewTemplates(tc.summary, tc.body)
			var body string
			if err == nil {
				e := *ev
				body, err = tm.Render(&e)
				if err == nil && (e.Summary != tc.wantSummary || body != tc.wantBody) {
					t.Errorf("got %q / %q, want %q / %q", e.Summary, body, tc.wantSummary, tc.wantBody)
				}
			}
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzTemplates(f *testing.F) {
	f.Add("{{.Reason}}", "{{.Message}}")
	f.Add("{{range .Metadata}}{{.}}{{end}}", "{{printf \"%v\" .}}")
	ev := &Event{Reason: "r", Message: "m", Metadata: map[string]string{"a": "b"}}
	f.Fuzz(func(t *testing.T, s, b string) {
		tm, err := NewTemplates(s, b)
		if err != nil {
			return
		}
		e := *ev
		_, _ = tm.Render(&e)
	})
}
