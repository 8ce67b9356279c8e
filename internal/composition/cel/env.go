package cel

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types/ref"
	apiservercel "k8s.io/apiserver/pkg/cel"

	"github.com/strata-dev/strata/internal/kit/celenv"
)

// DefaultCostLimit bounds every evaluation (kit/celenv's limit).
const DefaultCostLimit = celenv.DefaultCostLimit

// Variables every Composition sees.
const (
	VarXR          = "xr"
	VarEnvironment = "environment"
)

// Options configure an Env.
type Options struct {
	// Variables are the names of further variables, typed dyn (observed
	// resources, forEach elements and indexes).
	Variables []string
	// XRType types the xr variable (from the XRD schema) so field references
	// are checked; nil makes it dyn.
	XRType *apiservercel.DeclType
	// CostLimit bounds each evaluation; zero means DefaultCostLimit.
	CostLimit uint64
}

// Env is a kit/celenv environment with the variables of a Composition and
// template evaluation (EvalString).
type Env struct {
	*celenv.Env
}

// Program is a compiled expression.
type Program = celenv.Program

// ErrMissingData marks an evaluation that read a field that is not there
// (yet): the caller usually waits for the data rather than failing.
var ErrMissingData = celenv.ErrMissingData

// Native converts a CEL value to JSON-compatible Go values.
func Native(v ref.Val) (any, error) { return celenv.Native(v) }

// NewEnv builds an environment with xr, environment (empty unless bound)
// and opts.Variables.
func NewEnv(opts Options) (*Env, error) {
	vars := []celenv.Variable{
		{Name: VarXR, Schema: opts.XRType},
		{Name: VarEnvironment, Type: cel.MapType(cel.StringType, cel.DynType), Default: map[string]any{}},
	}
	for _, v := range opts.Variables {
		if v == VarXR || v == VarEnvironment {
			return nil, fmt.Errorf("variable %q is declared twice (xr and environment are reserved)", v)
		}
		vars = append(vars, celenv.Variable{Name: v})
	}
	e, err := celenv.New(celenv.Options{Variables: vars, CostLimit: opts.CostLimit})
	if err != nil {
		return nil, err
	}
	return &Env{Env: e}, nil
}

// Stringify renders a value for interpolation into text: strings as they
// are, numbers and bools in their usual form, null as empty, the rest as JSON.
func Stringify(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// EvalString evaluates a template string: one `${...}` keeps the type of its
// value, mixed text interpolates, text without expressions is returned as is.
func (e *Env) EvalString(s string, vars map[string]any) (any, error) {
	segs, err := Parse(s)
	if err != nil {
		return nil, err
	}
	if expr, ok := Single(segs); ok {
		p, err := e.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("expression %q: %w", expr, err)
		}
		v, err := p.Eval(vars)
		if err != nil {
			return nil, fmt.Errorf("expression %q: %w", expr, err)
		}
		return v, nil
	}
	var b strings.Builder
	for _, sg := range segs {
		if !sg.Expr {
			b.WriteString(sg.Text)
			continue
		}
		p, err := e.Compile(sg.Text)
		if err != nil {
			return nil, fmt.Errorf("expression %q: %w", sg.Text, err)
		}
		v, err := p.Eval(vars)
		if err != nil {
			return nil, fmt.Errorf("expression %q: %w", sg.Text, err)
		}
		b.WriteString(Stringify(v))
	}
	return b.String(), nil
}
