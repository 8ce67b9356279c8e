package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-dev/strata/internal/gitops/gittest"
)

func fetch(t *testing.T, url string, ref Ref, a Auth) (Resolved, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := Resolve(ctx, url, ref, a)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	dir := t.TempDir()
	hash, err := Checkout(ctx, url, r, a, dir)
	if err != nil {
		t.Fatalf("checkout: %v", err)
	}
	return r, hash, dir
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRefs(t *testing.T) {
	root := t.TempDir()
	repo := gittest.NewRepo(t, root, "app")
	c1 := repo.Commit("one", map[string]string{"a.yaml": "v: 1\n"})
	repo.Tag("v1.0.0")
	repo.Commit("two", map[string]string{"a.yaml": "v: 2\n"})
	repo.Tag("v1.1.0")
	repo.Branch("dev")
	cDev := repo.Commit("dev", map[string]string{"a.yaml": "v: dev\n"})
	repo.Tag("v2.0.0")
	repo.Switch("main")
	c3 := repo.Commit("three", map[string]string{"a.yaml": "v: 3\n"})

	cases := map[string]struct {
		ref      Ref
		wantName string
		wantHash string
		wantV    string
	}{
		"default branch is main": {ref: Ref{}, wantName: "main", wantHash: c3, wantV: "v: 3\n"},
		"branch":                 {ref: Ref{Branch: "dev"}, wantName: "dev", wantHash: cDev, wantV: "v: dev\n"},
		"tag":                    {ref: Ref{Tag: "v1.0.0"}, wantName: "v1.0.0", wantHash: c1, wantV: "v: 1\n"},
		"semver picks highest":   {ref: Ref{SemVer: ">=1.0.0 <2.0.0"}, wantName: "v1.1.0", wantV: "v: 2\n"},
		"commit":                 {ref: Ref{Commit: c1}, wantHash: c1, wantV: "v: 1\n"},
		"commit on branch":       {ref: Ref{Branch: "main", Commit: c1[:12]}, wantName: "main", wantHash: c1, wantV: "v: 1\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r, hash, dir := fetch(t, repo.URL(), tc.ref, Auth{})
			if r.Name != tc.wantName {
				t.Errorf("name = %q, want %q", r.Name, tc.wantName)
			}
			if tc.wantHash != "" && hash != tc.wantHash {
				t.Errorf("hash = %s, want %s", hash, tc.wantHash)
			}
			if got := read(t, filepath.Join(dir, "a.yaml")); got != tc.wantV {
				t.Errorf("a.yaml = %q, want %q", got, tc.wantV)
			}
		})
	}
}

func TestMissingRef(t *testing.T) {
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	repo.Commit("one", map[string]string{"a.yaml": "v: 1\n"})
	for name, ref := range map[string]Ref{
		"branch": {Branch: "nope"}, "tag": {Tag: "v9"}, "semver": {SemVer: ">=5"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Resolve(context.Background(), repo.URL(), ref, Auth{})
			if !errors.Is(err, ErrRefNotFound) {
				t.Fatalf("err = %v, want ErrRefNotFound", err)
			}
		})
	}
	_, err := Resolve(context.Background(), "file:///does/not/exist", Ref{}, Auth{})
	if err == nil {
		t.Fatal("unreachable repository resolved")
	}
}

func TestHTTPBasicAuth(t *testing.T) {
	root := t.TempDir()
	repo := gittest.NewRepo(t, root, "app")
	c := repo.Commit("one", map[string]string{"a.yaml": "v: 1\n"})
	base := gittest.ServeHTTP(t, root, "alice", "s3cret")
	_, hash, dir := fetch(t, base+"/app", Ref{Branch: "main"}, Auth{Username: "alice", Password: "s3cret"})
	if hash != c || read(t, filepath.Join(dir, "a.yaml")) != "v: 1\n" {
		t.Fatalf("fetched %s, want %s", hash, c)
	}
	_, err := Resolve(context.Background(), base+"/app", Ref{}, Auth{Username: "alice", Password: "wrong"})
	if err == nil || !strings.Contains(err.Error(), "authentication") {
		t.Fatalf("wrong password: err = %v, want an authentication error", err)
	}
}

func TestSSH(t *testing.T) {
	root := t.TempDir()
	repo := gittest.NewRepo(t, root, "app")
	c := repo.Commit("one", map[string]string{"a.yaml": "v: 1\n"})
	srv := gittest.ServeSSH(t, root)
	a := Auth{Identity: srv.ClientKey, KnownHosts: srv.KnownHosts}
	_, hash, dir := fetch(t, srv.URL("app"), Ref{Branch: "main"}, a)
	if hash != c || read(t, filepath.Join(dir, "a.yaml")) != "v: 1\n" {
		t.Fatalf("fetched %s, want %s", hash, c)
	}
	// The key protected by a passphrase, given as the controller and the
	// CLI read it from a GitRepository's Secret.
	locked := gittest.WithPassphrase(t, srv.ClientKey, "open sesame")
	data := map[string][]byte{"identity": locked, "known_hosts": srv.KnownHosts, "password": []byte("open sesame")}
	if _, hash, _ := fetch(t, srv.URL("app"), Ref{Branch: "main"}, AuthFromSecret(srv.URL("app"), data)); hash != c {
		t.Fatalf("fetched %s with the passphrase-protected key, want %s", hash, c)
	}
	data["password"] = []byte("wrong")
	if _, err := Resolve(context.Background(), srv.URL("app"), Ref{}, AuthFromSecret(srv.URL("app"), data)); err == nil || !strings.Contains(err.Error(), "identity") {
		t.Fatalf("wrong passphrase: err = %v, want an identity error", err)
	}
	other, _ := gittest.NewKey(t)
	if _, err := Resolve(context.Background(), srv.URL("app"), Ref{}, Auth{Identity: other, KnownHosts: srv.KnownHosts}); err == nil {
		t.Fatal("a key the server does not accept was let in")
	}
	wrongHost := gittest.ServeSSH(t, t.TempDir())
	if _, err := Resolve(context.Background(), srv.URL("app"), Ref{}, Auth{Identity: srv.ClientKey, KnownHosts: wrongHost.KnownHosts}); err == nil {
		t.Fatal("an unknown host key was accepted")
	}
}

func TestAuthFromSecret(t *testing.T) {
	data := map[string][]byte{
		"username": []byte("alice"), "password": []byte("pw"), "bearerToken": []byte("tok"),
		"identity": []byte("KEY"), "known_hosts": []byte("HOSTS"),
	}
	cases := map[string]struct {
		url  string
		want Auth
	}{
		"https keeps basic auth and token, no passphrase": {"https://example.invalid/r.git",
			Auth{Username: "alice", Password: "pw", BearerToken: "tok", Identity: []byte("KEY"), KnownHosts: []byte("HOSTS")}},
		"http likewise": {"http://127.0.0.1/r.git",
			Auth{Username: "alice", Password: "pw", BearerToken: "tok", Identity: []byte("KEY"), KnownHosts: []byte("HOSTS")}},
		"ssh takes password as the identity's passphrase": {"ssh://git@127.0.0.1/r.git",
			Auth{BearerToken: "tok", Identity: []byte("KEY"), KnownHosts: []byte("HOSTS"), Passphrase: "pw"}},
		"scp-like ssh likewise": {"git@example.invalid:org/r.git",
			Auth{BearerToken: "tok", Identity: []byte("KEY"), KnownHosts: []byte("HOSTS"), Passphrase: "pw"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, AuthFromSecret(tc.url, data)); d != "" {
				t.Errorf("AuthFromSecret (-want +got):\n%s", d)
			}
		})
	}
	if d := cmp.Diff(Auth{}, AuthFromSecret("https://example.invalid/r.git", nil)); d != "" {
		t.Errorf("no secret data (-want +got):\n%s", d)
	}
}

func TestStore(t *testing.T) {
	s, err := NewStore(t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	write := func(p, c string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("app/a.yaml", "a")
	write(".git/HEAD", "x")
	write("docs/readme.md", "x")
	d1, err := s.Put("ns/a", "main@sha1:1", src, "docs/\n")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Path(d1)
	if _, err := os.Stat(filepath.Join(p, ".git")); err == nil {
		t.Error(".git was stored")
	}
	if _, err := os.Stat(filepath.Join(p, "docs")); err == nil {
		t.Error("an ignored folder was stored")
	}
	if read(t, filepath.Join(p, "app/a.yaml")) != "a" {
		t.Error("file content differs")
	}
	// The same content under another repository is one artifact.
	d1b, _ := s.Put("ns/b", "main@sha1:1", src, "docs/\n")
	if d1b != d1 {
		t.Errorf("same files gave digests %s and %s", d1, d1b)
	}
	write("app/a.yaml", "b")
	d2, _ := s.Put("ns/a", "main@sha1:2", src, "docs/\n")
	write("app/a.yaml", "c")
	d3, _ := s.Put("ns/a", "main@sha1:3", src, "docs/\n")
	if got, ok := s.Lookup("ns/a", "main@sha1:2"); !ok || got != d2 {
		t.Errorf("lookup of a kept revision = %s %v", got, ok)
	}
	if n, err := s.GC(); err != nil || n != 0 {
		t.Errorf("GC removed %d (%v), want 0: d1 is still ns/b's", n, err)
	}
	if err := s.Forget("ns/b"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.GC(); n != 1 || s.Has(d1) || !s.Has(d2) || !s.Has(d3) {
		t.Errorf("GC removed %d; has d1=%v d2=%v d3=%v, want only d1 gone", n, s.Has(d1), s.Has(d2), s.Has(d3))
	}
}

// TestStorePutSurvivesConcurrentGC: one repository's fetch garbage-collects
// while another stores a new artifact; the stored artifact is never taken
// before its repository records it (a Sync would then find its
// GitRepository's artifact missing until the next fetch).
func TestStorePutSurvivesConcurrentGC(t *testing.T) {
	s, err := NewStore(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				if _, err := s.GC(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for i := range 300 {
		src := t.TempDir()
		if err := os.WriteFile(filepath.Join(src, "cm.yaml"), []byte(strings.Repeat("x", i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := s.Put("ns/a", "main@sha1:"+strings.Repeat("1", i+1), src, "")
		if err != nil {
			t.Fatal(err)
		}
		if !s.Has(d) {
			t.Fatalf("put %d: artifact %s was garbage-collected before it was recorded", i, d)
		}
	}
}
