package celenv

import (
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
	"k8s.io/apimachinery/pkg/util/version"
	apiservercel "k8s.io/apiserver/pkg/cel"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/apiserver/pkg/cel/library"
)

// DefaultCostLimit bounds every evaluation; it is the Kubernetes per-call
// limit for CRD validation rules (roughly 0.1s of work).
const DefaultCostLimit uint64 = 1_000_000

// Variable is a variable expressions may read.
type Variable struct {
	// Name of the variable.
	Name string
	// Type is its CEL type; nil means dyn.
	Type *cel.Type
	// Schema types the variable from an OpenAPI schema, so references to
	// fields it lacks fail to compile; it wins over Type.
	Schema *apiservercel.DeclType
	// Default is bound when an evaluation does not bind the variable.
	Default any
}

// Options configure an Env.
type Options struct {
	// Variables expressions may read; names must be unique.
	Variables []Variable
	// CostLimit bounds each evaluation; zero means DefaultCostLimit.
	CostLimit uint64
}

// Env compiles expressions over a fixed set of variables. It caches compiled
// programs and is safe for concurrent use.
type Env struct {
	env       *cel.Env
	costLimit uint64
	defaults  map[string]any
	mu        sync.Mutex
	cache     map[string]*Program
}

// Program is a compiled expression.
type Program struct {
	// Expr is the source.
	Expr string
	// Refs are the variables the expression reads, sorted.
	Refs []string
	// OutputType is the type the checker inferred.
	OutputType *cel.Type
	prg        cel.Program
	defaults   map[string]any
}

// New builds an environment with the Kubernetes base library set at the
// default compatibility version, cel-go's math, encoders and bindings
// extensions, and opts.Variables.
func New(opts Options) (*Env, error) {
	envOpts := []cel.EnvOption{ext.Math(), ext.Encoders(), ext.Bindings()}
	var declTypes []*apiservercel.DeclType
	defaults := map[string]any{}
	seen := map[string]bool{}
	for _, v := range opts.Variables {
		if seen[v.Name] {
			return nil, fmt.Errorf("variable %q is declared twice", v.Name)
		}
		seen[v.Name] = true
		typ := v.Type
		if typ == nil {
			typ = cel.DynType
		}
		if v.Schema != nil {
			t := v.Schema.MaybeAssignTypeName("__" + v.Name + "__")
			typ = t.CelType()
			declTypes = append(declTypes, t)
		}
		envOpts = append(envOpts, cel.Variable(v.Name, typ))
		if v.Default != nil {
			defaults[v.Name] = v.Default
		}
	}
	set, err := environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()).Extend(environment.VersionedOptions{
		IntroducedVersion: version.MajorMinor(1, 0),
		EnvOptions:        envOpts,
		DeclTypes:         declTypes,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot build CEL environment: %w", err)
	}
	limit := opts.CostLimit
	if limit == 0 {
		limit = DefaultCostLimit
	}
	return &Env{env: set.NewExpressionsEnv(), costLimit: limit, defaults: defaults, cache: map[string]*Program{}}, nil
}

// Compile parses and type-checks an expression.
func (e *Env) Compile(expr string) (*Program, error) {
	e.mu.Lock()
	p, ok := e.cache[expr]
	e.mu.Unlock()
	if ok {
		return p, nil
	}
	ast, iss := e.env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%s", strings.TrimSpace(strings.ReplaceAll(iss.Err().Error(), "\n", " ")))
	}
	prg, err := e.env.Program(ast,
		cel.CostLimit(e.costLimit),
		cel.CostTracking(&library.CostEstimator{}),
		cel.InterruptCheckFrequency(100),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, fmt.Errorf("cannot plan expression: %w", err)
	}
	refs := map[string]bool{}
	for _, r := range ast.NativeRep().ReferenceMap() {
		if r.Name != "" && r.Value == nil {
			refs[strings.SplitN(r.Name, ".", 2)[0]] = true
		}
	}
	p = &Program{Expr: expr, OutputType: ast.OutputType(), prg: prg, defaults: e.defaults}
	for r := range refs {
		p.Refs = append(p.Refs, r)
	}
	sort.Strings(p.Refs)
	e.mu.Lock()
	e.cache[expr] = p
	e.mu.Unlock()
	return p, nil
}

// ErrMissingData marks an evaluation that read a field that is not there
// (yet): the caller usually waits for the data rather than failing.
var ErrMissingData = errors.New("missing data")

// ErrCostLimit marks an evaluation stopped by the cost limit.
var ErrCostLimit = errors.New("cost limit exceeded")

// Eval evaluates the program and converts the result to JSON-compatible Go
// values (nil, bool, int64, float64, string, []any, map[string]any).
func (p *Program) Eval(vars map[string]any) (any, error) {
	act := make(map[string]any, len(vars)+len(p.defaults))
	for k, v := range p.defaults {
		act[k] = v
	}
	for k, v := range vars {
		act[k] = v
	}
	out, _, err := p.prg.Eval(act)
	if err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "no such key") || strings.Contains(msg, "no such field") ||
			strings.Contains(msg, "no such attribute"):
			return nil, fmt.Errorf("%w: %s", ErrMissingData, msg)
		case strings.Contains(msg, "cost limit exceeded"):
			return nil, fmt.Errorf("%w: %s", ErrCostLimit, msg)
		}
		return nil, errors.New(msg)
	}
	return Native(out)
}

// EvalBool evaluates a boolean expression.
func (p *Program) EvalBool(vars map[string]any) (bool, error) {
	v, err := p.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("expression must give a bool, got %T", v)
	}
	return b, nil
}

// Native converts a CEL value to JSON-compatible Go values.
func Native(v ref.Val) (any, error) {
	switch x := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(x), nil
	case types.Int:
		return int64(x), nil
	case types.Uint:
		return int64(x), nil
	case types.Double:
		return float64(x), nil
	case types.String:
		return string(x), nil
	case types.Bytes:
		return base64.StdEncoding.EncodeToString(x), nil
	case *types.Optional:
		if !x.HasValue() {
			return nil, nil
		}
		return Native(x.GetValue())
	}
	if v.Type() == types.ErrType {
		return nil, fmt.Errorf("%v", v)
	}
	if l, ok := v.(traits.Lister); ok && v.Type() == types.ListType {
		out := []any{}
		for it := l.Iterator(); it.HasNext() == types.True; {
			e, err := Native(it.Next())
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	if m, ok := v.(traits.Mapper); ok {
		out := map[string]any{}
		for it := m.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("map key %v is not a string", k)
			}
			e, err := Native(m.Get(k))
			if err != nil {
				return nil, err
			}
			out[string(ks)] = e
		}
		return out, nil
	}
	if s := v.ConvertToType(types.StringType); s.Type() == types.StringType {
		return string(s.(types.String)), nil
	}
	return v.Value(), nil
}
