package controller

import (
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/gittest"
)

// TestSyncRemoteBaseRefused: a tenant's kustomization names a remote base
// (a Git server the manager can reach). The manager runs with remote bases
// off (the default), so the Sync fails with BuildFailed naming the file and
// the base, applies nothing, and no retry leaves a temporary clone.
func TestSyncRemoteBaseRefused(t *testing.T) {
	ns := newNamespace(t)
	remoteRoot := t.TempDir()
	shared := gittest.NewRepo(t, remoteRoot, "shared")
	shared.Commit("base", map[string]string{
		"base/kustomization.yaml": "resources: [cm.yaml]\n",
		"base/cm.yaml":            configMap("remote"),
	})
	base := strings.Replace(gittest.ServeHTTP(t, remoteRoot, "alice", "s3cret"), "http://", "http://alice:s3cret@", 1)
	remote := base + "/shared//base?ref=main"
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	repo.Commit("app", map[string]string{
		"app/kustomization.yaml": "resources: [cm.yaml, '" + remote + "']\n",
		"app/cm.yaml":            configMap("local"),
	})
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "app", "src", "app", nil)
	s := waitSync(t, ns, "app", metav1.ConditionFalse, gitopsv1.ReasonBuildFailed)
	if _, _, msg := readyOf(s); !strings.Contains(msg, "app/kustomization.yaml") || !strings.Contains(msg, remote) || !strings.Contains(msg, "remote bases are not allowed") {
		t.Errorf("message %q should name app/kustomization.yaml, the base %s and say remote bases are not allowed", msg, remote)
	}
	// Retries fetch nothing and leave nothing behind.
	for i := 0; i < 3; i++ {
		requestReconcile(t, getSync(t, ns, "app"))
		want := getSync(t, ns, "app").Annotations[gitopsv1.ReconcileRequestAnnotation]
		eventually(t, 30*time.Second, "Sync handles the reconcile request", func() (bool, string) {
			got := getSync(t, ns, "app").Status.LastHandledReconcileAt
			return got == want, got
		})
	}
	for _, name := range []string{"local", "remote"} {
		if exists(t, "v1", "ConfigMap", ns, name) {
			t.Errorf("ConfigMap %s was applied from a build that uses a remote base", name)
		}
	}
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "kustomize-") || strings.HasPrefix(e.Name(), "strata-remote-base-") {
			t.Errorf("a remote-base clone was left in %s: %s", os.TempDir(), e.Name())
		}
	}
}
