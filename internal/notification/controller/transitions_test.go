package controller

import (
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
)

// In transitions mode an episode (failures, then a recovery) is one failure
// message and one recovery message, also when the manager restarts between
// them: the per-object state and the cursor live in the Alert's status.
func TestTransitionsAcrossRestart(t *testing.T) {
	ns := newNamespace(t)
	stop := startManager(t, ns)
	ep := newEndpoint(t)
	create(t, provider(ns, "hook", notificationv1.ProviderGeneric, ep.URL+"/in", nil),
		alert(ns, "episodes", "hook", func(s *notificationv1.AlertSpec) {
			s.Mode = notificationv1.ModeTransitions
			s.EventSeverity = notificationv1.SeverityError
		}))
	waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "episodes"}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)

	emit(t, ns, "Sync", "app", corev1.EventTypeNormal, "Applied", "revision one applied", nil) // not failing: nothing to recover from
	emit(t, ns, "Sync", "app", corev1.EventTypeWarning, "HealthCheckFailed", "Deployment/app not ready (1)", nil)
	emit(t, ns, "Sync", "app", corev1.EventTypeWarning, "HealthCheckFailed", "Deployment/app not ready (2)", nil)
	last := emit(t, ns, "Sync", "app", corev1.EventTypeWarning, "HealthCheckFailed", "Deployment/app not ready (3)", nil)
	waitHandled(t, ns, "episodes", last)
	stop()

	// While the manager is down the object keeps failing, then recovers.
	emit(t, ns, "Sync", "app", corev1.EventTypeWarning, "HealthCheckFailed", "Deployment/app not ready (4)", nil)
	emit(t, ns, "Sync", "app", corev1.EventTypeNormal, "ReconciliationSucceeded", "applied revision two", nil)
	startManager(t, ns)
	last = emit(t, ns, "Sync", "app", corev1.EventTypeNormal, "Applied", "revision two: configured Deployment/app", nil)
	waitHandled(t, ns, "episodes", last)

	got := ep.requests()
	var seen []string
	for _, r := range got {
		m := decode(t, r.Body)
		seen = append(seen, fmt.Sprintf("%v %v", m["transition"], m["reason"]))
	}
	want := []string{"failure HealthCheckFailed", "recovery ReconciliationSucceeded"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("messages %q, want exactly %q", seen, want)
	}
	a := getAlert(t, ns, "episodes")
	if len(a.Status.Objects) != 1 || a.Status.Objects[0].Failing {
		t.Errorf("object state after recovery: %+v", a.Status.Objects)
	}
}

// A message the receiver took while the manager began to stop is recorded
// before it stops: the restarted manager does not send it again. Before,
// the stop cancelled the request the receiver had taken (or the status
// write after it), and the failure went out twice, as it did once in the
// e2e TestNotificationsAcceptance.
func TestMessageSentWhileStoppingIsNotSentAgain(t *testing.T) {
	ns := newNamespace(t)
	stop := startManager(t, ns)
	ep := newEndpoint(t)
	var once sync.Once
	stopping := func() {
		once.Do(func() {
			go stop()
			time.Sleep(500 * time.Millisecond) // the stop reaches the reconcile before the answer
		})
	}
	ep.before.Store(&stopping)
	create(t, provider(ns, "hook", notificationv1.ProviderGeneric, ep.URL+"/in", nil),
		alert(ns, "episodes", "hook", func(s *notificationv1.AlertSpec) {
			s.Mode = notificationv1.ModeTransitions
			s.EventSeverity = notificationv1.SeverityError
		}))
	waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "episodes"}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)
	emit(t, ns, "Sync", "app", corev1.EventTypeWarning, "HealthCheckFailed", "Deployment/app not ready", nil)
	ep.waitRequests(t, 1)
	stop()

	startManager(t, ns)
	last := emit(t, ns, "Sync", "app", corev1.EventTypeNormal, "ReconciliationSucceeded", "applied revision two", nil)
	waitHandled(t, ns, "episodes", last)
	var seen []string
	for _, r := range ep.requests() {
		m := decode(t, r.Body)
		seen = append(seen, fmt.Sprintf("%v %v", m["transition"], m["reason"]))
	}
	if want := []string{"failure HealthCheckFailed", "recovery ReconciliationSucceeded"}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("messages %q, want exactly %q", seen, want)
	}
}

// waitHandled waits until the Alert's cursor has handled ev.
func waitHandled(t *testing.T, ns, name string, ev *corev1.Event) {
	t.Helper()
	eventually(t, 30*time.Second, "cursor past event "+ev.Name, func() (bool, string) {
		a := getAlert(t, ns, name)
		c := a.Status.Cursor
		if c == nil {
			return false, "no cursor"
		}
		cur := &corev1.Event{}
		if err := env.Client.Get(t.Context(), clientKey(ev), cur); err != nil {
			return false, err.Error()
		}
		for _, k := range c.Keys {
			if len(k) > len(string(cur.UID)) && k[:len(cur.UID)] == string(cur.UID) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("cursor %s %v", c.Time, c.Keys)
	})
}

// In every mode with repeatInterval, an event identical to the last one
// sent for its object (same reason and message) is not sent again within
// the interval; a different one is.
func TestEveryModeRepeatInterval(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns)
	ep := newEndpoint(t)
	create(t, provider(ns, "hook", notificationv1.ProviderGeneric, ep.URL+"/in", nil),
		alert(ns, "dedup", "hook", func(s *notificationv1.AlertSpec) {
			s.RepeatInterval = &metav1.Duration{Duration: time.Hour}
		}))
	waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dedup"}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)
	emit(t, ns, "Sync", "app", corev1.EventTypeWarning, "ApplyFailed", "ConfigMap/x refused", nil)
	emit(t, ns, "Sync", "app", corev1.EventTypeWarning, "ApplyFailed", "ConfigMap/x refused", nil)
	emit(t, ns, "Sync", "web", corev1.EventTypeWarning, "ApplyFailed", "ConfigMap/x refused", nil) // another object
	last := emit(t, ns, "Sync", "app", corev1.EventTypeWarning, "ApplyFailed", "ConfigMap/y refused", nil)
	waitHandled(t, ns, "dedup", last)
	var seen []string
	for _, r := range ep.requests() {
		m := decode(t, r.Body)
		obj, _ := m["involvedObject"].(map[string]any)
		seen = append(seen, fmt.Sprintf("%v %v", obj["name"], m["message"]))
	}
	want := []string{"app ConfigMap/x refused", "web ConfigMap/x refused", "app ConfigMap/y refused"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("sent %q, want %q", seen, want)
	}
}
