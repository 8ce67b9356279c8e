package template

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/template"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
)

// funcs are the functions templates may call: encodings, string helpers
// and JSON, as ESO's most used sprig functions are named. Errors name the
// function, never the value.
var funcs = template.FuncMap{
	"b64enc": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	"b64dec": func(s string) (string, error) {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", errors.New("b64dec: value is not valid base64")
		}
		return string(b), nil
	},
	"upper":      strings.ToUpper,
	"lower":      strings.ToLower,
	"trim":       strings.TrimSpace,
	"trimPrefix": func(p, s string) string { return strings.TrimPrefix(s, p) },
	"trimSuffix": func(p, s string) string { return strings.TrimSuffix(s, p) },
	"replace":    func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
	"quote":      func(s string) string { return fmt.Sprintf("%q", s) },
	"squote":     func(s string) string { return "'" + s + "'" },
	"default": func(d, v any) any {
		if v == nil || v == "" {
			return d
		}
		return v
	},
	"join": func(sep string, v []any) string {
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = fmt.Sprint(x)
		}
		return strings.Join(s, sep)
	},
	"indent":  func(n int, s string) string { return indent(n, s) },
	"nindent": func(n int, s string) string { return "\n" + indent(n, s) },
	"toJson": func(v any) (string, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return "", errors.New("toJson: value cannot be encoded")
		}
		return string(b), nil
	},
	"fromJson": func(s string) (any, error) {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, errors.New("fromJson: value is not valid JSON")
		}
		return v, nil
	},
	"sha256sum": func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) },
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

// Error is a template that does not parse or does not execute; Key names
// the target key.
type Error struct {
	Key string
	// Where, when set, names a template that is not a key of
	// template.data (a templateFrom item, a rewrite).
	Where string
	Err   error
}

func (e *Error) Error() string {
	if e.Where != "" {
		return fmt.Sprintf("%s: %v", e.Where, e.Err)
	}
	return fmt.Sprintf("template of key %q: %v", e.Key, e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

// Parse checks every template of t without executing it.
func Parse(t *secretsv1.ExternalSecretTemplate) error {
	if t == nil {
		return nil
	}
	for _, k := range sortedKeys(t.Data) {
		if _, err := parse(k, t.Data[k]); err != nil {
			return err
		}
	}
	for i, src := range Literals(t) {
		if _, err := parse("literal", src.Items[0].Text); err != nil {
			var te *Error
			if errors.As(err, &te) {
				te.Where = fmt.Sprintf("template.templateFrom[%d].literal", i)
			}
			return err
		}
	}
	return nil
}

func parse(key, text string) (*template.Template, error) {
	tpl, err := template.New(key).Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, &Error{Key: key, Err: errors.New(strings.TrimPrefix(err.Error(), "template: "))}
	}
	return tpl, nil
}

// Render returns the target Secret's data: values as fetched without a
// template (or with no template data), the template's keys rendered over
// the values otherwise, plus the values the template does not set when its
// mergePolicy is Merge.
func Render(t *secretsv1.ExternalSecretTemplate, values map[string][]byte) (map[string][]byte, error) {
	if t == nil || len(t.Data) == 0 {
		return values, nil
	}
	in := make(map[string]string, len(values))
	for k, v := range values {
		in[k] = string(v)
	}
	out := map[string][]byte{}
	if t.MergePolicy == "Merge" {
		for k, v := range values {
			out[k] = v
		}
	}
	for _, k := range sortedKeys(t.Data) {
		tpl, err := parse(k, t.Data[k])
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := tpl.Execute(&b, in); err != nil {
			return nil, &Error{Key: k, Err: execError(err)}
		}
		out[k] = b.Bytes()
	}
	return out, nil
}

// execError keeps the position and cause of an execution error; Go's
// messages name the template, field and function, not the data.
func execError(err error) error {
	var ee template.ExecError
	if errors.As(err, &ee) {
		return errors.New(strings.TrimPrefix(ee.Err.Error(), "template: "))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "template: "))
}

func sortedKeys(m map[string]string) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}
