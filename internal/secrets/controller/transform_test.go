package controller

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
)

func TestDecode(t *testing.T) {
	cases := map[string]struct {
		strategy secretsv1.ExternalSecretDecodingStrategy
		in, want string
		wantErr  bool
	}{
		"none":                      {strategy: secretsv1.DecodingNone, in: "aGk=", want: "aGk="},
		"empty is none":             {in: "aGk=", want: "aGk="},
		"base64":                    {strategy: secretsv1.DecodingBase64, in: "aGk+Pz8=", want: "hi>??"},
		"base64 without padding":    {strategy: secretsv1.DecodingBase64, in: "aGk", want: "hi"},
		"base64 refuses url-safe":   {strategy: secretsv1.DecodingBase64, in: "aGk-Pz8=", wantErr: true},
		"base64url":                 {strategy: secretsv1.DecodingBase64URL, in: "aGk-Pz8=", want: "hi>??"},
		"base64url without padding": {strategy: secretsv1.DecodingBase64URL, in: "aGk-Pz8", want: "hi>??"},
		"base64 refuses text":       {strategy: secretsv1.DecodingBase64, in: "not base64!", wantErr: true},
		"auto decodes std":          {strategy: secretsv1.DecodingAuto, in: "aGk+Pz8=", want: "hi>??"},
		"auto decodes url":          {strategy: secretsv1.DecodingAuto, in: "aGk-Pz8=", want: "hi>??"},
		"auto keeps text":           {strategy: secretsv1.DecodingAuto, in: "not base64!", want: "not base64!"},
		"auto keeps unpadded":       {strategy: secretsv1.DecodingAuto, in: "app", want: "app"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := decode(tc.strategy, []byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("decoded to %q", got)
				}
				if strings.Contains(err.Error(), tc.in) {
					t.Errorf("the error shows the value: %v", err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("decode = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestRewriteKeys(t *testing.T) {
	in := map[string][]byte{"db/user": []byte("u"), "db/password": []byte("p"), "other": []byte("o")}
	cases := map[string]struct {
		rw      []secretsv1.ExternalSecretRewrite
		want    []string
		wantErr string
	}{
		"none": {want: []string{"db/password", "db/user", "other"}},
		"regexp then transform, in order": {rw: []secretsv1.ExternalSecretRewrite{
			{Regexp: &secretsv1.ExternalSecretRewriteRegexp{Source: `^db/(?P<k>.*)$`, Target: "DB_${k}"}},
			{Transform: &secretsv1.ExternalSecretRewriteTransform{Template: `{{ .value | upper }}`}},
		}, want: []string{"DB_PASSWORD", "DB_USER", "OTHER"}},
		"bad regexp": {rw: []secretsv1.ExternalSecretRewrite{{Regexp: &secretsv1.ExternalSecretRewriteRegexp{Source: "("}}}, wantErr: "rewrite[0].regexp.source does not compile"},
		"bad transform": {rw: []secretsv1.ExternalSecretRewrite{{}, {Transform: &secretsv1.ExternalSecretRewriteTransform{Template: "{{ .nope }}"}}},
			wantErr: "rewrite[0]: set regexp or transform"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m := map[string][]byte{}
			for k, v := range in {
				m[k] = v
			}
			got, err := rewriteKeys(tc.rw, m)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, sortedKeys(got)); d != "" {
				t.Errorf("keys (-want +got):\n%s", d)
			}
		})
	}
	if bad := invalidKeys(map[string][]byte{"ok": nil, "a b": nil, "c/d": nil}); strings.Join(bad, ",") != `"a b","c/d"` {
		t.Errorf("invalidKeys = %v", bad)
	}
}
