package source

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// ErrFileURLNotAllowed is returned for a file:// URL (or a bare path, which
// Git also reads from the local disk) outside the roots the manager allows.
var ErrFileURLNotAllowed = errors.New("file URL not allowed")

// FileRoots are the folders of the manager's disk that file:// URLs may
// read. The zero value allows none: a GitRepository could otherwise read
// any repository the manager can, into any namespace.
type FileRoots struct {
	roots []string
}

// NewFileRoots returns the policy allowing file URLs under roots. Each root
// is made absolute and cleaned; when it exists its symlinks are resolved
// too, and both spellings are accepted.
func NewFileRoots(roots []string) (FileRoots, error) {
	var out []string
	for _, r := range roots {
		if strings.TrimSpace(r) == "" {
			continue
		}
		abs, err := filepath.Abs(r)
		if err != nil {
			return FileRoots{}, fmt.Errorf("cannot resolve file URL root %s: %w", r, err)
		}
		out = append(out, abs)
		if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
			out = append(out, real)
		}
	}
	return FileRoots{roots: out}, nil
}

// Roots returns the cleaned roots (with their resolved spellings).
func (f FileRoots) Roots() []string { return append([]string(nil), f.roots...) }

// Check returns nil for a URL that does not read the local disk, or for a
// local path inside a root after cleaning (so .. cannot escape) and after
// resolving symlinks (so a link inside a root cannot point out of it). A
// path outside every root is refused before anything on the disk is
// looked at, so the answer does not tell whether it exists.
func (f FileRoots) Check(url string) error {
	ep, err := transport.NewEndpoint(url)
	if err != nil || ep.Protocol != "file" {
		return nil
	}
	p, err := filepath.Abs(ep.Path)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrFileURLNotAllowed, url, err)
	}
	if len(f.roots) == 0 {
		return fmt.Errorf("%w: %s: the manager reads no local repositories (see --allow-file-urls)", ErrFileURLNotAllowed, url)
	}
	if !f.within(p) {
		return fmt.Errorf("%w: %s is outside the folders the manager allows (--allow-file-urls)", ErrFileURLNotAllowed, url)
	}
	if real, err := filepath.EvalSymlinks(p); err == nil && !f.within(real) {
		return fmt.Errorf("%w: %s leads through a symbolic link out of the folders the manager allows (--allow-file-urls)", ErrFileURLNotAllowed, url)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s: cannot resolve the path: %w", ErrFileURLNotAllowed, url, err)
	}
	return nil
}

func (f FileRoots) within(p string) bool {
	for _, r := range f.roots {
		if p == r || r == string(filepath.Separator) || strings.HasPrefix(p, r+string(filepath.Separator)) {
			return true
		}
	}
	return false
}
