package webhook

import (
	"errors"
	"net/http"
	"testing"
)

func TestVerify(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main"}`)
	token := []byte("t0ken")
	cases := map[string]struct {
		headers map[string]string
		want    error
	}{
		"github ok":        {map[string]string{"X-Hub-Signature-256": Sign(body, token)}, nil},
		"github wrong":     {map[string]string{"X-Hub-Signature-256": Sign(body, []byte("other"))}, ErrBadSignature},
		"github not hex":   {map[string]string{"X-Hub-Signature-256": "sha256=zz"}, ErrBadSignature},
		"github sha1 only": {map[string]string{"X-Hub-Signature-256": "sha1=abc"}, ErrBadSignature},
		"gitlab ok":        {map[string]string{"X-Gitlab-Token": "t0ken"}, nil},
		"gitlab wrong":     {map[string]string{"X-Gitlab-Token": "nope"}, ErrBadSignature},
		"generic ok":       {map[string]string{"X-Signature": Sign(body, token)}, nil},
		"generic tampered": {map[string]string{"X-Signature": Sign([]byte("other body"), token)}, ErrBadSignature},
		"unsigned":         {nil, ErrUnsigned},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			if err := Verify(h, body, token); !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}
