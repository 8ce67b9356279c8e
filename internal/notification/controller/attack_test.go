package controller

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
)

func clientKey(o client.Object) types.NamespacedName { return client.ObjectKeyFromObject(o) }

// A tenant's Provider that names a Secret in another namespace (to send
// the victim's webhook URL or token to itself) is refused: Stalled with
// CrossNamespaceRefNotAllowed, nothing is sent, and the victim's Secret is
// untouched. An Alert whose event source names another namespace is
// refused the same way and sends none of that namespace's events.
func TestCrossNamespaceRefused(t *testing.T) {
	tenant, victim := newNamespace(t), newNamespace(t)
	startManager(t, tenant)
	ep := newEndpoint(t)
	create(t, secret(victim, "slack", map[string]string{"address": ep.URL + "/victim-hook", "token": "victim-token"}))
	create(t,
		provider(tenant, "steal", notificationv1.ProviderGeneric, "", &notificationv1.SecretReference{Name: "slack", Namespace: victim}),
		alert(tenant, "steal", "steal", nil),
		provider(tenant, "own", notificationv1.ProviderGeneric, ep.URL+"/tenant", nil),
		alert(tenant, "peek", "own", func(s *notificationv1.AlertSpec) {
			s.EventSources = []notificationv1.EventSource{{Kind: "Sync", Name: "*", Namespace: victim}}
		}),
		// A third Alert that works proves events flow, so "nothing sent"
		// is not just a slow controller.
		alert(tenant, "ok", "own", nil),
	)
	waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "ok"}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)
	p := &notificationv1.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "steal"}}
	c := waitReady(t, p, metav1.ConditionFalse, notificationv1.ReasonCrossNamespaceRefNotAllowed)
	if !conditions.IsTrue(p, conditions.Stalled) || !strings.Contains(c.Message, "spec.secretRef names Secret "+victim+"/slack") {
		t.Errorf("provider condition %+v stalled=%v", c, conditions.IsTrue(p, conditions.Stalled))
	}
	a := waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "steal"}}, metav1.ConditionFalse, notificationv1.ReasonProviderNotReady)
	if strings.Contains(a.Message, "victim-token") || strings.Contains(a.Message, ep.URL) {
		t.Errorf("condition leaks the victim's secret: %s", a.Message)
	}
	peek := &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "peek"}}
	waitReady(t, peek, metav1.ConditionFalse, notificationv1.ReasonCrossNamespaceRefNotAllowed)
	if !conditions.IsTrue(peek, conditions.Stalled) {
		t.Error("the cross-namespace Alert is not Stalled")
	}
	emit(t, tenant, "Sync", "app", corev1.EventTypeWarning, "ApplyFailed", "tenant event", nil)
	emit(t, victim, "Sync", "payroll", corev1.EventTypeWarning, "ApplyFailed", "victim event", nil)
	ep.waitRequests(t, 1)
	for _, r := range ep.requests() {
		if r.Path != "/tenant" || strings.Contains(string(r.Body), "victim event") {
			t.Errorf("sent %s %s", r.Path, r.Body)
		}
	}
	s := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: victim, Name: "slack"}, s); err != nil || string(s.Data["token"]) != "victim-token" {
		t.Errorf("victim secret changed: %v %v", err, s.Data)
	}
}
