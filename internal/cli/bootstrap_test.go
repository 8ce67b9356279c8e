package cli

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/gittest"
)

// TestBootstrapGit bootstraps into a repository served over HTTPS-style
// basic auth by git's http-backend: the manifests are committed, the
// install and the Sync are applied, the Sync (run by this package's
// controllers, which watch namespace default) applies its own path, and a
// second run changes nothing.
func TestBootstrapGit(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	bare := filepath.Join(root, "fleet.git")
	for _, args := range [][]string{{"init", "-q", "--bare", "-b", "main", bare}, {"-C", bare, "config", "http.receivepack", "true"}} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	url := gittest.ServeHTTP(t, root, "fleet", "s3cret") + "/fleet.git"
	args := []string{"bootstrap", "git", "--url", url, "--branch", "main", "--path", "clusters/test",
		"--username", "fleet", "--password", "s3cret", "-n", "default", "--version", "v0.0.0-test", "--interval", "1h"}

	code, out, errOut := strata(t, args...)
	if code != 0 || !strings.Contains(out, "committed and pushed clusters/test to main") {
		t.Fatalf("first bootstrap: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "s3cret") {
		t.Errorf("bootstrap printed the password:\n%s%s", out, errOut)
	}
	git := func(args ...string) string {
		b, err := exec.Command("git", append([]string{"-C", bare}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, b)
		}
		return strings.TrimSpace(string(b))
	}
	head := git("rev-parse", "main")
	files := git("ls-tree", "-r", "--name-only", "main")
	if files != "clusters/test/strata-system/install.yaml\nclusters/test/strata-system/sync.yaml" {
		t.Errorf("committed files:\n%s", files)
	}
	if show := git("show", "main:clusters/test/strata-system/sync.yaml"); !strings.Contains(show, "path: clusters/test") || strings.Contains(show, "s3cret") {
		t.Errorf("sync.yaml:\n%s", show)
	}

	// Strata applies its own Sync: Ready at the pushed commit.
	s := &gitopsv1.Sync{}
	t.Cleanup(func() {
		// Suspend rather than delete: deleting a pruning Sync would prune
		// the CRDs this package's other tests use.
		_ = env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: bootstrapName}, s)
		s.Spec.Suspend = true
		_ = env.Client.Update(ctx, s)
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: bootstrapName}, s)
		if err == nil && s.Status.LastAppliedRevision == "main@sha1:"+head {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Sync default/strata did not apply main@sha1:%s: %v %+v", head, err, s.Status.Conditions)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(s.Status.Inventory) < 20 {
		t.Errorf("the Sync's inventory has %d objects; want the whole install", len(s.Status.Inventory))
	}

	// A second run: nothing to commit, applies cleanly.
	code, out, errOut = strata(t, args...)
	if code != 0 || !strings.Contains(out, "clusters/test on main is up to date ("+head+")") {
		t.Errorf("second bootstrap: exit %d\n%s%s", code, out, errOut)
	}
	if got := git("rev-parse", "main"); got != head {
		t.Errorf("second bootstrap moved main from %s to %s", head, got)
	}
}
