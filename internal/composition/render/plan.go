package render

import (
	"errors"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	apiservercel "k8s.io/apiserver/pkg/cel"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/cel"
	"github.com/strata-dev/strata/internal/composition/dag"
)

// Plan is a compiled Composition: its CEL environment, the dependency graph
// between resources and their creation order. Build it once per revision.
type Plan struct {
	// Graph maps each resource to the resources it reads.
	Graph dag.Graph
	// Order is the creation order.
	Order []string
	// GVKs are the kinds the Composition composes.
	GVKs []schema.GroupVersionKind

	env       *cel.Env
	templates map[string]*v1alpha1.ComposedTemplate
	decoded   map[string]any
}

// Names returns the resource names in creation order.
func (p *Plan) Names() []string { return p.Order }

// NewPlan compiles every expression of a Composition (typing xr with xrType
// when given), finds the references between resources and orders them. Its
// errors name the resource, the field and the expression.
func NewPlan(spec *v1alpha1.CompositionSpec, xrType *apiservercel.DeclType) (*Plan, error) {
	p := &Plan{Graph: dag.Graph{}, templates: map[string]*v1alpha1.ComposedTemplate{}, decoded: map[string]any{}}
	vars := []string{}
	forEachVars := map[string]string{} // variable -> owning resource
	for i := range spec.Resources {
		t := &spec.Resources[i]
		if t.Name == cel.VarXR || t.Name == cel.VarEnvironment {
			return nil, &FieldError{Resource: t.Name, Field: "name", Err: fmt.Errorf("%q is reserved", t.Name)}
		}
		if _, dup := p.templates[t.Name]; dup {
			return nil, &FieldError{Resource: t.Name, Field: "name", Err: errors.New("duplicate resource name")}
		}
		p.templates[t.Name] = t
		vars = append(vars, t.Name)
	}
	for _, t := range spec.Resources {
		if t.ForEach == nil {
			continue
		}
		v := forEachVar(&t)
		for _, name := range []string{v, v + "Index"} {
			if _, clash := p.templates[name]; clash || forEachVars[name] != "" {
				return nil, &FieldError{Resource: t.Name, Field: "forEach.variable", Err: fmt.Errorf("variable %q is already declared", name)}
			}
			forEachVars[name] = t.Name
			vars = append(vars, name)
		}
	}
	env, err := cel.NewEnv(cel.Options{Variables: vars, XRType: xrType})
	if err != nil {
		return nil, err
	}
	p.env = env

	for _, t := range spec.Resources {
		deps := map[string]bool{}
		check := func(field, s string, self bool) error {
			exprs, err := cel.Expressions(s)
			if err != nil {
				return &FieldError{Resource: t.Name, Field: field, Expr: s, Err: err}
			}
			for _, e := range exprs {
				prog, err := env.Compile(e)
				if err != nil {
					return &FieldError{Resource: t.Name, Field: field, Expr: e, Err: err}
				}
				for _, r := range prog.Refs {
					if owner := forEachVars[r]; owner != "" && owner != t.Name {
						return &FieldError{Resource: t.Name, Field: field, Expr: e,
							Err: fmt.Errorf("variable %q belongs to the forEach of resource %q", r, owner)}
					}
					if _, ok := p.templates[r]; ok && !(self && r == t.Name) {
						deps[r] = true
					}
				}
			}
			return nil
		}
		var tmpl any
		if err := utiljson.Unmarshal(t.Template.Raw, &tmpl); err != nil {
			return nil, &FieldError{Resource: t.Name, Field: "template", Err: err}
		}
		if err := walkStrings(tmpl, "template", func(path, s string) error { return check(path, s, false) }); err != nil {
			return nil, err
		}
		p.decoded[t.Name] = tmpl
		gvk, err := templateGVK(tmpl)
		if err != nil {
			return nil, &FieldError{Resource: t.Name, Field: "template", Err: err}
		}
		p.GVKs = appendGVK(p.GVKs, gvk)
		for i, s := range t.ReadyWhen {
			if err := checkBool(env, t.Name, fmt.Sprintf("readyWhen[%d]", i), s); err != nil {
				return nil, err
			}
			if err := check(fmt.Sprintf("readyWhen[%d]", i), s, true); err != nil {
				return nil, err
			}
		}
		for i, s := range t.IncludeWhen {
			if err := checkBool(env, t.Name, fmt.Sprintf("includeWhen[%d]", i), s); err != nil {
				return nil, err
			}
			if err := check(fmt.Sprintf("includeWhen[%d]", i), s, false); err != nil {
				return nil, err
			}
		}
		if t.ForEach != nil {
			if _, ok := single(t.ForEach.In); !ok {
				return nil, &FieldError{Resource: t.Name, Field: "forEach.in", Expr: t.ForEach.In, Err: errors.New("must be exactly one ${...} expression")}
			}
			if err := check("forEach.in", t.ForEach.In, false); err != nil {
				return nil, err
			}
		}
		list := make([]string, 0, len(deps))
		for d := range deps {
			list = append(list, d)
		}
		sort.Strings(list)
		p.Graph[t.Name] = list
	}
	order, err := dag.Sort(p.Graph)
	if err != nil {
		return nil, &FieldError{Field: "resources", Err: err}
	}
	p.Order = order

	// Status and connection details may read every resource.
	if spec.Status != nil && len(spec.Status.Raw) > 0 {
		var st any
		if err := utiljson.Unmarshal(spec.Status.Raw, &st); err != nil {
			return nil, &FieldError{Field: "status", Err: err}
		}
		if err := walkStrings(st, "status", func(path, s string) error { return compileAll(env, "", path, s, forEachVars) }); err != nil {
			return nil, err
		}
	}
	for _, k := range sortedKeys(spec.ConnectionDetails) {
		if err := compileAll(env, "", "connectionDetails."+k, spec.ConnectionDetails[k], forEachVars); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func compileAll(env *cel.Env, resource, field, s string, forEachVars map[string]string) error {
	exprs, err := cel.Expressions(s)
	if err != nil {
		return &FieldError{Resource: resource, Field: field, Expr: s, Err: err}
	}
	for _, e := range exprs {
		prog, err := env.Compile(e)
		if err != nil {
			return &FieldError{Resource: resource, Field: field, Expr: e, Err: err}
		}
		for _, r := range prog.Refs {
			if owner := forEachVars[r]; owner != "" {
				return &FieldError{Resource: resource, Field: field, Expr: e,
					Err: fmt.Errorf("variable %q belongs to the forEach of resource %q", r, owner)}
			}
		}
	}
	return nil
}

func checkBool(env *cel.Env, resource, field, s string) error {
	e, ok := single(s)
	if !ok {
		return &FieldError{Resource: resource, Field: field, Expr: s, Err: errors.New("must be exactly one ${...} expression")}
	}
	prog, err := env.Compile(e)
	if err != nil {
		return &FieldError{Resource: resource, Field: field, Expr: e, Err: err}
	}
	if t := prog.OutputType.String(); t != "bool" && t != "dyn" {
		return &FieldError{Resource: resource, Field: field, Expr: e, Err: fmt.Errorf("must give a bool, gives %s", t)}
	}
	return nil
}

func single(s string) (string, bool) {
	segs, err := cel.Parse(s)
	if err != nil {
		return "", false
	}
	return cel.Single(segs)
}

// walkStrings calls fn for every string in v with its field path.
func walkStrings(v any, path string, fn func(path, s string) error) error {
	switch x := v.(type) {
	case string:
		if cel.HasExpr(x) {
			return fn(path, x)
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if err := walkStrings(x[k], path+"."+k, fn); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := walkStrings(e, fmt.Sprintf("%s[%d]", path, i), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func templateGVK(tmpl any) (schema.GroupVersionKind, error) {
	m, _ := tmpl.(map[string]any)
	av, _ := m["apiVersion"].(string)
	kind, _ := m["kind"].(string)
	if av == "" || kind == "" {
		return schema.GroupVersionKind{}, errors.New("apiVersion and kind are required")
	}
	if cel.HasExpr(av) || cel.HasExpr(kind) {
		return schema.GroupVersionKind{}, errors.New("apiVersion and kind must be literal, not expressions")
	}
	gv, err := schema.ParseGroupVersion(av)
	if err != nil {
		return schema.GroupVersionKind{}, fmt.Errorf("invalid apiVersion %q: %w", av, err)
	}
	return gv.WithKind(kind), nil
}

func appendGVK(l []schema.GroupVersionKind, g schema.GroupVersionKind) []schema.GroupVersionKind {
	for _, e := range l {
		if e == g {
			return l
		}
	}
	return append(l, g)
}
