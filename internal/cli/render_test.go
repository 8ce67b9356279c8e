package cli

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-dev/strata/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestDocExamples renders the examples of docs/compositions.md and compares
// them with the output shown there.
func TestDocExamples(t *testing.T) {
	f, err := os.Open(filepath.Join(testenv.RepoRoot(), "docs", "compositions.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	examples := map[string]map[string]string{}
	var name, file string
	var buf strings.Builder
	in := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		switch {
		case !in && strings.HasPrefix(line, "```yaml"):
			in, name, file = true, "", ""
			buf.Reset()
		case in && line == "```":
			in = false
			if name != "" {
				if examples[name] == nil {
					examples[name] = map[string]string{}
				}
				examples[name][file] = buf.String()
			}
		case in && name == "" && file == "" && strings.HasPrefix(line, "# example: "):
			name, file, _ = strings.Cut(strings.TrimPrefix(line, "# example: "), "/")
		case in:
			buf.WriteString(line + "\n")
		}
	}
	if len(examples) == 0 {
		t.Fatal("docs/compositions.md has no examples")
	}
	for name, files := range examples {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"xr.yaml", "composition.yaml"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(files[f]), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			if err := runRender(&out, filepath.Join(dir, "xr.yaml"), filepath.Join(dir, "composition.yaml"), "", ""); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(files["output"], out.String()); d != "" {
				t.Errorf("docs/compositions.md example %s output differs (-doc +render):\n%s", name, d)
			}
		})
	}
}

// TestRenderWebApp renders the webapp Composition with observed state and
// compares with a golden file (go test ./internal/cli -run TestRenderWebApp -update).
func TestRenderWebApp(t *testing.T) {
	root := testenv.RepoRoot()
	td := filepath.Join("testdata", "render", "webapp")
	var out bytes.Buffer
	err := runRender(&out, filepath.Join(td, "xr.yaml"), filepath.Join(root, "compositions", "webapp", "composition.yaml"),
		filepath.Join(td, "observed"), "")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join(td, "output.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(want), out.String()); d != "" {
		t.Errorf("render output differs from %s (-want +got):\n%s", golden, d)
	}
}

func TestValidateCommand(t *testing.T) {
	root := testenv.RepoRoot()
	cases := map[string]struct {
		composition string
		crds        []string
		wantErr     []string
	}{
		"webapp":         {composition: filepath.Join(root, "compositions", "webapp", "composition.yaml")},
		"wrong field":    {composition: "testdata/validate/wrong-field.yaml", wantErr: []string{`resource "deployment"`, "template.spec.replicas", `"xr.spec.replica"`, "undefined field 'replica'"}},
		"cycle":          {composition: "testdata/validate/cycle.yaml", wantErr: []string{"dependency cycle: a -> b -> a"}},
		"syntax":         {composition: "testdata/validate/syntax.yaml", wantErr: []string{"template.data.x", "Syntax error"}},
		"wrong type":     {composition: "testdata/validate/wrong-type.yaml", wantErr: []string{"includeWhen[0]", "must give a bool, gives string"}},
		"unknown object": {composition: "testdata/validate/unknown-var.yaml", wantErr: []string{"undeclared reference to 'databse'"}},
		"crd field type": {composition: "testdata/validate/widget.yaml", crds: []string{"testdata/validate/widget-crd.yaml"},
			wantErr: []string{`resource "widget"`, "template.spec.size", "expression gives string, field wants integer"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cmd := newValidateCommand()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs(append([]string{filepath.Join(root, "compositions", "webapp", "xrd.yaml"), tc.composition}, tc.crds...))
			err := cmd.Execute()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
