package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/internal/gitops/source"
)

// ErrRemoteBase is returned for a kustomization naming a remote base (a Git
// URL in resources, bases or components) when remote bases are off, and for
// remote files (http(s) URLs) anywhere in a kustomization: a build reads
// only its source artifact.
var ErrRemoteBase = errors.New("remote bases are not allowed")

// DefaultRemoteBaseTimeout bounds the fetch of one remote base.
const DefaultRemoteBaseTimeout = 60 * time.Second

// maxRemoteBases bounds the remote bases one build may fetch (a remote
// base may name more).
const maxRemoteBases = 16

// remoteRoot is where fetched remote bases are put in the in-memory copy.
const remoteRoot = "/.strata-remote-bases"

// baseKeys hold kustomization roots (local folders or Git URLs); a remote
// one is fetched when remote bases are on.
var baseKeys = map[string]bool{"resources": true, "bases": true, "components": true}

// pathKeys hold paths kustomize reads (at any depth of a kustomization or
// of a generator/transformer configuration): a URL there is never fetched.
var pathKeys = map[string]bool{
	"resources": true, "bases": true, "components": true, "crds": true, "configurations": true,
	"generators": true, "transformers": true, "validators": true, "patchesStrategicMerge": true,
	"path": true, "paths": true, "files": true, "envs": true, "env": true, "repo": true,
	"valuesFile": true, "additionalValuesFiles": true, "chartHome": true, "configHome": true,
}

// pluginKeys hold local generator/transformer configurations (files or
// folders) whose own paths are checked too.
var pluginKeys = map[string]bool{"generators": true, "transformers": true, "validators": true}

var userAtRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]*@`)

// isRemote reports whether kustomize would fetch s over the network or
// clone it: a superset of kustomize's own rules (any URL scheme it knows,
// user@host:path, github.com/...), so nothing it fetches gets through.
func isRemote(s string) bool {
	s = strings.TrimSpace(s)
	l := strings.ToLower(s)
	l = strings.TrimPrefix(l, "git::")
	for _, p := range []string{"https://", "http://", "ssh://", "file://", "git://"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return strings.HasPrefix(l, "github.com/") || strings.HasPrefix(l, "github.com:") || userAtRE.MatchString(strings.TrimPrefix(s, "git::"))
}

// remoteResolver walks the kustomizations a build reaches in the in-memory
// copy of the source; with remote bases on it fetches each one into the
// copy (bounded by a timeout, its temporary clone removed) and points the
// kustomization at it, so kustomize itself never runs git or HTTP.
type remoteResolver struct {
	mem     filesys.FileSystem
	allow   bool
	timeout time.Duration
	fetched map[string]string // URL -> folder in mem
	seen    map[string]bool
}

func resolveRemoteBases(mem filesys.FileSystem, dir string, o Options) error {
	r := &remoteResolver{mem: mem, allow: o.RemoteBases, timeout: o.RemoteBaseTimeout, fetched: map[string]string{}, seen: map[string]bool{}}
	if r.timeout <= 0 {
		r.timeout = DefaultRemoteBaseTimeout
	}
	return r.visitDir(dir)
}

func (r *remoteResolver) visitDir(dir string) error {
	dir = path.Clean(dir)
	if r.seen[dir] {
		return nil
	}
	r.seen[dir] = true
	var kfile string
	for _, n := range kustomizationFiles {
		if r.mem.Exists(path.Join(dir, n)) && !r.mem.IsDir(path.Join(dir, n)) {
			kfile = path.Join(dir, n)
			break
		}
	}
	if kfile == "" {
		return nil
	}
	data, err := r.mem.ReadFile(kfile)
	if err != nil {
		return &Error{File: display(kfile), Err: err}
	}
	var k map[string]any
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil // kustomize reports the syntax error itself
	}
	replace := map[string]string{} // remote base -> fetched folder, relative
	keys := make([]string, 0, len(k))
	for key := range k {
		keys = append(keys, key)
	}
	sort.Strings(keys) // the first error is the same every time
	for _, key := range keys {
		list, _ := k[key].([]any)
		for _, it := range list {
			entry, ok := it.(string)
			if !ok {
				continue
			}
			switch {
			case baseKeys[key] && isRemote(entry):
				local, err := r.fetch(kfile, entry)
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(dir, local)
				replace[entry] = filepath.ToSlash(rel)
				if err := r.visitDir(local); err != nil {
					return err
				}
			case (baseKeys[key] || pluginKeys[key]) && !strings.Contains(entry, "\n"):
				p := path.Join(dir, entry)
				if r.mem.IsDir(p) {
					if err := r.visitDir(p); err != nil {
						return err
					}
				} else if pluginKeys[key] && r.mem.Exists(p) {
					if err := r.checkPluginFile(p); err != nil {
						return err
					}
				}
			}
		}
	}
	for _, key := range keys {
		if baseKeys[key] {
			continue // fetched or refused above
		}
		if err := checkPaths(display(kfile), k[key], key); err != nil {
			return err
		}
	}
	if len(replace) == 0 {
		return nil
	}
	// Point the kustomization at the fetched copies, longest URL first so
	// one that prefixes another is not replaced inside it.
	entries := make([]string, 0, len(replace))
	for e := range replace {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return len(entries[i]) > len(entries[j]) })
	rewritten := string(data)
	for _, e := range entries {
		if !strings.Contains(rewritten, e) {
			return &Error{File: display(kfile), Err: fmt.Errorf("remote base %q: cannot point the kustomization at the fetched copy", e)}
		}
		rewritten = strings.ReplaceAll(rewritten, e, replace[e])
	}
	if err := r.mem.WriteFile(kfile, []byte(rewritten)); err != nil {
		return &Error{File: display(kfile), Err: err}
	}
	return nil
}

// checkPluginFile refuses remote paths in a local generator or
// transformer configuration.
func (r *remoteResolver) checkPluginFile(p string) error {
	data, err := r.mem.ReadFile(p)
	if err != nil {
		return nil
	}
	for _, doc := range strings.Split(string(data), "\n---") {
		var m any
		if yaml.Unmarshal([]byte(doc), &m) == nil {
			if err := checkPaths(display(p), m, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPaths refuses a URL under a path key at any depth of v; base keys at
// the top level were handled (fetched or refused) by the caller, and inline
// generator and transformer configurations are parsed and checked too.
func checkPaths(file string, v any, key string) error {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := checkPaths(file, t[k], k); err != nil {
				return err
			}
		}
	case []any:
		for _, c := range t {
			if err := checkPaths(file, c, key); err != nil {
				return err
			}
		}
	case string:
		if strings.Contains(t, "\n") && pluginKeys[key] {
			var m any
			if yaml.Unmarshal([]byte(t), &m) == nil {
				return checkPaths(file, m, "")
			}
			return nil
		}
		if !pathKeys[key] {
			return nil
		}
		p := t
		if key == "files" {
			if _, after, ok := strings.Cut(t, "="); ok {
				p = after
			}
		}
		if isRemote(p) && !strings.HasPrefix(p, remoteRoot) {
			if baseKeys[key] {
				return &Error{File: file, Err: fmt.Errorf("remote base %q: %w (the manager runs with --no-remote-bases)", t, ErrRemoteBase)}
			}
			return &Error{File: file, Err: fmt.Errorf("remote file %q in %s: %w: a build reads only its source", t, key, ErrRemoteBase)}
		}
	}
	return nil
}

// fetch clones a remote base into a temporary folder (removed before it
// returns), copies its files into the in-memory source and returns the
// folder of the kustomization root it names.
func (r *remoteResolver) fetch(kfile, raw string) (string, error) {
	fail := func(err error) (string, error) {
		return "", &Error{File: display(kfile), Err: fmt.Errorf("remote base %q: %w", raw, err)}
	}
	if !r.allow {
		return fail(fmt.Errorf("%w (the manager runs with --no-remote-bases)", ErrRemoteBase))
	}
	repo, sub, ref, err := splitRemote(raw)
	if err != nil {
		return fail(err)
	}
	if strings.HasPrefix(strings.ToLower(repo), "file://") || !strings.Contains(repo, "://") && !userAtRE.MatchString(repo) {
		return fail(fmt.Errorf("%w: a remote base must be fetched over the network, not from the manager's disk", ErrRemoteBase))
	}
	key := repo + "?ref=" + ref
	root, ok := r.fetched[key]
	if !ok {
		if len(r.fetched) >= maxRemoteBases {
			return fail(fmt.Errorf("more than %d remote bases in one build", maxRemoteBases))
		}
		root = fmt.Sprintf("%s/%d", remoteRoot, len(r.fetched))
		if err := r.clone(repo, ref, root); err != nil {
			return fail(err)
		}
		r.fetched[key] = root
	}
	dir := path.Join(root, path.Clean("/"+sub))
	if !r.mem.IsDir(dir) {
		return fail(fmt.Errorf("folder %q not found in %s", sub, repo))
	}
	return dir, nil
}

func (r *remoteResolver) clone(repo, ref, dst string) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	tmp, err := os.MkdirTemp("", "strata-remote-base-")
	if err != nil {
		return fmt.Errorf("cannot create a folder for the clone: %w", err)
	}
	defer os.RemoveAll(tmp)
	refs := []source.Ref{{Branch: ref}, {Tag: ref}}
	if ref == "" {
		refs = []source.Ref{{}}
	} else if commitRE.MatchString(ref) {
		refs = []source.Ref{{Commit: ref}}
	}
	var resolved source.Resolved
	for _, rf := range refs {
		if resolved, err = source.Resolve(ctx, repo, rf, source.Auth{}); err == nil || !errors.Is(err, source.ErrRefNotFound) {
			break
		}
	}
	if err != nil {
		return withTimeout(ctx, err)
	}
	if _, err := source.Checkout(ctx, repo, resolved, source.Auth{}, tmp); err != nil {
		return withTimeout(ctx, err)
	}
	return filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil // folders are made on write; symbolic links are not followed
		}
		rel, _ := filepath.Rel(tmp, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return r.mem.WriteFile(path.Join(dst, filepath.ToSlash(rel)), data)
	})
}

var commitRE = regexp.MustCompile(`^[0-9a-f]{7,40}$`)

func withTimeout(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("timed out: %w", err)
	}
	return err
}

// splitRemote splits a kustomize remote base into the repository URL, the
// folder in it and the ref (?ref= or ?version=). The folder follows `//`,
// `.git/` or `_git/<repo>/`, or the first two path segments on github.com.
func splitRemote(raw string) (repo, sub, ref string, err error) {
	s, query, _ := strings.Cut(strings.TrimSpace(raw), "?")
	if q, err := url.ParseQuery(query); err == nil {
		ref = q.Get("ref")
		if ref == "" {
			ref = q.Get("version")
		}
	}
	if strings.HasPrefix(strings.ToLower(s), "git::") {
		s = s[len("git::"):]
	}
	switch l := strings.ToLower(s); {
	case strings.HasPrefix(l, "github.com/"):
		s = "https://" + s
	case strings.HasPrefix(l, "github.com:"):
		s = "git@" + s
	}
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + 3
	}
	if i := strings.Index(s[start:], "//"); i >= 0 {
		return s[:start+i], s[start+i+2:], ref, nil
	}
	if i := strings.Index(s, ".git/"); i >= 0 {
		return s[:i+4], s[i+5:], ref, nil
	}
	if strings.HasSuffix(s, ".git") {
		return s, "", ref, nil
	}
	if i := strings.Index(s, "_git/"); i >= 0 {
		rest := s[i+5:]
		if j := strings.Index(rest, "/"); j >= 0 {
			return s[:i+5+j], rest[j+1:], ref, nil
		}
		return s, "", ref, nil
	}
	for _, gh := range []string{"https://github.com/", "http://github.com/", "ssh://git@github.com/", "git@github.com:"} {
		if len(s) > len(gh) && strings.EqualFold(s[:len(gh)], gh) {
			parts := strings.SplitN(s[len(gh):], "/", 3)
			if len(parts) < 2 {
				break
			}
			repo = s[:len(gh)] + parts[0] + "/" + parts[1]
			if len(parts) == 3 {
				sub = parts[2]
			}
			return repo, sub, ref, nil
		}
	}
	return "", "", "", errors.New("cannot tell the repository from the folder: separate them with // (https://host/repo//folder?ref=v1)")
}

// display turns an in-memory path back into the source-relative one errors
// show.
func display(p string) string {
	return strings.TrimPrefix(p, "/")
}
