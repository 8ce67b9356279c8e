package controller

import (
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// celCache compiles each readyWhen expression once.
type celCache struct {
	mu    sync.Mutex
	env   *cel.Env
	progs map[string]cel.Program
}

func newCELCache() *celCache {
	env, err := cel.NewEnv(cel.Variable("self", cel.DynType))
	if err != nil {
		panic(fmt.Sprintf("cannot build CEL environment: %v", err))
	}
	return &celCache{env: env, progs: map[string]cel.Program{}}
}

func (c *celCache) eval(expr string, self map[string]any) (bool, error) {
	c.mu.Lock()
	p, ok := c.progs[expr]
	if !ok {
		ast, iss := c.env.Compile(expr)
		if iss != nil && iss.Err() != nil {
			c.mu.Unlock()
			return false, fmt.Errorf("invalid expression: %w", iss.Err())
		}
		prog, err := c.env.Program(ast)
		if err != nil {
			c.mu.Unlock()
			return false, fmt.Errorf("invalid expression: %w", err)
		}
		c.progs[expr] = prog
		p = prog
	}
	c.mu.Unlock()
	out, _, err := p.Eval(map[string]any{"self": self})
	if err != nil {
		// A field that is not there yet (no status) reads as not ready.
		return false, nil
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("expression returned %T, want bool", out.Value())
	}
	return b, nil
}

func runtimeToUnstructured(o runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, fmt.Errorf("cannot convert %T: %w", o, err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}
