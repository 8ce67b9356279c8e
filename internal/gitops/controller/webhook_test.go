package controller

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/gitops/webhook"
)

func TestWebhookTriggersFetch(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h1 := repo.Commit("one", map[string]string{"a.yaml": configMap("a")})
	token := []byte("hook-secret")
	if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"}, Data: map[string][]byte{"token": token}}); err != nil {
		t.Fatal(err)
	}
	g := createRepo(t, ns, "src", repo.URL(), nil, "")
	patch := client.MergeFrom(g.DeepCopy())
	g.Spec.WebhookSecretRef = &corev1.LocalObjectReference{Name: "hook"}
	if err := env.Client.Patch(ctx, g, patch); err != nil {
		t.Fatal(err)
	}
	createRepo(t, ns, "nohook", repo.URL(), nil, "")
	waitRepo(t, ns, "src", metav1.ConditionTrue, "main@sha1:"+h1)
	// The patch is a new generation: wait for its reconcile as well, or it
	// can run after commit two below and fetch it as if a webhook had asked.
	eventually(t, 30*time.Second, "GitRepository src reconciles the webhook secret", func() (bool, string) {
		cur := &gitopsv1.GitRepository{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "src"}, cur); err != nil {
			return false, err.Error()
		}
		return cur.Status.ObservedGeneration >= g.Generation, fmt.Sprintf("observed generation %d of %d", cur.Status.ObservedGeneration, g.Generation)
	})

	srv := httptest.NewServer(&webhook.Receiver{Reader: env.Client, Writer: env.Client, Log: logr.Discard()})
	defer srv.Close()
	post := func(path string, headers map[string]string, body []byte) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	body := []byte(`{"ref":"refs/heads/main"}`)
	path := webhook.PathPrefix + ns + "/src"
	h2 := repo.Commit("two", map[string]string{"a.yaml": configMap("a2")})
	refused := map[string]struct {
		path    string
		headers map[string]string
	}{
		"unsigned":            {path, nil},
		"wrong github hmac":   {path, map[string]string{"X-Hub-Signature-256": webhook.Sign(body, []byte("guess"))}},
		"wrong gitlab token":  {path, map[string]string{"X-Gitlab-Token": "guess"}},
		"repo without secret": {webhook.PathPrefix + ns + "/nohook", map[string]string{"X-Gitlab-Token": string(token)}},
		"unknown repository":  {webhook.PathPrefix + ns + "/missing", map[string]string{"X-Gitlab-Token": string(token)}},
	}
	for name, tc := range refused {
		if code := post(tc.path, tc.headers, body); code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, code)
		}
	}
	got := &gitopsv1.GitRepository{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "src"}, got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Annotations[gitopsv1.ReconcileRequestAnnotation]; ok || got.Status.Artifact.Revision != "main@sha1:"+h1 {
		t.Fatalf("a refused webhook changed the GitRepository: %v %s", got.Annotations, got.Status.Artifact.Revision)
	}
	for name, headers := range map[string]map[string]string{
		"github":  {"X-Hub-Signature-256": webhook.Sign(body, token), "X-GitHub-Event": "push"},
		"gitlab":  {"X-Gitlab-Token": string(token), "X-Gitlab-Event": "Push Hook"},
		"generic": {"X-Signature": webhook.Sign(body, token)},
	} {
		if code := post(path, headers, body); code != http.StatusAccepted {
			t.Errorf("%s: status %d, want 202", name, code)
		}
	}
	waitRepo(t, ns, "src", metav1.ConditionTrue, "main@sha1:"+h2)
}
