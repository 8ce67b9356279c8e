package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/internal/gitops/sops"
)

// Options change a build.
type Options struct {
	// Vars are substituted for ${name} and ${name:=default} when Substitute
	// is set.
	Vars map[string]string
	// Substitute turns substitution on.
	Substitute bool
	// Decryption holds the keys that decrypt SOPS-encrypted files (age
	// and PGP); nil means the Sync has no decryption configured, and an
	// encrypted file the build reads is an error (ErrEncrypted).
	Decryption *sops.Keys
	// RemoteBases lets a kustomization use remote bases (a Git URL in
	// resources, bases or components), each fetched within
	// RemoteBaseTimeout into memory, its temporary clone removed. Off, a
	// build naming one fails with ErrRemoteBase naming the file and the
	// base. Remote files (http URLs) are never fetched.
	RemoteBases bool
	// RemoteBaseTimeout bounds the fetch of one remote base
	// (DefaultRemoteBaseTimeout when zero).
	RemoteBaseTimeout time.Duration
}

// Error is a build error that names the file it comes from.
type Error struct {
	File string
	Err  error
}

func (e *Error) Error() string {
	if e.File == "" {
		return e.Err.Error()
	}
	return e.File + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrEncrypted is returned for a SOPS-encrypted manifest without a way to
// decrypt it: ciphertext is never applied.
var ErrEncrypted = errors.New("the manifest is SOPS-encrypted and the Sync has no decryption configured")

var kustomizationFiles = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// Build builds path (relative to root, the artifact folder).
func Build(root, path string, o Options) ([]*unstructured.Unstructured, error) {
	dir := filepath.Join(root, filepath.Clean("/"+path))
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, &Error{File: path, Err: fmt.Errorf("path not found in the source")}
	}
	if !fi.IsDir() {
		return nil, &Error{File: path, Err: fmt.Errorf("path is not a folder")}
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("cannot read the source: %w", err)
	}
	realDir, err := within(realRoot, dir)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	var dec *sops.Decryptor
	if o.Decryption != nil {
		dec = sops.NewDecryptor(o.Decryption)
		defer func() { _ = dec.Close() }()
	}
	var objs []*unstructured.Unstructured
	// origin is the file each object comes from, for error messages.
	origin := map[*unstructured.Unstructured]string{}
	if k := kustomization(realDir); k != "" {
		objs, err = kustomize(root, dir, o, dec)
		rel, _ := filepath.Rel(root, dir)
		for _, obj := range objs {
			origin[obj] = filepath.ToSlash(filepath.Join(rel, k))
		}
	} else {
		objs, err = readDir(realRoot, realDir, dec, origin)
	}
	if err != nil {
		return nil, err
	}
	if o.Substitute {
		if objs, err = substituteAll(objs, o.Vars, origin); err != nil {
			return nil, err
		}
	}
	if err := checkDuplicates(objs, origin); err != nil {
		return nil, err
	}
	return objs, nil
}

func kustomization(dir string) string {
	for _, n := range kustomizationFiles {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return n
		}
	}
	return ""
}

func kustomize(root, dir string, o Options, dec *sops.Decryptor) ([]*unstructured.Unstructured, error) {
	rel, _ := filepath.Rel(root, dir)
	// kustomize reads an in-memory copy of the source: a kustomization can
	// reach other folders of the repository (../base) but no file of the
	// manager's disk, and the files it reads are decrypted in memory.
	src, err := newSourceFS(root)
	if err != nil {
		return nil, err
	}
	return kustomizeIn(src, rel, o, dec)
}

// kustomizeIn builds the kustomization at rel, a folder of src.
func kustomizeIn(src *sourceFS, rel string, o Options, dec *sops.Decryptor) ([]*unstructured.Unstructured, error) {
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsNone
	k := krusty.MakeKustomizer(opts)
	mem := &decryptingFS{FileSystem: src, dec: dec}
	// kustomize never fetches anything itself: remote bases are refused
	// or fetched here, into the in-memory copy.
	if err := resolveRemoteBases(mem, filepath.Join("/", rel), o); err != nil {
		return nil, err
	}
	m, err := k.Run(mem, filepath.Join("/", rel))
	if err != nil {
		if derr := mem.firstErr(); derr != nil {
			return nil, derr
		}
		return nil, &Error{File: filepath.ToSlash(filepath.Join(rel, "kustomization.yaml")), Err: fmt.Errorf("kustomize build failed: %w", err)}
	}
	data, err := m.AsYaml()
	if err != nil {
		return nil, &Error{File: rel, Err: fmt.Errorf("kustomize output: %w", err)}
	}
	return Read(filepath.ToSlash(filepath.Join(rel, "kustomization.yaml")), data)
}

// readDir reads the manifests under dir; root and dir are real paths (their
// symbolic links resolved), and a file's link must stay inside root.
func readDir(root, dir string, dec *sops.Decryptor, origin map[*unstructured.Unstructured]string) ([]*unstructured.Unstructured, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && p != dir {
				return filepath.SkipDir
			}
			return nil
		}
		ext := strings.ToLower(filepath.Ext(p))
		if ext == ".yaml" || ext == ".yml" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot list manifests: %w", err)
	}
	sort.Strings(files)
	var out []*unstructured.Unstructured
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		real, err := within(root, f)
		if err != nil {
			return nil, &Error{File: rel, Err: err}
		}
		data, err := os.ReadFile(real)
		if err != nil {
			return nil, &Error{File: rel, Err: err}
		}
		// Without decryption, Read refuses an encrypted manifest naming
		// its document.
		if dec != nil {
			if data, err = decrypt(dec, filepath.ToSlash(rel), data); err != nil {
				return nil, err
			}
		}
		objs, err := Read(filepath.ToSlash(rel), data)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			origin[o] = filepath.ToSlash(rel)
		}
		out = append(out, objs...)
	}
	return out, nil
}

// Read parses a multi-document YAML (or JSON) manifest. Empty documents are
// skipped; a document that is not a Kubernetes object is an error naming
// the file and the document's position.
func Read(file string, data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for i := 1; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, &Error{File: file, Err: fmt.Errorf("document %d: invalid YAML: %w", i, err)}
		}
		if len(m) == 0 {
			continue
		}
		if items, ok := m["items"].([]any); ok && strings.HasSuffix(fmt.Sprint(m["kind"]), "List") {
			for j, it := range items {
				im, ok := it.(map[string]any)
				if !ok {
					return nil, &Error{File: file, Err: fmt.Errorf("document %d: item %d is not an object", i, j+1)}
				}
				u, err := object(im)
				if err != nil {
					return nil, &Error{File: file, Err: fmt.Errorf("document %d item %d: %w", i, j+1, err)}
				}
				out = append(out, u)
			}
			continue
		}
		u, err := object(m)
		if err != nil {
			return nil, &Error{File: file, Err: fmt.Errorf("document %d: %w", i, err)}
		}
		out = append(out, u)
	}
}

func object(m map[string]any) (*unstructured.Unstructured, error) {
	// Any SOPS metadata left means ciphertext: never apply it, MAC or
	// not, whatever shape it was given.
	if _, ok := m["sops"]; ok {
		return nil, ErrEncrypted
	}
	u := &unstructured.Unstructured{Object: m}
	av, _ := m["apiVersion"].(string)
	k, _ := m["kind"].(string)
	if av == "" || k == "" {
		return nil, errors.New("apiVersion and kind are required")
	}
	md, ok := m["metadata"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: metadata must be an object with a name", k)
	}
	if name, _ := md["name"].(string); name == "" {
		if _, hasGen := md["generateName"]; hasGen {
			return nil, fmt.Errorf("%s: generateName is not supported, set metadata.name", k)
		}
		return nil, fmt.Errorf("%s: metadata.name is required", k)
	}
	if ns, ok := md["namespace"]; ok {
		if _, isString := ns.(string); !isString {
			return nil, fmt.Errorf("%s: metadata.namespace must be a string", k)
		}
	}
	for _, f := range []string{"labels", "annotations"} {
		if v, ok := md[f]; ok && v != nil {
			if _, isMap := v.(map[string]any); !isMap {
				return nil, fmt.Errorf("%s: metadata.%s must be a map", k, f)
			}
		}
	}
	return u, nil
}

// checkDuplicates refuses two objects with the same group, kind,
// namespace and name, naming the files both come from.
func checkDuplicates(objs []*unstructured.Unstructured, origin map[*unstructured.Unstructured]string) error {
	seen := map[string]string{}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		id := gvk.Group + "/" + gvk.Kind + "/" + o.GetNamespace() + "/" + o.GetName()
		file := origin[o]
		if first, dup := seen[id]; dup {
			name := o.GetName()
			if ns := o.GetNamespace(); ns != "" {
				name = ns + "/" + name
			}
			where := "in " + first + " and " + file
			if first == file {
				where = "in " + file
			}
			return &Error{Err: fmt.Errorf("%s %q appears twice: %s", gvk.Kind, name, where)}
		}
		seen[id] = file
	}
	return nil
}

var varRE = regexp.MustCompile(`\$?\$\{([_a-zA-Z][_a-zA-Z0-9]*)(:=([^}]*))?\}`)

// Substitute replaces ${name} with vars[name] and ${name:=default} with the
// default when name is unset; $${name} is left as ${name}. An unset name
// without a default becomes empty, as in Flux.
func Substitute(s string, vars map[string]string) string {
	return varRE.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, "$$") {
			return m[1:]
		}
		sub := varRE.FindStringSubmatch(m)
		if v, ok := vars[sub[1]]; ok {
			return v
		}
		return sub[3]
	})
}

func substituteAll(objs []*unstructured.Unstructured, vars map[string]string, origin map[*unstructured.Unstructured]string) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if o.GetAnnotations()["strata.dev/substitute"] == "disabled" {
			out = append(out, o)
			continue
		}
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("cannot encode %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		objs2, err := Read(o.GetKind()+"/"+o.GetName(), []byte(Substitute(string(data), vars)))
		if err != nil {
			return nil, fmt.Errorf("substitution broke the manifest: %w", err)
		}
		for _, o2 := range objs2 {
			origin[o2] = origin[o]
		}
		out = append(out, objs2...)
	}
	return out, nil
}
