package render

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/cel"
)

// SchemaSource returns the OpenAPI schema of a kind and a resolver for its
// $refs, or nil when the kind's schema is unknown (then it is not checked).
type SchemaSource interface {
	Schema(gvk schema.GroupVersionKind) (*spec.Schema, func(ref string) *spec.Schema, error)
}

// CheckTargets checks the templates of a compiled Composition against the
// OpenAPI schemas of the kinds they compose: every field must exist, and an
// expression that is a whole value must give the field's type.
func (p *Plan) CheckTargets(spec *v1alpha1.CompositionSpec, src SchemaSource) error {
	for _, t := range spec.Resources {
		tmpl := p.decoded[t.Name]
		gvk, err := templateGVK(tmpl)
		if err != nil {
			return &FieldError{Resource: t.Name, Field: "template", Err: err}
		}
		s, resolve, err := src.Schema(gvk)
		if err != nil {
			return &SchemaError{Err: fmt.Errorf("cannot get the schema of %s: %w", gvk, err)}
		}
		if s == nil {
			continue
		}
		c := &targetChecker{env: p.env, resolve: resolve, kind: gvk.Kind}
		m, _ := tmpl.(map[string]any)
		for _, k := range sortedKeys(m) {
			if k == "apiVersion" || k == "kind" {
				continue
			}
			if err := c.check(m[k], c.property(s, k), "template."+k); err != nil {
				err.Resource = t.Name
				return err
			}
		}
	}
	return nil
}

type targetChecker struct {
	env     *cel.Env
	resolve func(string) *spec.Schema
	kind    string
}

// deref follows $ref and single-element allOf wrappers.
func (c *targetChecker) deref(s *spec.Schema) *spec.Schema {
	for i := 0; s != nil && i < 10; i++ {
		switch {
		case s.Ref.String() != "":
			if c.resolve == nil {
				return nil
			}
			s = c.resolve(s.Ref.String())
		case len(s.AllOf) == 1 && len(s.Properties) == 0 && len(s.Type) == 0:
			s = &s.AllOf[0]
		default:
			return s
		}
	}
	return s
}

// property returns the schema of field k of object schema s, nil when
// anything goes, and a sentinel when the field does not exist.
func (c *targetChecker) property(s *spec.Schema, k string) *spec.Schema {
	s = c.deref(s)
	if s == nil || preserves(s) {
		return nil
	}
	if p, ok := s.Properties[k]; ok {
		return &p
	}
	if s.AdditionalProperties != nil {
		if s.AdditionalProperties.Schema != nil {
			return s.AdditionalProperties.Schema
		}
		if s.AdditionalProperties.Allows {
			return nil
		}
	}
	if len(s.Properties) == 0 {
		return nil
	}
	return unknownField
}

var unknownField = &spec.Schema{}

func preserves(s *spec.Schema) bool {
	v, ok := s.Extensions["x-kubernetes-preserve-unknown-fields"].(bool)
	return ok && v
}

func intOrString(s *spec.Schema) bool {
	v, ok := s.Extensions["x-kubernetes-int-or-string"].(bool)
	return ok && v || s.Format == "int-or-string"
}

func (c *targetChecker) check(v any, s *spec.Schema, path string) *FieldError {
	if s == unknownField {
		return &FieldError{Field: path, Err: fmt.Errorf("%s has no field %s", c.kind, lastSegment(path))}
	}
	s = c.deref(s)
	if s == nil || preserves(s) {
		return nil
	}
	typ := ""
	if len(s.Type) == 1 {
		typ = s.Type[0]
	}
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if err := c.check(x[k], c.property(s, k), path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		if s.Items != nil && s.Items.Schema != nil {
			for i, e := range x {
				if err := c.check(e, s.Items.Schema, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	case string:
		if !cel.HasExpr(x) || typ == "" || intOrString(s) {
			return nil
		}
		segs, err := cel.Parse(x)
		if err != nil {
			return nil // reported by NewPlan
		}
		expr, single := cel.Single(segs)
		if !single {
			if typ != "string" {
				return &FieldError{Field: path, Expr: x, Err: fmt.Errorf("text with expressions gives a string, field wants %s", typ)}
			}
			return nil
		}
		prog, err := c.env.Compile(expr)
		if err != nil {
			return nil // reported by NewPlan
		}
		if got := prog.OutputType.String(); !compatible(got, typ) {
			return &FieldError{Field: path, Expr: expr, Err: fmt.Errorf("expression gives %s, field wants %s", got, typ)}
		}
	}
	return nil
}

// compatible reports whether a CEL output type can fill an OpenAPI type.
// Only definite mismatches count: dyn, null and numbers for strings (the API
// server accepts numbers for quantities) pass.
func compatible(celType, openAPIType string) bool {
	base := celType
	if i := strings.IndexByte(base, '('); i > 0 {
		base = base[:i]
	}
	switch base {
	case "dyn", "null_type", "optional_type":
		return true
	}
	allowed := map[string][]string{
		"integer": {"int", "uint"},
		"number":  {"int", "uint", "double"},
		"string":  {"string", "int", "uint", "double", "google.protobuf.Timestamp", "google.protobuf.Duration", "kubernetes.Quantity", "bytes"},
		"boolean": {"bool"},
		"object":  {"map"},
		"array":   {"list"},
	}[openAPIType]
	if allowed == nil {
		return true
	}
	for _, a := range allowed {
		if base == a {
			return true
		}
	}
	// Object types from the XRD schema are maps for the API server.
	return openAPIType == "object" && !strings.Contains("int uint double string bool list bytes", base)
}

func lastSegment(path string) string {
	i := strings.LastIndexAny(path, ".")
	return path[i+1:]
}

// MapSchemaSource serves schemas from a fixed set (for `strata validate`).
type MapSchemaSource map[schema.GroupVersionKind]*spec.Schema

// Schema implements SchemaSource.
func (m MapSchemaSource) Schema(gvk schema.GroupVersionKind) (*spec.Schema, func(string) *spec.Schema, error) {
	return m[gvk], nil, nil
}

// Kinds lists the kinds of a MapSchemaSource, sorted.
func (m MapSchemaSource) Kinds() []string {
	var out []string
	for k := range m {
		out = append(out, k.String())
	}
	sort.Strings(out)
	return out
}

// SchemaError is a failure to fetch a schema: transient, not the
// Composition's fault.
type SchemaError struct{ Err error }

func (e *SchemaError) Error() string { return e.Err.Error() }
func (e *SchemaError) Unwrap() error { return e.Err }
