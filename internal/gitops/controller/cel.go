package controller

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/strata-dev/strata/internal/kit/celenv"
)

// readyWhen compiles and evaluates dependsOn[].readyWhen in the kit's CEL
// environment (cost limit, Kubernetes libraries, optional fields), with the
// dependency bound to self. Programs are cached by the environment.
type readyWhen struct{ env *celenv.Env }

func newReadyWhen() *readyWhen {
	env, err := celenv.New(celenv.Options{Variables: []celenv.Variable{{Name: "self"}}})
	if err != nil {
		// The declarations are static: this cannot fail at run time.
		panic(fmt.Sprintf("cannot build CEL environment: %v", err))
	}
	return &readyWhen{env: env}
}

// readyWhenError is a readyWhen expression that does not compile or cannot
// be evaluated. Stalled errors need a change of the expression: it does not
// compile, or it ran into the cost limit.
type readyWhenError struct {
	Expr    string
	Err     error
	Stalled bool
}

func (e *readyWhenError) Error() string {
	return fmt.Sprintf("readyWhen %q: %v", e.Expr, e.Err)
}

func (e *readyWhenError) Unwrap() error { return e.Err }

// compile checks an expression; its error is a stalled *readyWhenError.
func (w *readyWhen) compile(expr string) (*celenv.Program, error) {
	p, err := w.env.Compile(expr)
	if err != nil {
		return nil, &readyWhenError{Expr: expr, Err: err, Stalled: true}
	}
	if t := p.OutputType.String(); t != "bool" && t != "dyn" {
		return nil, &readyWhenError{Expr: expr, Err: fmt.Errorf("must give a bool, gives %s", t), Stalled: true}
	}
	return p, nil
}

// eval evaluates expr with self bound. A field that is not there (a typo,
// or a status not written yet) is an error naming the expression; use
// `self.?status.?field.orValue(default)` to read a field that may be absent.
func (w *readyWhen) eval(expr string, self map[string]any) (bool, error) {
	p, err := w.compile(expr)
	if err != nil {
		return false, err
	}
	ok, err := p.EvalBool(map[string]any{"self": self})
	if err != nil {
		return false, &readyWhenError{Expr: expr, Err: err, Stalled: errors.Is(err, celenv.ErrCostLimit)}
	}
	return ok, nil
}

func runtimeToUnstructured(o runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, fmt.Errorf("cannot convert %T: %w", o, err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}
