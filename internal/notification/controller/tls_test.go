package controller

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
)

// A Provider behind a private CA is reached with certSecretRef's ca.crt;
// without it the certificate is refused (DeliveryFailed), not skipped.
func TestProviderCertSecretRef(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns)
	var got atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	trusted := provider(ns, "trusted", notificationv1.ProviderGeneric, srv.URL+"/in", nil)
	trusted.Spec.CertSecretRef = &notificationv1.SecretReference{Name: "ca"}
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ca"}, Data: map[string][]byte{"ca.crt": ca}},
		trusted, alert(ns, "trusted", "trusted", nil),
		provider(ns, "untrusted", notificationv1.ProviderGeneric, srv.URL+"/in", nil), alert(ns, "untrusted", "untrusted", nil))
	for _, n := range []string{"trusted", "untrusted"} {
		waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)
	}
	emit(t, ns, "Sync", "app", corev1.EventTypeNormal, "Applied", "revision one", nil)
	waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "trusted"}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)
	c := waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "untrusted"}}, metav1.ConditionFalse, notificationv1.ReasonDeliveryFailed)
	if !strings.Contains(c.Message, "certificate") {
		t.Errorf("untrusted delivery failed for another reason: %s", c.Message)
	}
	eventually(t, 30*time.Second, "the trusted delivery", func() (bool, string) {
		a := getAlert(t, ns, "trusted")
		return a.Status.LastDeliveredEvent != nil && got.Load() == 1, ""
	})
}
