package controller

import (
	"context"
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/egress"
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

// A tenant's Provider pointed at what the manager can reach and the tenant
// cannot (the manager's own loopback, the cloud's instance metadata
// service) sends nothing there. An IP literal is refused on the Provider
// (Stalled, AddressNotAllowed); a name that resolves into a denied network
// is refused when the Alert dials it, before any byte is sent (the Alert
// Ready=False, AddressNotAllowed); an allowed endpoint still gets its
// messages. Here 127.0.0.1 (and ::1) stands for the denied network and
// 127.0.0.2 for an allowed one, so both run on this machine.
func TestProviderCannotReachDeniedNetworks(t *testing.T) {
	tenant := newNamespace(t)
	startManagerWith(t, tenant, Options{Workers: 2, Egress: egress.MustParse("127.0.0.1/32", "::1/128", "link-local", "metadata")})
	internal := newEndpointAt(t, "127.0.0.1:0")
	allowed := newEndpointAt(t, "127.0.0.2:0")
	_, port, _ := net.SplitHostPort(internal.Listener.Addr().String())
	create(t,
		provider(tenant, "literal", notificationv1.ProviderGeneric, internal.URL+"/debug", nil),
		provider(tenant, "metadata", notificationv1.ProviderGeneric, "http://169.254.169.254/latest/meta-data/iam/security-credentials/", nil),
		provider(tenant, "byname", notificationv1.ProviderGeneric, "http://localhost:"+port+"/debug", nil),
		provider(tenant, "allowed", notificationv1.ProviderGeneric, allowed.URL+"/hook", nil),
		alert(tenant, "literal", "literal", nil),
		alert(tenant, "byname", "byname", nil),
		alert(tenant, "allowed", "allowed", nil),
	)
	for name, network := range map[string]string{"literal": "127.0.0.1/32", "metadata": "link-local"} {
		p := &notificationv1.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: name}}
		c := waitReady(t, p, metav1.ConditionFalse, notificationv1.ReasonAddressNotAllowed)
		if !conditions.IsTrue(p, conditions.Stalled) || !strings.Contains(c.Message, "("+network+"; its --egress-denied-networks)") {
			t.Errorf("Provider %s: %+v, stalled=%v; want Stalled naming %s", name, c, conditions.IsTrue(p, conditions.Stalled), network)
		}
	}
	waitReady(t, &notificationv1.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "byname"}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)
	waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "allowed"}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)

	emit(t, tenant, "Sync", "app", corev1.EventTypeWarning, "ApplyFailed", "tenant event", nil)
	allowed.waitRequests(t, 1)
	a := waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "byname"}}, metav1.ConditionFalse, notificationv1.ReasonAddressNotAllowed)
	if !strings.Contains(a.Message, "not contacted") || strings.Contains(a.Message, port) {
		t.Errorf("Alert byname: %q; want a refusal that does not repeat the address", a.Message)
	}
	waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "literal"}}, metav1.ConditionFalse, notificationv1.ReasonProviderNotReady)
	if got := internal.requests(); len(got) != 0 {
		t.Errorf("the denied endpoint received %d requests: %+v", len(got), got)
	}
}
