package build

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// errOutside is the error of a file whose symbolic link leads out of the
// source.
var errOutside = errors.New("symbolic link leads outside the source")

// within resolves the symbolic links of p, a path under the folder whose
// real (link-free) path is realRoot, and returns p's real path if it stays
// inside. A repository is written by people the manager does not trust: a
// link to another tenant's checkout or to the manager's own files must
// never be read.
func within(realRoot, p string) (string, error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	if real != realRoot && !strings.HasPrefix(real, realRoot+string(filepath.Separator)) {
		return "", errOutside
	}
	return real, nil
}

// sourceFS is the source folder as kustomize sees it: an in-memory file
// system whose "/" is the source's root, filled from disk the first time a
// path is used. A build reads what its kustomization reaches, not the whole
// repository: copying every file of a 5000-file repository for each of its
// 1000 Syncs made their builds take 79 s of CPU (issue 15). Only files and
// folders inside the root are loaded; a symbolic link that leads out of it
// reads as missing, so kustomize names the file it cannot find. Writes
// (remote bases fetched into it) stay in memory and are never replaced by a
// load.
type sourceFS struct {
	filesys.FileSystem // the in-memory copy
	root               string
	realRoot           string // root with its symbolic links resolved

	mu sync.Mutex
	// done holds the paths already loaded: a file or folder by its path, a
	// folder's listing as "path/", its whole tree as "path/**".
	done map[string]bool
	// own holds the files written in memory, which no load replaces.
	own map[string]bool
}

func newSourceFS(root string) (*sourceFS, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("cannot load the source: %w", err)
	}
	return &sourceFS{FileSystem: filesys.MakeFsInMemory(), root: root, realRoot: realRoot,
		done: map[string]bool{}, own: map[string]bool{}}, nil
}

// clean makes p an absolute, clean path of the in-memory file system.
func clean(p string) string {
	return path.Clean("/" + filepath.ToSlash(p))
}

// load copies p from disk unless it was loaded or written before; with
// list, a folder's entries are loaded too (files with their content), and
// with deep, its whole tree.
func (f *sourceFS) load(p string, list, deep bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loadLocked(clean(p), list, deep)
}

func (f *sourceFS) loadLocked(p string, list, deep bool) {
	key := p
	if list || deep {
		key = strings.TrimSuffix(p, "/") + "/"
		if deep {
			key += "**"
		}
	}
	if f.done[key] {
		return
	}
	f.done[key] = true
	real, err := within(f.realRoot, filepath.Join(f.root, filepath.FromSlash(p)))
	if err != nil {
		return
	}
	fi, err := os.Stat(real)
	if err != nil {
		return
	}
	switch {
	case fi.Mode().IsRegular():
		if f.own[p] {
			return
		}
		data, err := os.ReadFile(real)
		if err != nil {
			return
		}
		_ = f.FileSystem.WriteFile(p, data)
	case fi.IsDir():
		_ = f.FileSystem.MkdirAll(p)
		if !list && !deep {
			return
		}
		entries, err := os.ReadDir(real)
		if err != nil {
			return
		}
		for _, e := range entries {
			f.loadLocked(path.Join(p, e.Name()), deep, deep)
		}
	}
}

// written marks p as the in-memory file system's own: no load replaces it.
func (f *sourceFS) written(p string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.own[clean(p)] = true
}

func (f *sourceFS) Create(p string) (filesys.File, error) {
	f.written(p)
	return f.FileSystem.Create(p)
}

func (f *sourceFS) WriteFile(p string, data []byte) error {
	f.written(p)
	return f.FileSystem.WriteFile(p, data)
}

func (f *sourceFS) Open(p string) (filesys.File, error) {
	f.load(p, false, false)
	return f.FileSystem.Open(p)
}

func (f *sourceFS) IsDir(p string) bool {
	f.load(p, false, false)
	return f.FileSystem.IsDir(p)
}

func (f *sourceFS) ReadDir(p string) ([]string, error) {
	f.load(p, true, false)
	return f.FileSystem.ReadDir(p)
}

func (f *sourceFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	f.load(p, false, false)
	return f.FileSystem.CleanedAbs(p)
}

func (f *sourceFS) Exists(p string) bool {
	f.load(p, false, false)
	return f.FileSystem.Exists(p)
}

func (f *sourceFS) ReadFile(p string) ([]byte, error) {
	f.load(p, false, false)
	return f.FileSystem.ReadFile(p)
}

// Glob loads the folder of each pattern's matches: kustomize globs only
// inside a folder it names.
func (f *sourceFS) Glob(pattern string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(f.root, filepath.FromSlash(clean(pattern))))
	if err != nil {
		return nil, fmt.Errorf("glob %s: %w", pattern, err)
	}
	for _, m := range matches {
		if rel, err := filepath.Rel(f.root, m); err == nil && !strings.HasPrefix(rel, "..") {
			f.load(rel, false, false)
		}
	}
	return f.FileSystem.Glob(pattern)
}

func (f *sourceFS) Walk(p string, walkFn filepath.WalkFunc) error {
	f.load(p, true, true)
	return f.FileSystem.Walk(p, walkFn)
}
