package controller

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
)

// webhookServer is a loopback JSON secret service that wants a bearer
// token: GET /secrets/<key> answers {"data": {...}}.
type webhookServer struct {
	mu     sync.Mutex
	token  string
	values map[string]map[string]string
}

func (s *webhookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		http.Error(w, "denied", http.StatusUnauthorized)
		return
	}
	v, ok := s.values[strings.TrimPrefix(r.URL.Path, "/secrets/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"data": v})
}

func webhookStore(ns, name, url string) *secretsv1.SecretStore {
	return &secretsv1.SecretStore{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: secretsv1.SecretStoreSpec{Provider: secretsv1.SecretStoreProvider{Webhook: &secretsv1.WebhookProvider{
			URL:     url + "/secrets/{{ .remoteRef.key }}",
			Headers: map[string]string{"Authorization": "Bearer {{ .creds.token }}"},
			Result:  secretsv1.WebhookResult{JSONPath: "$.data"},
			Secrets: []secretsv1.WebhookSecret{{Name: "creds", SecretRef: secretsv1.SecretKeySelector{Name: "webhook-creds"}}},
		}}},
	}
}

func TestWebhookStore(t *testing.T) {
	ws := &webhookServer{token: "right-token", values: map[string]map[string]string{"db": {"password": "wh-secret-1", "user": "app"}}}
	srv := httptest.NewServer(ws)
	defer srv.Close()
	ns := namespace(t, nil)
	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "webhook-creds"}, Data: map[string][]byte{"token": []byte("right-token")}}
	st := webhookStore(ns, "wh", srv.URL)
	es := externalSecret(ns, "app", "wh", item("password", "db", "password"))
	es.Spec.DataFrom = []secretsv1.ExternalSecretDataFromRemoteRef{{Extract: &secretsv1.ExternalSecretDataRemoteRef{Key: "db"}}}
	create(t, creds, st, es)
	ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	if d := cmp.Diff(map[string]string{"password": "wh-secret-1", "user": "app"}, secretData(t, ns, "app")); d != "" {
		t.Errorf("Secret data (-want +got):\n%s", d)
	}

	// Wrong credentials: the store's token is revoked on the server. The
	// ExternalSecret reports it, and the last good Secret stays.
	ws.mu.Lock()
	ws.token = "rotated-token"
	ws.values["db"]["password"] = "wh-secret-2"
	ws.mu.Unlock()
	refresh(t, es)
	msg := ready(t, es, metav1.ConditionFalse, secretsv1.ReasonSecretSyncedError)
	if !strings.Contains(msg, "HTTP 401") || !strings.Contains(msg, "SecretStore "+ns+"/wh") {
		t.Errorf("message %q does not name the store and the cause", msg)
	}
	if got := secretData(t, ns, "app")["password"]; got != "wh-secret-1" {
		t.Errorf("last good Secret changed: %q", got)
	}

	// A key the webhook does not have is KeyNotFound.
	ws.mu.Lock()
	ws.token = "right-token"
	ws.mu.Unlock()
	es2 := externalSecret(ns, "missing", "wh", item("x", "nope", "field"))
	create(t, es2)
	msg = ready(t, es2, metav1.ConditionFalse, secretsv1.ReasonKeyNotFound)
	if !strings.Contains(msg, `key "nope" property "field"`) {
		t.Errorf("message %q does not name key and property", msg)
	}
	noValueLeaks(t, ns, "wh-secret-1", "wh-secret-2", "right-token", "rotated-token")
}

// An unreachable server: Ready=False naming the store, and nothing written.
func TestWebhookStoreUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	ns := namespace(t, nil)
	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "webhook-creds"}, Data: map[string][]byte{"token": []byte("t")}}
	st := webhookStore(ns, "wh", "http://"+addr)
	es := externalSecret(ns, "app", "wh", item("password", "db", "password"))
	create(t, creds, st, es)
	msg := ready(t, es, metav1.ConditionFalse, secretsv1.ReasonSecretSyncedError)
	if !strings.Contains(msg, "unreachable") || !strings.Contains(msg, "SecretStore "+ns+"/wh") {
		t.Errorf("message %q does not say the server is unreachable", msg)
	}
}

// Attack: a tenant's SecretStore whose webhook URL points where the manager
// can reach and the tenant cannot (the cloud's instance metadata service,
// the manager's loopback) would copy what it answers into a Secret the
// tenant reads. The connection is refused before anything is sent: the
// ExternalSecret reports the denied network, no Secret appears and the
// server gets no request. A ClusterSecretStore, which an admin configures,
// may use the same address. 127.0.0.2 stands for the denied network here
// (main_test.go).
func TestSecretStoreCannotReachDeniedNetworks(t *testing.T) {
	metadata := &webhookServer{token: "t", values: map[string]map[string]string{"iam": {"AccessKeyId": "node-credentials"}}}
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	var hits sync.Map
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Store(r.URL.Path, true)
		metadata.ServeHTTP(w, r)
	}))
	srv.Listener = l
	srv.Start()
	defer srv.Close()

	tenant := namespace(t, nil)
	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "webhook-creds"}, Data: map[string][]byte{"token": []byte("t")}}
	st := webhookStore(tenant, "imds", srv.URL)
	es := externalSecret(tenant, "stolen", "imds")
	es.Spec.DataFrom = []secretsv1.ExternalSecretDataFromRemoteRef{{Extract: &secretsv1.ExternalSecretDataRemoteRef{Key: "iam"}}}
	create(t, creds, st, es)
	msg := ready(t, es, metav1.ConditionFalse, secretsv1.ReasonSecretSyncedError)
	if !strings.Contains(msg, "127.0.0.2/32; its --egress-denied-networks") {
		t.Errorf("message %q does not say the address is in a denied network", msg)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: tenant, Name: "stolen"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("Secret %s/stolen: %v, want not found", tenant, err)
	}
	hits.Range(func(k, _ any) bool { t.Errorf("the denied server got a request for %v", k); return true })

	// The admin's ClusterSecretStore may reach it.
	admin := namespace(t, nil)
	credsAdmin := creds.DeepCopy()
	credsAdmin.Namespace, credsAdmin.ResourceVersion = admin, ""
	css := &secretsv1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: "imds-" + admin}, Spec: webhookStore(admin, "", srv.URL).Spec}
	css.Spec.Provider.Webhook.Secrets[0].SecretRef.Namespace = admin
	ok := externalSecret(admin, "node", css.Name)
	ok.Spec.SecretStoreRef.Kind = secretsv1.ClusterSecretStoreKind
	ok.Spec.DataFrom = es.Spec.DataFrom
	create(t, credsAdmin, css, ok)
	ready(t, ok, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	if got := secretData(t, admin, "node")["AccessKeyId"]; got != "node-credentials" {
		t.Errorf("the ClusterSecretStore's Secret has %q", got)
	}
}
