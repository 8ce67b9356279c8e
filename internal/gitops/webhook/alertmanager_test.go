package webhook

import (
	"net/http"
	"testing"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
)

func TestMatchAlert(t *testing.T) {
	labels := map[string]string{"alertname": "HighErrorRate", "service": "shop", "severity": "page"}
	cases := map[string]struct {
		matchers []gitopsv1.AlertMatcher
		want     bool
	}{
		"none never matches": {nil, false},
		"equal":              {[]gitopsv1.AlertMatcher{{Name: "alertname", Value: "HighErrorRate"}}, true},
		"explicit equal":     {[]gitopsv1.AlertMatcher{{Name: "alertname", Operator: "=", Value: "HighErrorRate"}}, true},
		"all must match":     {[]gitopsv1.AlertMatcher{{Name: "alertname", Value: "HighErrorRate"}, {Name: "service", Value: "web"}}, false},
		"not equal":          {[]gitopsv1.AlertMatcher{{Name: "severity", Operator: "!=", Value: "info"}}, true},
		"regex anchored":     {[]gitopsv1.AlertMatcher{{Name: "service", Operator: "=~", Value: "sho"}}, false},
		"regex":              {[]gitopsv1.AlertMatcher{{Name: "service", Operator: "=~", Value: "shop|web"}}, true},
		"not regex":          {[]gitopsv1.AlertMatcher{{Name: "service", Operator: "!~", Value: "shop|web"}}, false},
		"missing label":      {[]gitopsv1.AlertMatcher{{Name: "team", Value: ""}}, true},
		"bad regex":          {[]gitopsv1.AlertMatcher{{Name: "service", Operator: "=~", Value: "("}}, false},
	}
	for name, tc := range cases {
		if got := MatchAlert(tc.matchers, labels); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}

func TestVerifyAlert(t *testing.T) {
	body, tok := []byte(`{"alerts":[]}`), []byte("s3cret")
	cases := map[string]struct {
		header map[string]string
		want   error
	}{
		"bearer":        {map[string]string{"Authorization": "Bearer s3cret"}, nil},
		"wrong bearer":  {map[string]string{"Authorization": "Bearer guess"}, ErrBadSignature},
		"basic":         {map[string]string{"Authorization": "Basic czNjcmV0"}, ErrBadSignature},
		"hmac":          {map[string]string{"X-Signature": Sign(body, tok)}, nil},
		"wrong hmac":    {map[string]string{"X-Signature": Sign(body, []byte("guess"))}, ErrBadSignature},
		"nothing":       {nil, ErrUnsigned},
		"gitlab header": {map[string]string{"X-Gitlab-Token": "s3cret"}, ErrUnsigned},
	}
	for name, tc := range cases {
		h := http.Header{}
		for k, v := range tc.header {
			h.Set(k, v)
		}
		if got := VerifyAlert(h, body, tok); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}
