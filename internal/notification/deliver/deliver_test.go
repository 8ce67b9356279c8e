package deliver

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-dev/strata/internal/notification/event"
)

func TestRequest(t *testing.T) {
	ev := &event.Event{InvolvedObject: event.Object{Kind: "Sync", Namespace: "team", Name: "app"}, Severity: "error", Reason: "HealthCheckFailed",
		Summary: "Sync team/app: HealthCheckFailed", Revision: "main@sha1:abc1234"}
	cases := map[string]struct {
		target            Target
		wantURL, wantBody string
		wantErr           string
	}{
		"github.com": {target: Target{Type: "github-status", Address: "https://github.com/acme/shop.git", Token: "t"},
			wantURL: "https://api.github.com/repos/acme/shop/statuses/abc1234", wantBody: `"state":"failure"`},
		"github enterprise": {target: Target{Type: "github-status", Address: "https://ghe.example.com/acme/shop", Token: "t"},
			wantURL: "https://ghe.example.com/api/v3/repos/acme/shop/statuses/abc1234"},
		"gitlab subgroup": {target: Target{Type: "gitlab-status", Address: "https://gitlab.example.com/a/b/c", Token: "t"},
			wantURL: "https://gitlab.example.com/api/v4/projects/a%2Fb%2Fc/statuses/abc1234", wantBody: `"state":"failed"`},
		"github bad address": {target: Target{Type: "github-status", Address: "https://github.com/acme", Token: "t"}, wantErr: "owner"},
		"alertmanager": {target: Target{Type: "alertmanager", Address: "http://am:9093/"},
			wantURL: "http://am:9093/api/v2/alerts", wantBody: `"alertname":"StrataHealthCheckFailed"`},
		"hmac without token": {target: Target{Type: "generic-hmac", Address: "http://x"}, wantErr: "token"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req, err := Request(context.Background(), &tc.target, ev, "body")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantURL, req.URL.String()); diff != "" {
				t.Errorf("URL -want +got:\n%s", diff)
			}
			b, _ := io.ReadAll(req.Body)
			if !strings.Contains(string(b), tc.wantBody) {
				t.Errorf("body %s lacks %s", b, tc.wantBody)
			}
		})
	}
}

// A failure's message never contains the address (a webhook URL can be the
// credential) or the token.
func TestErrorsRedact(t *testing.T) {
	tg := &Target{Type: "slack", Address: "http://127.0.0.1:1/services/T0/B0/secretpath", Token: "tok"}
	hc, _ := tg.Client()
	err := Send(context.Background(), hc, tg, &event.Event{Summary: "s"}, "b")
	if err == nil || strings.Contains(err.Error(), "secretpath") || strings.Contains(err.Error(), "tok") {
		t.Fatalf("error %v", err)
	}
}
