package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/secrets/provider"
)

// kube serves one credentials Secret.
type kube struct{ data map[string][]byte }

func (k kube) SecretKey(context.Context, secretsv1.SecretKeySelector) ([]byte, error) {
	return nil, errors.New("unused")
}
func (k kube) SecretData(context.Context, secretsv1.SecretKeySelector) (map[string][]byte, error) {
	return k.data, nil
}
func (k kube) CABundle(_ context.Context, inline []byte, _ *secretsv1.CAProvider) ([]byte, error) {
	return inline, nil
}
func (k kube) ServiceAccountToken(context.Context, secretsv1.ServiceAccountSelector) (string, error) {
	return "", errors.New("unused")
}
func (k kube) LocalServer() *rest.Config { return &rest.Config{} }

func TestWebhook(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Token") != "tok-secret" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		switch r.URL.Path {
		case "/v/db":
			_, _ = w.Write([]byte(`{"data":{"password":"pw","port":5432}}`))
		case "/v/plain":
			_, _ = w.Write([]byte(`{"data":"just-a-string"}`))
		case "/v/redirect":
			http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
		case "/v/big":
			_, _ = w.Write([]byte(`{"data":"` + strings.Repeat("x", maxBody) + `"}`))
		case "/v/broken":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	mk := func(path, token string) provider.Client {
		spec := &secretsv1.SecretStoreSpec{Provider: secretsv1.SecretStoreProvider{Webhook: &secretsv1.WebhookProvider{
			URL:     srv.URL + "/v/{{ .remoteRef.key }}",
			Headers: map[string]string{"X-Token": "{{ .creds.token }}"},
			Result:  secretsv1.WebhookResult{JSONPath: path},
			Secrets: []secretsv1.WebhookSecret{{Name: "creds", SecretRef: secretsv1.SecretKeySelector{Name: "c"}}},
		}}}
		c, err := New(context.Background(), provider.Store{Kind: "SecretStore", Name: "w", Namespace: "n", Spec: spec}, kube{data: map[string][]byte{"token": []byte(token)}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good := mk("$.data", "tok-secret")
	cases := map[string]struct {
		c        provider.Client
		ref      provider.Ref
		want     string
		notFound bool
		errHas   string
	}{
		"property":           {c: good, ref: provider.Ref{Key: "db", Property: "password"}, want: "pw"},
		"number property":    {c: good, ref: provider.Ref{Key: "db", Property: "port"}, want: "5432"},
		"whole object":       {c: good, ref: provider.Ref{Key: "db"}, want: `{"password":"pw","port":5432}`},
		"string result":      {c: good, ref: provider.Ref{Key: "plain"}, want: "just-a-string"},
		"braced jsonPath":    {c: mk("{.data.password}", "tok-secret"), ref: provider.Ref{Key: "db"}, want: "pw"},
		"missing property":   {c: good, ref: provider.Ref{Key: "db", Property: "nope"}, notFound: true},
		"404 is not found":   {c: good, ref: provider.Ref{Key: "nope"}, notFound: true},
		"missing jsonPath":   {c: mk("$.nothing", "tok-secret"), ref: provider.Ref{Key: "db"}, notFound: true},
		"wrong credentials":  {c: mk("$.data", "wrong-tok"), ref: provider.Ref{Key: "db"}, errHas: "HTTP 403"},
		"server error":       {c: good, ref: provider.Ref{Key: "broken"}, errHas: "HTTP 500"},
		"redirects refused":  {c: good, ref: provider.Ref{Key: "redirect"}, errHas: "HTTP 302"},
		"oversized response": {c: good, ref: provider.Ref{Key: "big"}, errHas: "larger than"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := tc.c.GetSecret(context.Background(), tc.ref)
			switch {
			case tc.notFound:
				if !errors.Is(err, provider.ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
			case tc.errHas != "":
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want %q", err, tc.errHas)
				}
				if strings.Contains(err.Error(), "tok-secret") || strings.Contains(err.Error(), "wrong-tok") {
					t.Errorf("error shows a credential: %v", err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			}
		})
	}
	m, err := good.GetSecretMap(context.Background(), provider.Ref{Key: "db"})
	if err != nil || string(m["password"]) != "pw" || string(m["port"]) != "5432" {
		t.Errorf("extract = %v, %v", m, err)
	}
}

func TestWebhookInvalidConfig(t *testing.T) {
	for name, p := range map[string]*secretsv1.WebhookProvider{
		"url":      {URL: "http://x/{{ .remoteRef.key "},
		"header":   {URL: "http://x", Headers: map[string]string{"A": "{{"}},
		"jsonPath": {URL: "http://x", Result: secretsv1.WebhookResult{JSONPath: "{.a[}"}},
		"caBundle": {URL: "http://x", CABundle: []byte("not pem")},
	} {
		t.Run(name, func(t *testing.T) {
			spec := &secretsv1.SecretStoreSpec{Provider: secretsv1.SecretStoreProvider{Webhook: p}}
			_, err := New(context.Background(), provider.Store{Kind: "SecretStore", Name: "w", Namespace: "n", Spec: spec}, kube{})
			if !errors.Is(err, provider.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
}
