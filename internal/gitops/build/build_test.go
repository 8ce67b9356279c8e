package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-dev/strata/internal/gitops/sops"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const cm = `apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
data:
  v: "${v:=def}"
`

func TestBuild(t *testing.T) {
	cases := map[string]struct {
		files   map[string]string
		path    string
		opts    Options
		want    []string // kind/name sorted as built
		wantErr string
	}{
		"plain YAML, nested folders, multi-doc, lists": {
			files: map[string]string{
				"app/a.yaml":         strings.ReplaceAll(cm, "%s", "a") + "---\n" + strings.ReplaceAll(cm, "%s", "b"),
				"app/sub/c.yml":      `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"c"}}]}`,
				"app/readme.md":      "not yaml",
				"app/.hidden/x.yaml": "garbage: [",
				"other/z.yaml":       strings.ReplaceAll(cm, "%s", "z"),
			},
			path: "app",
			want: []string{"ConfigMap/a", "ConfigMap/b", "Secret/c"},
		},
		"kustomize": {
			files: map[string]string{
				"base/cm.yaml":               strings.ReplaceAll(cm, "%s", "a"),
				"base/kustomization.yaml":    "resources: [cm.yaml]\n",
				"overlay/kustomization.yaml": "resources: [../base]\nnamePrefix: p-\n",
			},
			path: "overlay",
			want: []string{"ConfigMap/p-a"},
		},
		"invalid YAML names the file": {
			files:   map[string]string{"app/ok.yaml": strings.ReplaceAll(cm, "%s", "a"), "app/bad.yaml": "kind: [\n"},
			path:    "app",
			wantErr: "app/bad.yaml: document 1: invalid YAML",
		},
		"object without kind": {
			files:   map[string]string{"app/x.yaml": "apiVersion: v1\nmetadata: {name: x}\n"},
			path:    "app",
			wantErr: "app/x.yaml: document 1: apiVersion and kind are required",
		},
		"kustomize failure names the kustomization": {
			files:   map[string]string{"app/kustomization.yaml": "resources: [missing.yaml]\n"},
			path:    "app",
			wantErr: "app/kustomization.yaml: kustomize build failed",
		},
		"missing path": {
			files:   map[string]string{"app/x.yaml": strings.ReplaceAll(cm, "%s", "a")},
			path:    "nope",
			wantErr: "nope: path not found",
		},
		"duplicate object names both files": {
			files:   map[string]string{"app/a.yaml": strings.ReplaceAll(cm, "%s", "a"), "app/sub/b.yaml": strings.ReplaceAll(cm, "%s", "a")},
			path:    "app",
			wantErr: `ConfigMap "a" appears twice: in app/a.yaml and app/sub/b.yaml`,
		},
		"duplicate in one file": {
			files:   map[string]string{"app/a.yaml": strings.ReplaceAll(cm, "%s", "a") + "---\n" + strings.ReplaceAll(cm, "%s", "a")},
			path:    "app",
			wantErr: `ConfigMap "a" appears twice: in app/a.yaml`,
		},
		"duplicate after substitution names both files": {
			files:   map[string]string{"app/a.yaml": strings.ReplaceAll(cm, "%s", "${n1}"), "app/b.yaml": strings.ReplaceAll(cm, "%s", "${n2}")},
			path:    "app",
			opts:    Options{Substitute: true, Vars: map[string]string{"n1": "same", "n2": "same"}},
			wantErr: `ConfigMap "same" appears twice: in app/a.yaml and app/b.yaml`,
		},
		"duplicate with namespaces differing is fine": {
			files: map[string]string{
				"app/a.yaml": strings.Replace(strings.ReplaceAll(cm, "%s", "a"), "name: a", "name: a\n  namespace: x", 1),
				"app/b.yaml": strings.ReplaceAll(cm, "%s", "a"),
			},
			path: "app",
			want: []string{"ConfigMap/a", "ConfigMap/a"},
		},
		"sops-encrypted without decryption": {
			files:   map[string]string{"app/s.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {p: \"ENC[AES256_GCM,data:x]\"}\nsops:\n  mac: ENC[x]\n"},
			path:    "app",
			wantErr: "app/s.yaml: document 1: the manifest is SOPS-encrypted",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := writeTree(t, tc.files)
			objs, err := Build(root, tc.path, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.GetKind()+"/"+o.GetName())
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("objects (-want +got):\n%s", d)
			}
		})
	}
}

func TestSubstitute(t *testing.T) {
	vars := map[string]string{"name": "web", "replicas": "3"}
	cases := map[string]struct{ in, want string }{
		"set":            {"n: ${name}", "n: web"},
		"default unused": {"r: ${replicas:=1}", "r: 3"},
		"default used":   {"x: ${missing:=dflt}", "x: dflt"},
		"unset is empty": {"x: '${missing}'", "x: ''"},
		"escaped":        {"x: $${name}", "x: ${name}"},
		"plain dollar":   {"x: $name", "x: $name"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := Substitute(tc.in, vars); got != tc.want {
				t.Errorf("Substitute(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	root := writeTree(t, map[string]string{"a/cm.yaml": strings.ReplaceAll(cm, "%s", "${name}")})
	objs, err := Build(root, "a", Options{Substitute: true, Vars: vars})
	if err != nil {
		t.Fatal(err)
	}
	if objs[0].GetName() != "web" || objs[0].Object["data"].(map[string]any)["v"] != "def" {
		t.Errorf("substituted object = %v", objs[0].Object)
	}
}

func TestBuildErrorIsTyped(t *testing.T) {
	_, err := Read("f.yaml", []byte("a: [\n"))
	var be *Error
	if !errors.As(err, &be) || be.File != "f.yaml" {
		t.Fatalf("err = %v, want a *build.Error naming f.yaml", err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte(strings.ReplaceAll(cm, "%s", "a")))
	f.Add([]byte("---\n---\napiVersion: v1\nkind: List\nitems: [1]\n"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"X","metadata":{"name":"n"},"sops":{"mac":"m"}}`))
	f.Add([]byte("kind: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Read("f.yaml", data)
		if err != nil {
			var be *Error
			if !errors.As(err, &be) || be.File != "f.yaml" {
				t.Fatalf("error %v does not name the file", err)
			}
			return
		}
		for _, o := range objs {
			if o.GetAPIVersion() == "" || o.GetKind() == "" || o.GetName() == "" {
				t.Fatalf("accepted an object without apiVersion, kind or name: %v", o.Object)
			}
		}
	})
}

// TestExamplesBuild keeps examples/gitops buildable as the controller
// builds it, with substitution turning ${replicas} into a number.
func TestExamplesBuild(t *testing.T) {
	want := map[string]int{"clusters/local": 9, "infrastructure": 3, "apps/shop/database": 1, "apps/shop/app": 6, "apps/storefront": 2}
	key, err := os.ReadFile("../../../examples/gitops/clusters/local/sops-age.yaml")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(key), "AGE-SECRET-KEY-")
	keys, err := sops.ParseKeys(map[string][]byte{"age.agekey": []byte(strings.Fields(string(key)[i:])[0])})
	if err != nil {
		t.Fatal(err)
	}
	for p, n := range want {
		objs, err := Build("../../../examples/gitops", p, Options{Substitute: true, Vars: map[string]string{"replicas": "2"}, Decryption: keys})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(objs) != n {
			t.Errorf("%s: %d objects, want %d", p, len(objs), n)
		}
		for _, o := range objs {
			if o.GetKind() == "Deployment" {
				if r := o.Object["spec"].(map[string]any)["replicas"]; r != int64(2) && r != float64(2) {
					t.Errorf("Deployment replicas = %#v, want the number 2", r)
				}
			}
		}
	}
}

// TestKustomizeStaysInTheSource: a kustomization cannot read files of the
// manager's disk outside the artifact, even by absolute path.
func TestKustomizeStaysInTheSource(t *testing.T) {
	outside := writeTree(t, map[string]string{"secret.yaml": strings.ReplaceAll(cm, "%s", "stolen")})
	root := writeTree(t, map[string]string{
		"app/kustomization.yaml":  "resources: [" + filepath.Join(outside, "secret.yaml") + "]\n",
		"ok/kustomization.yaml":   "resources: [../base]\n",
		"base/kustomization.yaml": "resources: [cm.yaml]\n",
		"base/cm.yaml":            strings.ReplaceAll(cm, "%s", "a"),
	})
	if objs, err := Build(root, "app", Options{}); err == nil {
		t.Fatalf("a kustomization read a file outside the source: %v", objs)
	}
	if objs, err := Build(root, "ok", Options{}); err != nil || len(objs) != 1 {
		t.Fatalf("a kustomization could not read ../base inside the source: %v %v", objs, err)
	}
}

// TestSymlinksStayInTheSource: a repository's symbolic links are followed
// only while they stay inside it. A link to a file elsewhere on the
// manager's disk (another tenant's checkout, the manager's own files) fails
// the build naming the link, with or without a kustomization, and its
// content never reaches the objects or the error.
func TestSymlinksStayInTheSource(t *testing.T) {
	outside := writeTree(t, map[string]string{"secret.yaml": strings.ReplaceAll(cm, "%s", "stolen")})
	root := writeTree(t, map[string]string{
		"base/cm.yaml":              strings.ReplaceAll(cm, "%s", "a"),
		"kust/kustomization.yaml":   "resources: [leak.yaml]\n",
		"inside/kustomization.yaml": "resources: [link.yaml]\n",
	})
	link := func(target, name string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	link(filepath.Join(outside, "secret.yaml"), "plain/leak.yaml")
	link(filepath.Join(outside, "secret.yaml"), "kust/leak.yaml")
	link(outside, "dirlink")
	link("../base/cm.yaml", "inside/link.yaml")
	link("../base/cm.yaml", "plainok/link.yaml")
	link("base", "current")

	for _, tc := range []struct{ path, file string }{
		{"plain", "plain/leak.yaml"},
		{"dirlink", "dirlink"},
		{"kust", "leak.yaml"},
	} {
		objs, err := Build(root, tc.path, Options{})
		if err == nil {
			t.Errorf("%s: a link out of the source was read: %v", tc.path, objs)
			continue
		}
		if strings.Contains(err.Error(), "stolen") || !strings.Contains(err.Error(), tc.file) {
			t.Errorf("%s: error %q should name %s and not show its content", tc.path, err, tc.file)
		}
	}
	for _, p := range []string{"inside", "plainok", "current"} {
		objs, err := Build(root, p, Options{})
		if err != nil || len(objs) != 1 || objs[0].GetName() != "a" {
			t.Errorf("%s: a link inside the source was not followed: %v %v", p, objs, err)
		}
	}
}

// TestKustomizeReadsWhatItReaches: a kustomize build loads the files its
// kustomization reaches, not the whole repository (1000 Syncs of one
// repository each copied all of it).
func TestKustomizeReadsWhatItReaches(t *testing.T) {
	files := map[string]string{"base/cm.yaml": strings.ReplaceAll(cm, "%s", "base")}
	files["base/kustomization.yaml"] = "resources: [cm.yaml]\n"
	for i := range 50 {
		files[fmt.Sprintf("apps/a%d/kustomization.yaml", i)] = "resources: [cm.yaml, ../../base]\n"
		files[fmt.Sprintf("apps/a%d/cm.yaml", i)] = strings.ReplaceAll(cm, "%s", fmt.Sprintf("a%d", i))
	}
	root := writeTree(t, files)
	src, err := newSourceFS(root)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kustomizeIn(src, "apps/a7", Options{}, nil)
	if err != nil || len(objs) != 2 {
		t.Fatalf("build: %v %v", objs, err)
	}
	var loaded []string
	for p := range src.done {
		if src.FileSystem.Exists(p) && !src.FileSystem.IsDir(p) {
			loaded = append(loaded, p)
		}
	}
	sort.Strings(loaded)
	want := []string{"/apps/a7/cm.yaml", "/apps/a7/kustomization.yaml", "/base/cm.yaml", "/base/kustomization.yaml"}
	if diff := cmp.Diff(want, loaded); diff != "" {
		t.Errorf("files loaded (-want +got):\n%s", diff)
	}
}
