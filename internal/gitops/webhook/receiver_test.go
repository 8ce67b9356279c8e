package webhook

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/scheme"
)

var token = []byte("hook-secret")

// countingClient counts the patches the receiver writes.
type countingClient struct {
	client.Client
	patches int
}

func (c *countingClient) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	c.patches++
	return c.Client.Patch(ctx, o, p, opts...)
}

// newReceiver returns a receiver over a fake API with GitRepository
// team/app (webhook secret "hook") and team/other, and a clock tests move.
func newReceiver(t testing.TB) (*Receiver, *countingClient, *time.Time) {
	t.Helper()
	objs := []client.Object{
		&gitopsv1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "app"},
			Spec: gitopsv1.GitRepositorySpec{URL: "https://example.com/app.git", WebhookSecretRef: &corev1.LocalObjectReference{Name: "hook"}}},
		&gitopsv1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "other"},
			Spec: gitopsv1.GitRepositorySpec{URL: "https://example.com/other.git", WebhookSecretRef: &corev1.LocalObjectReference{Name: "hook"}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "hook"}, Data: map[string][]byte{"token": token}},
	}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).WithStatusSubresource(&gitopsv1.GitRepository{}).Build()
	cc := &countingClient{Client: c}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rc := &Receiver{Reader: c, Writer: cc, Log: logr.Discard(), Now: func() time.Time { return now }}
	return rc, cc, &now
}

func post(rc *Receiver, path string, body []byte, headers map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	rc.ServeHTTP(w, req)
	return w
}

func signed(body []byte) map[string]string {
	return map[string]string{"X-Hub-Signature-256": Sign(body, token)}
}

// TestOversizedBody: a body over MaxBody gets 413 and triggers nothing,
// even correctly signed; one of exactly MaxBody is accepted.
func TestOversizedBody(t *testing.T) {
	rc, cc, _ := newReceiver(t)
	big := bytes.Repeat([]byte("x"), MaxBody+1)
	if w := post(rc, PathPrefix+"team/app", big, signed(big)); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: status %d, want 413", w.Code)
	}
	if cc.patches != 0 {
		t.Fatalf("an oversized body triggered a fetch")
	}
	ok := big[:MaxBody]
	if w := post(rc, PathPrefix+"team/app", ok, signed(ok)); w.Code != http.StatusAccepted {
		t.Fatalf("body of MaxBody bytes: status %d, want 202", w.Code)
	}
}

// TestRateLimit: more requests for one repository than the limit get 429
// with Retry-After, signed or not, before anything is read; another
// repository is not affected, and the limit refills with time.
func TestRateLimit(t *testing.T) {
	rc, _, now := newReceiver(t)
	rc.Limit, rc.Burst = rate1PerMinute, 3
	body := []byte(`{}`)
	for i := 0; i < 3; i++ {
		if w := post(rc, PathPrefix+"team/app", body, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("request %d: status %d, want 401", i+1, w.Code)
		}
	}
	w := post(rc, PathPrefix+"team/app", body, signed(body))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("request over the limit: status %d (Retry-After %q), want 429 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if w := post(rc, PathPrefix+"team/other", body, signed(body)); w.Code != http.StatusAccepted {
		t.Fatalf("another repository: status %d, want 202", w.Code)
	}
	*now = now.Add(time.Minute)
	if w := post(rc, PathPrefix+"team/app", body, signed(body)); w.Code != http.StatusAccepted {
		t.Fatalf("after the limit refilled: status %d, want 202", w.Code)
	}
}

const rate1PerMinute = 1.0 / 60

// TestCoalescing: repeated verified deliveries while a requested fetch is
// not handled yet answer 202 without writing; once the controller handled
// it (or it is older than a minute) the next delivery asks again.
func TestCoalescing(t *testing.T) {
	rc, cc, now := newReceiver(t)
	body := []byte(`{"ref":"refs/heads/main"}`)
	for i := 0; i < 5; i++ {
		if w := post(rc, PathPrefix+"team/app", body, signed(body)); w.Code != http.StatusAccepted {
			t.Fatalf("delivery %d: status %d, want 202", i+1, w.Code)
		}
	}
	if cc.patches != 1 {
		t.Fatalf("5 deliveries while pending wrote %d patches, want 1", cc.patches)
	}
	// The controller handles the request.
	ctx := context.Background()
	g := &gitopsv1.GitRepository{}
	if err := cc.Get(ctx, client.ObjectKey{Namespace: "team", Name: "app"}, g); err != nil {
		t.Fatal(err)
	}
	g.Status.LastHandledReconcileAt = g.Annotations[gitopsv1.ReconcileRequestAnnotation]
	if err := cc.Status().Update(ctx, g); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(time.Second)
	post(rc, PathPrefix+"team/app", body, signed(body))
	if cc.patches != 2 {
		t.Fatalf("a delivery after the fetch was handled wrote %d patches in all, want 2", cc.patches)
	}
	// A request never handled stops absorbing deliveries after a minute.
	*now = now.Add(2 * time.Minute)
	post(rc, PathPrefix+"team/app", body, signed(body))
	if cc.patches != 3 {
		t.Fatalf("a delivery after a stale request wrote %d patches in all, want 3", cc.patches)
	}
}

// documented are the status codes doc.go lists.
var documented = map[int]bool{202: true, 400: true, 401: true, 404: true, 405: true, 413: true, 429: true, 500: true}

// FuzzReceiver: whatever the method, path, headers and body, the receiver
// does not panic and answers a documented status code; only a correct
// signature for an existing repository gets 202.
func FuzzReceiver(f *testing.F) {
	body := []byte(`{"ref":"refs/heads/main"}`)
	f.Add("POST", "team/app", "X-Hub-Signature-256", Sign(body, token), body)
	f.Add("POST", "team/app", "X-Gitlab-Token", string(token), body)
	f.Add("POST", "team/app", "X-Signature", "sha256=zz", body)
	f.Add("GET", "team/app", "", "", []byte(nil))
	f.Add("POST", "team/../kube-system/x", "X-Gitlab-Token", "x", body)
	f.Add("POST", "a/b/c", "X-Hub-Signature-256", "sha256=", []byte{0xff, 0})
	f.Add("POST", "", "", "", []byte("{"))
	f.Fuzz(func(t *testing.T, method, rest, header, value string, body []byte) {
		rc, _, _ := newReceiver(t)
		req, err := http.NewRequest(method, "http://receiver"+PathPrefix, bytes.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		req.URL.Path = PathPrefix + rest
		if header != "" {
			if k := http.CanonicalHeaderKey(header); k != "" {
				req.Header.Set(k, value)
			}
		}
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, req)
		if !documented[w.Code] {
			t.Fatalf("%s %s: undocumented status %d", method, req.URL.Path, w.Code)
		}
		if w.Code == http.StatusAccepted && Verify(req.Header, body, token) != nil {
			t.Fatalf("%s %s accepted without a valid signature", method, req.URL.Path)
		}
	})
}
