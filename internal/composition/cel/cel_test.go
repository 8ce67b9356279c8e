package cel

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

func TestParse(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    []Segment
		wantErr string
	}{
		"plain":        {in: "hello", want: []Segment{{Text: "hello"}}},
		"empty":        {in: "", want: []Segment{{Text: ""}}},
		"single":       {in: "${xr.spec.a}", want: []Segment{{Text: "xr.spec.a", Expr: true}}},
		"mixed":        {in: "a-${x}-b", want: []Segment{{Text: "a-"}, {Text: "x", Expr: true}, {Text: "-b"}}},
		"brace string": {in: `${"}" + x}`, want: []Segment{{Text: `"}" + x`, Expr: true}}},
		"map literal":  {in: `${{"a": 1}.a}`, want: []Segment{{Text: `{"a": 1}.a`, Expr: true}}},
		"escaped":      {in: "$${x}", want: []Segment{{Text: "${x}"}}},
		"two":          {in: "${a}${b}", want: []Segment{{Text: "a", Expr: true}, {Text: "b", Expr: true}}},
		"unterminated": {in: "${xr.spec", wantErr: "missing }"},
		"empty expr":   {in: "x${ }", wantErr: "empty expression"},
		"open string":  {in: `${"abc}`, wantErr: "unterminated string"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tc.in, d)
			}
		})
	}
}

func TestEvalString(t *testing.T) {
	env, err := NewEnv(Options{Variables: []string{"db", "each"}, CostLimit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{
		"xr": map[string]any{
			"metadata": map[string]any{"name": "shop"},
			"spec":     map[string]any{"replicas": int64(3), "image": "nginx:1.27", "tags": []any{"a", "b"}, "memory": "512Mi"},
		},
		"db":          map[string]any{"status": map[string]any{}},
		"each":        "alice",
		"environment": map[string]any{"region": "eu"},
	}
	cases := map[string]struct {
		in      string
		want    any
		wantErr string
		missing bool
	}{
		"int keeps type":   {in: "${xr.spec.replicas}", want: int64(3)},
		"arithmetic":       {in: "${xr.spec.replicas * 2}", want: int64(6)},
		"bool":             {in: "${xr.spec.replicas > 2}", want: true},
		"interpolate":      {in: "${xr.metadata.name}-web", want: "shop-web"},
		"interpolate int":  {in: "n=${xr.spec.replicas}", want: "n=3"},
		"list":             {in: "${xr.spec.tags.map(t, t.upperAscii())}", want: []any{"A", "B"}},
		"map":              {in: `${{"app": xr.metadata.name}}`, want: map[string]any{"app": "shop"}},
		"optional":         {in: `${db.status.?endpoint.orValue("pending")}`, want: "pending"},
		"k8s quantity":     {in: `${quantity(xr.spec.memory).isGreaterThan(quantity("256Mi"))}`, want: true},
		"k8s regex":        {in: `${xr.spec.image.find("[0-9.]+$")}`, want: "1.27"},
		"ext strings":      {in: `${xr.spec.image.split(":")[0]}`, want: "nginx"},
		"environment":      {in: "${environment.region}", want: "eu"},
		"each":             {in: "${each}", want: "alice"},
		"missing field":    {in: "${db.status.endpoint}", missing: true, wantErr: "no such key"},
		"syntax error":     {in: "${xr.spec.}", wantErr: "Syntax error"},
		"unknown variable": {in: "${nope.x}", wantErr: "undeclared reference to 'nope'"},
		"cost limit":       {in: "${[1,2,3,4,5,6,7,8,9,10].map(a, [1,2,3,4,5,6,7,8,9,10].map(b, [1,2,3,4,5,6,7,8,9,10].map(c, [1,2,3,4,5,6,7,8,9,10].map(d, a*b*c*d))))}", wantErr: "cost limit exceeded"},
		"no expression":    {in: "plain", want: "plain"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := env.EvalString(tc.in, vars)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("EvalString(%q) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				if errors.Is(err, ErrMissingData) != tc.missing {
					t.Errorf("errors.Is(ErrMissingData) = %v, want %v", !tc.missing, tc.missing)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("EvalString(%q) (-want +got):\n%s", tc.in, d)
			}
		})
	}
}

func TestCompileRefs(t *testing.T) {
	env, err := NewEnv(Options{Variables: []string{"db", "role"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := env.Compile(`db.status.?host.orValue("") + role.metadata.name + xr.spec.x`)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"db", "role", "xr"}, p.Refs); d != "" {
		t.Errorf("Refs (-want +got):\n%s", d)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"${a}", "x${b.c}y", `${"}"}`, "$${", "${{", "${'''}'''}", "${a}${"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		segs, err := Parse(s)
		if err != nil {
			return
		}
		for _, sg := range segs {
			if sg.Expr && strings.TrimSpace(sg.Text) == "" {
				t.Fatalf("Parse(%q) gave an empty expression", s)
			}
		}
		if !HasExpr(s) && (len(segs) != 1 || segs[0].Expr || segs[0].Text != s) {
			t.Fatalf("Parse(%q) of plain text = %#v", s, segs)
		}
	})
}

func FuzzEvalString(f *testing.F) {
	env, err := NewEnv(Options{CostLimit: 10_000})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"${xr.a}", "x${1+2}y", `${"a".repeat(3)}`, "${[1,2].map(x, x*2)}"} {
		f.Add(s)
	}
	vars := map[string]any{"xr": map[string]any{"a": int64(1)}}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = env.EvalString(s, vars) // must not panic or hang
	})
}

func TestSchemaTypeChecksFields(t *testing.T) {
	s := &apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
		"metadata": ObjectMetaSchema(),
		"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"replicas": {Type: "integer"},
			"image":    {Type: "string"},
		}},
	}}
	typ, err := SchemaType(s)
	if err != nil {
		t.Fatal(err)
	}
	env, err := NewEnv(Options{XRType: typ})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Compile("xr.spec.replicas + 1"); err != nil {
		t.Errorf("valid field: %v", err)
	}
	if _, err := env.Compile(`xr.metadata.name + xr.metadata.labels[?"a"].orValue("")`); err != nil {
		t.Errorf("metadata: %v", err)
	}
	if _, err := env.Compile("xr.spec.replica"); err == nil || !strings.Contains(err.Error(), "undefined field 'replica'") {
		t.Errorf("unknown field: err = %v", err)
	}
	if _, err := env.Compile(`xr.spec.image + 1`); err == nil || !strings.Contains(err.Error(), "no matching overload") {
		t.Errorf("wrong type: err = %v", err)
	}
	p, err := env.Compile("xr.spec.replicas")
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Eval(map[string]any{"xr": map[string]any{"spec": map[string]any{"replicas": int64(2)}}})
	if err != nil || v != int64(2) {
		t.Errorf("Eval = %v, %v", v, err)
	}
}
