package controller

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
	"github.com/strata-dev/strata/internal/testenv/amtest"
)

// An Alert with an alertmanager Provider posts Strata's failure to a real
// Alertmanager, where it is an active alert with Strata's labels.
func TestAlertmanagerProvider(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns)
	sink := newEndpoint(t) // Alertmanager's own receiver, unused here
	am := amtest.Start(t, amtest.Config{WebhookURL: sink.URL + "/am"})
	create(t, provider(ns, "am", notificationv1.ProviderAlertmanager, am.URL, nil),
		alert(ns, "to-am", "am", func(s *notificationv1.AlertSpec) {
			s.EventSeverity = notificationv1.SeverityError
			s.EventMetadata = map[string]string{"team": "shop"}
		}))
	waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "to-am"}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)
	emit(t, ns, "Sync", "shop", corev1.EventTypeWarning, "HealthCheckFailed", "Deployment/shop not ready", nil)
	var labels map[string]string
	eventually(t, 30*time.Second, "the alert in Alertmanager", func() (bool, string) {
		resp, err := http.Get(am.URL + "/api/v2/alerts?active=true")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var alerts []struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			if a.Labels["namespace"] == ns {
				labels = a.Labels
				return a.Annotations["message"] == "Deployment/shop not ready", fmt.Sprint(a.Annotations)
			}
		}
		return false, fmt.Sprintf("%d alerts, none of namespace %s", len(alerts), ns)
	})
	want := map[string]string{"alertname": "StrataHealthCheckFailed", "severity": "error", "kind": "Sync", "name": "shop", "namespace": ns, "reason": "HealthCheckFailed", "team": "shop"}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, labels[k], v, labels)
		}
	}
}
