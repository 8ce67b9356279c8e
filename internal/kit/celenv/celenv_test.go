package celenv

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/go-cmp/cmp"
)

func TestEval(t *testing.T) {
	env, err := New(Options{
		Variables: []Variable{
			{Name: "self"},
			{Name: "env", Type: cel.MapType(cel.StringType, cel.DynType), Default: map[string]any{"region": "eu"}},
		},
		CostLimit: 10_000,
	})
	if err != nil {
		t.Fatal(err)
	}
	self := map[string]any{
		"metadata": map[string]any{"name": "db"},
		"status":   map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}},
		"items":    []any{int64(1), int64(2), int64(3)},
	}
	cases := map[string]struct {
		expr        string
		want        any
		wantErr     error
		wantCompile string
	}{
		"field":                 {expr: "self.metadata.name", want: "db"},
		"kubernetes list lib":   {expr: "self.items.isSorted()", want: true},
		"optional field":        {expr: "self.?spec.replicas.orValue(1)", want: int64(1)},
		"default variable":      {expr: "env.region", want: "eu"},
		"exists":                {expr: "self.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')", want: true},
		"missing field":         {expr: "self.status.phase == 'Bound'", wantErr: ErrMissingData},
		"runaway is stopped":    {expr: "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, a+b+c+d > 0))))", wantErr: ErrCostLimit},
		"syntax error compiles": {expr: "self.status.(", wantCompile: "Syntax error"},
		"undeclared variable":   {expr: "slef.status", wantCompile: "undeclared reference to 'slef'"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := env.Compile(tc.expr)
			if tc.wantCompile != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantCompile) {
					t.Fatalf("Compile error = %v, want %q", err, tc.wantCompile)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Eval(map[string]any{"self": self})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Eval error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("Eval (-want +got):\n%s", d)
			}
		})
	}
}

func TestDuplicateVariable(t *testing.T) {
	if _, err := New(Options{Variables: []Variable{{Name: "a"}, {Name: "a"}}}); err == nil {
		t.Error("a variable declared twice was accepted")
	}
}

// FuzzEval: any expression compiles or fails, and evaluates or fails, without
// panicking; the cost limit ends runaway ones.
func FuzzEval(f *testing.F) {
	env, err := New(Options{Variables: []Variable{{Name: "self"}}, CostLimit: 10_000})
	if err != nil {
		f.Fatal(err)
	}
	self := map[string]any{"status": map[string]any{"n": int64(2), "l": []any{"a", "b"}}}
	for _, s := range []string{"self.status.n > 1", "self.?status.?x.orValue(0)", "self.status.l.all(a, self.status.l.all(b, a != b))", "[1,2].map(x, x * 2)", "'a'.matches('[')"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		p, err := env.Compile(expr)
		if err != nil {
			return
		}
		_, _ = p.Eval(map[string]any{"self": self})
	})
}
