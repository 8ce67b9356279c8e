package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/gitops/gittest"
)

// TestFileRoots: a file URL reads only repositories under the roots the
// manager allows; .., %2e%2e, bare paths and symbolic links do not get out.
func TestFileRoots(t *testing.T) {
	base := t.TempDir()
	allowed := filepath.Join(base, "allowed")
	secret := filepath.Join(base, "secret")
	for _, d := range []string{allowed, secret} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ok := gittest.NewRepo(t, allowed, "app")
	ok.Commit("one", map[string]string{"a.yaml": "v: 1\n"})
	victim := gittest.NewRepo(t, secret, "private")
	victim.Commit("one", map[string]string{"key.yaml": "k: secret\n"})
	if err := os.Chmod(victim.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim.Dir, filepath.Join(allowed, "link")); err != nil {
		t.Fatal(err)
	}
	linkedRoot := filepath.Join(base, "linked-root")
	if err := os.Symlink(allowed, linkedRoot); err != nil {
		t.Fatal(err)
	}

	roots, err := NewFileRoots([]string{allowed + "/"})
	if err != nil {
		t.Fatal(err)
	}
	viaLinkedRoot, err := NewFileRoots([]string{linkedRoot})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		roots   FileRoots
		url     string
		allowed bool
	}{
		"inside the root":                   {roots, ok.URL(), true},
		"the root itself":                   {roots, "file://" + allowed, true},
		"a missing path inside":             {roots, "file://" + allowed + "/nope", true},
		"http is not a file URL":            {roots, "https://example.com/x.git", true},
		"ssh is not a file URL":             {roots, "git@example.com:x.git", true},
		"no roots: off":                     {FileRoots{}, ok.URL(), false},
		"a mode-700 repository outside":     {roots, victim.URL(), false},
		"dot-dot escape":                    {roots, "file://" + allowed + "/../secret/private", false},
		"encoded dot-dot escape":            {roots, "file://" + allowed + "/%2e%2e/secret/private", false},
		"a bare path outside":               {roots, victim.Dir, false},
		"a host part does not help":         {roots, "file://localhost" + victim.Dir, false},
		"a sibling with the root as prefix": {roots, "file://" + allowed + "-other/x", false},
		"a symlink inside pointing out":     {roots, "file://" + allowed + "/link", false},
		"a root given through a symlink":    {viaLinkedRoot, ok.URL(), true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.roots.Check(tc.url)
			if tc.allowed && err != nil {
				t.Fatalf("Check(%s) = %v, want allowed", tc.url, err)
			}
			if !tc.allowed {
				if !errors.Is(err, ErrFileURLNotAllowed) {
					t.Fatalf("Check(%s) = %v, want ErrFileURLNotAllowed", tc.url, err)
				}
				if !strings.Contains(err.Error(), tc.url) {
					t.Errorf("error %q does not name the URL", err)
				}
			}
		})
	}
	// The allowed repository is still fetched.
	if _, err := Resolve(context.Background(), ok.URL(), Ref{}, Auth{}); err != nil {
		t.Fatalf("resolve inside the root: %v", err)
	}
}
