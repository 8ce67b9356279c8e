package source

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// Store is a content-addressed artifact store on local disk. Each artifact
// is a directory named by the SHA-256 digest of its files, so a revision
// shared by several repositories (or fetched twice) is kept once. For every
// repository the store remembers its last revisions (for rollback); an
// artifact no repository remembers is garbage-collected.
type Store struct {
	root string
	keep int
	mu   sync.Mutex
}

// Record is one revision a repository fetched.
type Record struct {
	Revision string `json:"revision"`
	Digest   string `json:"digest"`
}

// NewStore opens (creating) a store in root that remembers keep revisions
// per repository.
func NewStore(root string, keep int) (*Store, error) {
	if keep < 1 {
		keep = 1
	}
	for _, d := range []string{"artifacts", "repos", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("cannot create artifact store: %w", err)
		}
	}
	return &Store{root: root, keep: keep}, nil
}

// Root is the store's folder.
func (s *Store) Root() string { return s.root }

// TempDir returns a new scratch folder inside the store, on the same file
// system as the artifacts so a finished one can be renamed into place.
func (s *Store) TempDir() (string, error) {
	return os.MkdirTemp(filepath.Join(s.root, "tmp"), "checkout-")
}

// Put copies the files of src (leaving out .git and what ignore matches)
// into the store, records revision for repo, and returns the digest.
func (s *Store) Put(repo, revision, src, ignore string) (string, error) {
	files, err := listFiles(src, ignore)
	if err != nil {
		return "", err
	}
	digest, err := digestFiles(src, files)
	if err != nil {
		return "", err
	}
	// The files are copied outside the lock; placing the copy and
	// recording it happen under it, so a GC run by another repository's
	// fetch never sees the artifact in place and unrecorded.
	dst := s.dir(digest)
	tmp := ""
	defer func() {
		if tmp != "" {
			_ = os.RemoveAll(tmp)
		}
	}()
	if !exists(dst) {
		if tmp, err = s.copyIn(src, files); err != nil {
			return "", err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !exists(dst) {
		if tmp == "" {
			// It was there a moment ago and a GC took it: copy again.
			if tmp, err = s.copyIn(src, files); err != nil {
				return "", err
			}
		}
		if err := os.Rename(tmp, dst); err != nil && !isExist(err) {
			return "", fmt.Errorf("cannot store artifact: %w", err)
		}
	}
	recs := s.records(repo)
	out := []Record{{Revision: revision, Digest: digest}}
	for _, r := range recs {
		if r.Revision != revision && len(out) < s.keep {
			out = append(out, r)
		}
	}
	if err := s.writeRecords(repo, out); err != nil {
		return "", err
	}
	return digest, nil
}

// copyIn copies files of src into a new scratch folder of the store.
func (s *Store) copyIn(src string, files []string) (string, error) {
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "artifact-")
	if err != nil {
		return "", fmt.Errorf("cannot create artifact: %w", err)
	}
	for _, f := range files {
		if err := copyFile(filepath.Join(src, f), filepath.Join(tmp, f)); err != nil {
			_ = os.RemoveAll(tmp)
			return "", err
		}
	}
	return tmp, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func isExist(err error) bool {
	return errors.Is(err, fs.ErrExist) || strings.Contains(err.Error(), "directory not empty")
}

// Path returns the folder of an artifact, or an error when it is not stored.
func (s *Store) Path(digest string) (string, error) {
	d := s.dir(digest)
	if _, err := os.Stat(d); err != nil {
		return "", fmt.Errorf("artifact %s is not in the store: %w", digest, err)
	}
	return d, nil
}

// Has reports whether an artifact is stored.
func (s *Store) Has(digest string) bool {
	_, err := s.Path(digest)
	return err == nil
}

// Lookup returns the digest of a revision repo fetched recently.
func (s *Store) Lookup(repo, revision string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records(repo) {
		if r.Revision == revision && s.Has(r.Digest) {
			return r.Digest, true
		}
	}
	return "", false
}

// Forget drops what the store remembers about repo; GC then removes its
// artifacts unless another repository shares them.
func (s *Store) Forget(repo string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.recordFile(repo)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot forget %s: %w", repo, err)
	}
	return nil
}

// GC removes artifacts that no repository remembers and leftover scratch
// folders older than this process's. It returns how many artifacts it removed.
func (s *Store) GC() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := map[string]bool{}
	entries, err := os.ReadDir(filepath.Join(s.root, "repos"))
	if err != nil {
		return 0, fmt.Errorf("cannot read store: %w", err)
	}
	for _, e := range entries {
		var recs []Record
		data, err := os.ReadFile(filepath.Join(s.root, "repos", e.Name()))
		if err != nil || json.Unmarshal(data, &recs) != nil {
			continue
		}
		for _, r := range recs {
			live[strings.TrimPrefix(r.Digest, "sha256:")] = true
		}
	}
	arts, err := os.ReadDir(filepath.Join(s.root, "artifacts"))
	if err != nil {
		return 0, fmt.Errorf("cannot read store: %w", err)
	}
	n := 0
	for _, a := range arts {
		if live[a.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.root, "artifacts", a.Name())); err != nil {
			return n, fmt.Errorf("cannot remove artifact %s: %w", a.Name(), err)
		}
		n++
	}
	return n, nil
}

func (s *Store) dir(digest string) string {
	return filepath.Join(s.root, "artifacts", strings.TrimPrefix(digest, "sha256:"))
}

func (s *Store) recordFile(repo string) string {
	return filepath.Join(s.root, "repos", strings.NewReplacer("/", "_", "..", "_").Replace(repo)+".json")
}

func (s *Store) records(repo string) []Record {
	data, err := os.ReadFile(s.recordFile(repo))
	if err != nil {
		return nil
	}
	var recs []Record
	_ = json.Unmarshal(data, &recs)
	return recs
}

func (s *Store) writeRecords(repo string, recs []Record) error {
	data, err := json.Marshal(recs)
	if err != nil {
		return fmt.Errorf("cannot encode records: %w", err)
	}
	tmp := s.recordFile(repo) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("cannot write records: %w", err)
	}
	if err := os.Rename(tmp, s.recordFile(repo)); err != nil {
		return fmt.Errorf("cannot write records: %w", err)
	}
	return nil
}

// listFiles returns the regular files under root (slash-separated, sorted),
// leaving out .git and paths matched by ignore (.gitignore syntax).
func listFiles(root, ignore string) ([]string, error) {
	var patterns []gitignore.Pattern
	for _, line := range strings.Split(ignore, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		patterns = append(patterns, gitignore.ParsePattern(line, nil))
	}
	m := gitignore.NewMatcher(patterns)
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if d.IsDir() {
			if d.Name() == ".git" || m.Match(parts, true) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || m.Match(parts, false) {
			return nil
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot list files: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

func digestFiles(root string, files []string) (string, error) {
	h := sha256.New()
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(root, f))
		if err != nil {
			return "", fmt.Errorf("cannot read %s: %w", f, err)
		}
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", f, fi.Mode().Perm()&0o100, fi.Size())
		r, err := os.Open(filepath.Join(root, f))
		if err != nil {
			return "", fmt.Errorf("cannot read %s: %w", f, err)
		}
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return "", fmt.Errorf("cannot read %s: %w", f, err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("cannot create folder for %s: %w", dst, err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", src, err)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm()|0o600)
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("cannot write %s: %w", dst, err)
	}
	return out.Close()
}
