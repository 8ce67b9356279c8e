package template

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
)

func TestRender(t *testing.T) {
	values := map[string][]byte{"user": []byte("app"), "password": []byte("s3cr3t-VALUE"), "json": []byte(`{"a":"b"}`)}
	cases := map[string]struct {
		tpl     *secretsv1.ExternalSecretTemplate
		want    map[string]string
		wantErr string
	}{
		"no template copies the values": {
			want: map[string]string{"user": "app", "password": "s3cr3t-VALUE", "json": `{"a":"b"}`},
		},
		"template replaces": {
			tpl:  &secretsv1.ExternalSecretTemplate{Data: map[string]string{"dsn": "postgres://{{ .user }}:{{ .password }}@db"}},
			want: map[string]string{"dsn": "postgres://app:s3cr3t-VALUE@db"},
		},
		"template merges": {
			tpl:  &secretsv1.ExternalSecretTemplate{MergePolicy: "Merge", Data: map[string]string{"user": "{{ .user | upper }}"}},
			want: map[string]string{"user": "APP", "password": "s3cr3t-VALUE", "json": `{"a":"b"}`},
		},
		"functions": {
			tpl:  &secretsv1.ExternalSecretTemplate{Data: map[string]string{"x": `{{ (.json | fromJson).a }}-{{ .user | b64enc | b64dec }}`}},
			want: map[string]string{"x": "b-app"},
		},
		"does not parse": {
			tpl:     &secretsv1.ExternalSecretTemplate{Data: map[string]string{"x": "{{ .user "}},
			wantErr: `template of key "x"`,
		},
		"missing value": {
			tpl:     &secretsv1.ExternalSecretTemplate{Data: map[string]string{"x": "{{ .nope }}"}},
			wantErr: `map has no entry for key "nope"`,
		},
		"bad base64 does not quote the value": {
			tpl:     &secretsv1.ExternalSecretTemplate{Data: map[string]string{"x": "{{ .password | b64dec }}"}},
			wantErr: "b64dec: value is not valid base64",
		},
		"bad json does not quote the value": {
			tpl:     &secretsv1.ExternalSecretTemplate{Data: map[string]string{"x": "{{ (.password | fromJson) }}"}},
			wantErr: "fromJson: value is not valid JSON",
		},
		"no env access": {
			tpl:     &secretsv1.ExternalSecretTemplate{Data: map[string]string{"x": `{{ env "HOME" }}`}},
			wantErr: `function "env" not defined`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Render(tc.tpl, values)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Fatalf("error quotes a value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gs := map[string]string{}
			for k, v := range got {
				gs[k] = string(v)
			}
			if d := cmp.Diff(tc.want, gs); d != "" {
				t.Errorf("data (-want +got):\n%s", d)
			}
		})
	}
}

func FuzzRender(f *testing.F) {
	f.Add("{{ .a | upper }}")
	f.Add("{{ (.a | fromJson).x }}")
	f.Fuzz(func(t *testing.T, text string) {
		_, _ = Render(&secretsv1.ExternalSecretTemplate{Data: map[string]string{"k": text}}, map[string][]byte{"a": []byte(`{"x":1}`)})
	})
}
