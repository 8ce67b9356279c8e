package template

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"sigs.k8s.io/yaml"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
)

// Item is one template of a templateFrom source: the ConfigMap's or
// Secret's key, its text and how it is rendered.
type Item struct {
	Key   string
	Text  string
	Scope secretsv1.TemplateScope
}

// Source is a templateFrom entry with its templates read: Where names it in
// messages ("spec.target.template.templateFrom[0].configMap app-tpl").
type Source struct {
	Where  string
	Target secretsv1.TemplateTarget
	Items  []Item
}

// Output is what a template writes on the target Secret.
type Output struct {
	Data        map[string][]byte
	Labels      map[string]string
	Annotations map[string]string
}

// Templated says whether t shapes the Secret's data (template.data or a
// templateFrom entry); otherwise the fetched values are written as they are.
func Templated(t *secretsv1.ExternalSecretTemplate) bool {
	return t != nil && (len(t.Data) > 0 || len(t.TemplateFrom) > 0)
}

// Literals returns the sources of t's literal templateFrom entries (the
// others are read from the cluster by the caller).
func Literals(t *secretsv1.ExternalSecretTemplate) map[int]Source {
	out := map[int]Source{}
	if t == nil {
		return out
	}
	for i, tf := range t.TemplateFrom {
		if tf.Literal != nil {
			out[i] = Source{Where: fmt.Sprintf("template.templateFrom[%d].literal", i), Target: tf.Target,
				Items: []Item{{Key: "literal", Text: *tf.Literal, Scope: secretsv1.TemplateScopeKeysAndValues}}}
		}
	}
	return out
}

// RenderAll renders t over values: first the templateFrom sources in order,
// then template.data (a key there wins), plus the fetched values the
// template does not set when mergePolicy is Merge. Without data or
// templateFrom the values are written as fetched. Errors name the source and
// key, never a value.
func RenderAll(t *secretsv1.ExternalSecretTemplate, sources []Source, values map[string][]byte) (Output, error) {
	out := Output{Data: map[string][]byte{}, Labels: map[string]string{}, Annotations: map[string]string{}}
	if !Templated(t) {
		out.Data = values
		return out, nil
	}
	in := make(map[string]string, len(values))
	for k, v := range values {
		in[k] = string(v)
	}
	if t.MergePolicy == "Merge" {
		for k, v := range values {
			out.Data[k] = v
		}
	}
	for _, src := range sources {
		for _, it := range src.Items {
			where := src.Where + " key " + fmt.Sprintf("%q", it.Key)
			b, err := executeAt(where, it.Key, it.Text, in)
			if err != nil {
				return Output{}, err
			}
			kv := map[string]string{it.Key: string(b)}
			if it.Scope == secretsv1.TemplateScopeKeysAndValues {
				kv = map[string]string{}
				if err := yaml.Unmarshal(b, &kv); err != nil {
					return Output{}, &Error{Key: it.Key, Where: where, Err: errors.New("templateAs KeysAndValues did not render a map of strings")}
				}
			}
			for k, v := range kv {
				switch src.Target {
				case secretsv1.TemplateTargetLabels:
					out.Labels[k] = v
				case secretsv1.TemplateTargetAnnotations:
					out.Annotations[k] = v
				default:
					out.Data[k] = []byte(v)
				}
			}
		}
	}
	for _, k := range sortedKeys(t.Data) {
		b, err := executeAt("", k, t.Data[k], in)
		if err != nil {
			return Output{}, err
		}
		out.Data[k] = b
	}
	return out, nil
}

// executeAt renders text over in; where (when set) names the template in
// errors instead of key.
func executeAt(where, key, text string, in any) ([]byte, error) {
	tpl, err := parse(key, text)
	if err != nil {
		var te *Error
		if errors.As(err, &te) {
			te.Where = where
		}
		return nil, err
	}
	var b bytes.Buffer
	if err := tpl.Execute(&b, in); err != nil {
		return nil, &Error{Key: key, Where: where, Err: execError(err)}
	}
	return b.Bytes(), nil
}

// Key renders a dataFrom rewrite transform over one key name (.value).
func Key(text, key string) (string, error) {
	b, err := executeAt("transform template", "value", text, map[string]string{"value": key})
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// ParseKey checks a rewrite transform without executing it.
func ParseKey(text string) error {
	_, err := parse("value", text)
	var te *Error
	if errors.As(err, &te) {
		te.Where = "transform template"
	}
	return err
}

// SortedSourceIndexes returns the keys of m in order.
func SortedSourceIndexes(m map[int]Source) []int {
	out := make([]int, 0, len(m))
	for i := range m {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}
