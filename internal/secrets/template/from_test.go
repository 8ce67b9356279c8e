package template

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
)

func TestRenderAll(t *testing.T) {
	values := map[string][]byte{"user": []byte("app"), "password": []byte("s3cr3t-VALUE")}
	lit := func(s string) *string { return &s }
	cases := map[string]struct {
		tpl     *secretsv1.ExternalSecretTemplate
		sources []Source
		want    Output
		wantErr string
	}{
		"Values: the item is the template of its key": {
			tpl: &secretsv1.ExternalSecretTemplate{TemplateFrom: []secretsv1.TemplateFrom{{}}},
			sources: []Source{{Where: "cm", Items: []Item{
				{Key: "config.yaml", Text: "user: {{ .user }}\npassword: {{ .password }}\n", Scope: secretsv1.TemplateScopeValues}}}},
			want: Output{Data: map[string][]byte{"config.yaml": []byte("user: app\npassword: s3cr3t-VALUE\n")}},
		},
		"KeysAndValues: the item renders a map": {
			tpl: &secretsv1.ExternalSecretTemplate{TemplateFrom: []secretsv1.TemplateFrom{{}}},
			sources: []Source{{Where: "cm", Items: []Item{
				{Key: "x", Text: "USER: {{ .user | upper }}\nDSN: postgres://{{ .user }}@db\n", Scope: secretsv1.TemplateScopeKeysAndValues}}}},
			want: Output{Data: map[string][]byte{"USER": []byte("APP"), "DSN": []byte("postgres://app@db")}},
		},
		"labels and annotations": {
			tpl: &secretsv1.ExternalSecretTemplate{TemplateFrom: []secretsv1.TemplateFrom{{}, {}}, Data: map[string]string{"u": "{{ .user }}"}},
			sources: []Source{
				{Where: "lit", Target: secretsv1.TemplateTargetLabels, Items: []Item{{Key: "literal", Text: "team: {{ .user }}", Scope: secretsv1.TemplateScopeKeysAndValues}}},
				{Where: "lit2", Target: secretsv1.TemplateTargetAnnotations, Items: []Item{{Key: "note", Text: "for {{ .user }}", Scope: secretsv1.TemplateScopeValues}}},
			},
			want: Output{Data: map[string][]byte{"u": []byte("app")}, Labels: map[string]string{"team": "app"}, Annotations: map[string]string{"note": "for app"}},
		},
		"template.data wins over templateFrom": {
			tpl:     &secretsv1.ExternalSecretTemplate{TemplateFrom: []secretsv1.TemplateFrom{{Literal: lit("")}}, Data: map[string]string{"k": "from data"}},
			sources: []Source{{Where: "lit", Items: []Item{{Key: "literal", Text: "k: from literal\nother: x", Scope: secretsv1.TemplateScopeKeysAndValues}}}},
			want:    Output{Data: map[string][]byte{"k": []byte("from data"), "other": []byte("x")}},
		},
		"Merge keeps the fetched values": {
			tpl:     &secretsv1.ExternalSecretTemplate{MergePolicy: "Merge", TemplateFrom: []secretsv1.TemplateFrom{{}}},
			sources: []Source{{Where: "cm", Items: []Item{{Key: "u", Text: "{{ .user | upper }}", Scope: secretsv1.TemplateScopeValues}}}},
			want:    Output{Data: map[string][]byte{"u": []byte("APP"), "user": []byte("app"), "password": []byte("s3cr3t-VALUE")}},
		},
		"a source that does not parse names the source and key": {
			tpl:     &secretsv1.ExternalSecretTemplate{TemplateFrom: []secretsv1.TemplateFrom{{}}},
			sources: []Source{{Where: "template.templateFrom[0].configMap tpl", Items: []Item{{Key: "a", Text: "{{ .user ", Scope: secretsv1.TemplateScopeValues}}}},
			wantErr: `template.templateFrom[0].configMap tpl key "a":`,
		},
		"KeysAndValues that is not a map names the source, not the value": {
			tpl:     &secretsv1.ExternalSecretTemplate{TemplateFrom: []secretsv1.TemplateFrom{{}}},
			sources: []Source{{Where: "template.templateFrom[0].secret tpl", Items: []Item{{Key: "a", Text: "- {{ .password }}", Scope: secretsv1.TemplateScopeKeysAndValues}}}},
			wantErr: `template.templateFrom[0].secret tpl key "a": templateAs KeysAndValues did not render a map of strings`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := RenderAll(tc.tpl, tc.sources, values)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Errorf("the error shows a value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			norm := func(o Output) Output {
				if len(o.Labels) == 0 {
					o.Labels = nil
				}
				if len(o.Annotations) == 0 {
					o.Annotations = nil
				}
				return o
			}
			if d := cmp.Diff(norm(tc.want), norm(got)); d != "" {
				t.Errorf("output (-want +got):\n%s", d)
			}
		})
	}
}

func TestKey(t *testing.T) {
	got, err := Key(`{{ .value | upper | replace "/" "_" }}`, "db/password")
	if err != nil || got != "DB_PASSWORD" {
		t.Errorf("Key = %q, %v", got, err)
	}
	if err := ParseKey("{{ .value "); err == nil || !strings.Contains(err.Error(), "transform template") {
		t.Errorf("ParseKey error %v", err)
	}
	if _, err := Key("{{ .nope }}", "k"); err == nil {
		t.Error("a missing field renders")
	}
}

func TestParseLiteral(t *testing.T) {
	lit := "{{ .user "
	err := Parse(&secretsv1.ExternalSecretTemplate{TemplateFrom: []secretsv1.TemplateFrom{{Literal: &lit}}})
	if err == nil || !strings.Contains(err.Error(), "template.templateFrom[0].literal") {
		t.Errorf("Parse error %v", err)
	}
}

// FuzzRenderAll: templateFrom items and rewrite transforms are user input;
// whatever they hold, rendering returns output or an error, never panics,
// and an error never shows the value.
func FuzzRenderAll(f *testing.F) {
	f.Add("{{ .user }}", "KeysAndValues")
	f.Add("a: {{ .password | b64enc }}", "KeysAndValues")
	f.Add("{{ .value | upper }}", "Values")
	f.Add("{{ range . }}", "Values")
	f.Fuzz(func(t *testing.T, text, scope string) {
		values := map[string][]byte{"user": []byte("app"), "password": []byte("fuzz-secret-value")}
		tpl := &secretsv1.ExternalSecretTemplate{TemplateFrom: []secretsv1.TemplateFrom{{}}}
		src := []Source{{Where: "src", Items: []Item{{Key: "k", Text: text, Scope: secretsv1.TemplateScope(scope)}}}}
		if _, err := RenderAll(tpl, src, values); err != nil && strings.Contains(err.Error(), "fuzz-secret-value") && !strings.Contains(text, "fuzz-secret-value") {
			t.Errorf("the error shows a value: %v", err)
		}
		_, _ = Key(text, "some/key")
	})
}
