package controller

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
)

// Attack: a namespace the ClusterSecretStore does not allow uses it. It is
// refused before any read, and no Secret appears; allowed namespaces (by
// name and by label) work.
func TestClusterSecretStoreRefusesDisallowedNamespace(t *testing.T) {
	allowedByName := namespace(t, nil)
	allowedByLabel := namespace(t, map[string]string{"secrets": "shared"})
	intruder := namespace(t, nil)
	css := &secretsv1.ClusterSecretStore{
		ObjectMeta: metav1.ObjectMeta{Name: "shared-" + intruder},
		Spec: secretsv1.SecretStoreSpec{
			Provider: secretsv1.SecretStoreProvider{Fake: &secretsv1.FakeProvider{Data: []secretsv1.FakeProviderData{{Key: "k", Value: "shared-value"}}}},
			Conditions: []secretsv1.ClusterSecretStoreCondition{
				{Namespaces: []string{allowedByName}},
				{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"secrets": "shared"}}},
			},
		},
	}
	create(t, css)
	ready(t, css, metav1.ConditionTrue, secretsv1.ReasonValid)
	before := clients.Calls(secretsv1.ClusterSecretStoreKind, "", css.Name)
	mk := func(ns string) *secretsv1.ExternalSecret {
		es := externalSecret(ns, "app", css.Name, item("v", "k", ""))
		es.Spec.SecretStoreRef.Kind = secretsv1.ClusterSecretStoreKind
		return es
	}
	bad := mk(intruder)
	create(t, bad)
	msg := ready(t, bad, metav1.ConditionFalse, secretsv1.ReasonStoreNotAllowed)
	if !strings.Contains(msg, "ClusterSecretStore "+css.Name) || !strings.Contains(msg, `namespace "`+intruder+`"`) {
		t.Errorf("message %q does not name the store and namespace", msg)
	}
	if !conditions.IsTrue(bad, conditions.Stalled) {
		t.Errorf("not Stalled: %v", bad.Status.Conditions)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: intruder, Name: "app"}, &corev1.Secret{}); client.IgnoreNotFound(err) != nil || err == nil {
		t.Errorf("a Secret was written in the disallowed namespace (err %v)", err)
	}
	if after := clients.Calls(secretsv1.ClusterSecretStoreKind, "", css.Name); after != before {
		t.Errorf("the store was called %d time(s) for a disallowed namespace", after-before)
	}
	for _, ns := range []string{allowedByName, allowedByLabel} {
		es := mk(ns)
		create(t, es)
		ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
		if got := secretData(t, ns, "app")["v"]; got != "shared-value" {
			t.Errorf("namespace %s: got %q", ns, got)
		}
	}
}

// Attack: a SecretStore references a credentials Secret in another
// namespace. It is refused as InvalidProviderConfig naming the field, and
// no request leaves.
func TestSecretStoreCannotReferenceAnotherNamespace(t *testing.T) {
	ns := namespace(t, nil)
	victimNS := namespace(t, nil)
	victim := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: victimNS, Name: "admin-token"}, Data: map[string][]byte{"token": []byte("victim-token")}}
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(r.Header.Get("Authorization")))
	}))
	defer srv.Close()
	st := &secretsv1.SecretStore{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "steal"},
		Spec: secretsv1.SecretStoreSpec{Provider: secretsv1.SecretStoreProvider{Webhook: &secretsv1.WebhookProvider{
			URL:     srv.URL + "/{{ .remoteRef.key }}",
			Headers: map[string]string{"Authorization": "{{ .creds.token }}"},
			Secrets: []secretsv1.WebhookSecret{{Name: "creds", SecretRef: secretsv1.SecretKeySelector{Name: "admin-token", Namespace: victimNS}}},
		}}},
	}
	es := externalSecret(ns, "leak", "steal", item("t", "x", ""))
	create(t, victim, st, es)
	msg := ready(t, st, metav1.ConditionFalse, secretsv1.ReasonInvalidProviderConfig)
	if !strings.Contains(msg, "spec.provider.webhook.secrets[0].secretRef.namespace") || !strings.Contains(msg, victimNS) {
		t.Errorf("message %q does not name the field and namespace", msg)
	}
	if !conditions.IsTrue(st, conditions.Stalled) {
		t.Errorf("store not Stalled: %v", st.Status.Conditions)
	}
	ready(t, es, metav1.ConditionFalse, secretsv1.ReasonStoreNotReady)
	if hits.Load() != 0 {
		t.Errorf("the webhook was called %d time(s)", hits.Load())
	}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "leak"}, &corev1.Secret{}); err == nil {
		t.Error("a Secret was written")
	}
	noValueLeaks(t, ns, "victim-token")
}
