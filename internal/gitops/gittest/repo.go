package gittest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Repo is a Git repository with a work tree on local disk.
type Repo struct {
	t   testing.TB
	Dir string
}

// NewRepo initialises a repository named name (a folder under root) on
// branch main.
func NewRepo(t testing.TB, root, name string) *Repo {
	t.Helper()
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &Repo{t: t, Dir: dir}
	r.Git("init", "-q", "-b", "main")
	r.Git("config", "user.name", "Strata Test")
	r.Git("config", "user.email", "test@strata.dev")
	r.Git("config", "http.receivepack", "false")
	return r
}

// URL is the repository's file:// URL.
func (r *Repo) URL() string { return "file://" + r.Dir }

// Git runs git in the repository and returns its trimmed output.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+r.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit writes files (path -> content; an empty content deletes the file),
// commits them and returns the commit's hash.
func (r *Repo) Commit(msg string, files map[string]string) string {
	r.t.Helper()
	for p, c := range files {
		full := filepath.Join(r.Dir, p)
		if c == "" {
			if err := os.RemoveAll(full); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.Git("add", "-A")
	r.Git("commit", "-q", "--allow-empty", "-m", msg)
	return r.Head()
}

// CopyDir adds every file under src to the work tree at dst (relative).
func (r *Repo) CopyDir(src, dst string) {
	r.t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		target := filepath.Join(r.Dir, dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		r.t.Fatal(err)
	}
}

// Head returns the hash of HEAD.
func (r *Repo) Head() string { return r.Git("rev-parse", "HEAD") }

// Tag creates an annotated tag at HEAD.
func (r *Repo) Tag(name string) { r.Git("tag", "-a", name, "-m", name) }

// Branch creates and switches to a new branch.
func (r *Repo) Branch(name string) { r.Git("checkout", "-q", "-b", name) }

// Switch switches to an existing branch.
func (r *Repo) Switch(name string) { r.Git("checkout", "-q", name) }

// Revision is the API form of a branch head: `branch@sha1:<hex>`.
func (r *Repo) Revision(branch string) string {
	return fmt.Sprintf("%s@sha1:%s", branch, r.Git("rev-parse", branch))
}
