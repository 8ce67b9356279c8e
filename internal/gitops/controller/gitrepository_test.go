package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/gittest"
)

func createRepo(t *testing.T, ns, name, url string, ref *gitopsv1.GitRepositoryRef, secret string) *gitopsv1.GitRepository {
	t.Helper()
	g := &gitopsv1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       gitopsv1.GitRepositorySpec{URL: url, Ref: ref, Interval: metav1.Duration{Duration: time.Hour}},
	}
	if secret != "" {
		g.Spec.SecretRef = &corev1.LocalObjectReference{Name: secret}
	}
	if err := env.Client.Create(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	return g
}

func waitRepo(t *testing.T, ns, name string, want metav1.ConditionStatus, contains string) *gitopsv1.GitRepository {
	t.Helper()
	g := &gitopsv1.GitRepository{}
	eventually(t, 30*time.Second, "GitRepository "+name+" Ready="+string(want), func() (bool, string) {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, g); err != nil {
			return false, err.Error()
		}
		st, reason, msg := readyOf(g)
		return st == want && strings.Contains(reason+" "+msg, contains), fmt.Sprintf("Ready=%s %s: %s", st, reason, msg)
	})
	return g
}

// requestReconcile sets the manual trigger annotation.
func requestReconcile(t *testing.T, o client.Object) {
	t.Helper()
	patch := client.MergeFrom(o.DeepCopyObject().(client.Object))
	a := o.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[gitopsv1.ReconcileRequestAnnotation] = time.Now().Format(time.RFC3339Nano)
	o.SetAnnotations(a)
	if err := env.Client.Patch(context.Background(), o, patch); err != nil {
		t.Fatal(err)
	}
}

func TestGitRepositoryTransports(t *testing.T) {
	ns := newNamespace(t)
	root := t.TempDir()
	repo := gittest.NewRepo(t, root, "app")
	head := repo.Commit("one", map[string]string{"app/cm.yaml": "a: 1\n"})
	base := gittest.ServeHTTP(t, root, "alice", "s3cret")
	sshSrv := gittest.ServeSSH(t, root)
	ctx := context.Background()
	secrets := map[string]map[string][]byte{
		"http-good": {"username": []byte("alice"), "password": []byte("s3cret")},
		"http-bad":  {"username": []byte("alice"), "password": []byte("wrong")},
		"ssh":       {"identity": sshSrv.ClientKey, "known_hosts": sshSrv.KnownHosts},
		// password is the passphrase of a protected SSH key (strata diff
		// reads it the same way).
		"ssh-locked": {"identity": gittest.WithPassphrase(t, sshSrv.ClientKey, "open sesame"), "known_hosts": sshSrv.KnownHosts, "password": []byte("open sesame")},
	}
	for name, data := range secrets {
		if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	createRepo(t, ns, "file", repo.URL(), nil, "")
	createRepo(t, ns, "http", base+"/app", &gitopsv1.GitRepositoryRef{Branch: "main"}, "http-good")
	createRepo(t, ns, "ssh", sshSrv.URL("app"), nil, "ssh")
	createRepo(t, ns, "ssh-locked", sshSrv.URL("app"), nil, "ssh-locked")
	want := "main@sha1:" + head
	for _, name := range []string{"file", "http", "ssh", "ssh-locked"} {
		g := waitRepo(t, ns, name, metav1.ConditionTrue, want)
		if g.Status.Artifact == nil || g.Status.Artifact.Revision != want || !strings.HasPrefix(g.Status.Artifact.Digest, "sha256:") {
			t.Errorf("%s: artifact = %+v, want revision %s", name, g.Status.Artifact, want)
		}
		if !conditions.IsTrue(g, gitopsv1.ArtifactInStorage) || g.Status.ObservedGeneration != g.Generation {
			t.Errorf("%s: ArtifactInStorage or observedGeneration not set: %+v", name, g.Status)
		}
	}

	// Bad input: wrong credentials and a missing ref give Ready=False with
	// the cause, and no artifact.
	createRepo(t, ns, "badpass", base+"/app", nil, "http-bad")
	g := waitRepo(t, ns, "badpass", metav1.ConditionFalse, gitopsv1.ReasonGitOperationFailed)
	if _, _, msg := readyOf(g); !strings.Contains(msg, "authentication") || strings.Contains(msg, "wrong") {
		t.Errorf("wrong password message = %q: want it to say authentication and not show the password", msg)
	}
	createRepo(t, ns, "nobranch", repo.URL(), &gitopsv1.GitRepositoryRef{Branch: "release"}, "")
	waitRepo(t, ns, "nobranch", metav1.ConditionFalse, `branch "release": reference not found`)
	createRepo(t, ns, "unreachable", "http://127.0.0.1:1/app", nil, "")
	waitRepo(t, ns, "unreachable", metav1.ConditionFalse, "127.0.0.1:1")
	createRepo(t, ns, "nosecret", base+"/app", nil, "missing")
	waitRepo(t, ns, "nosecret", metav1.ConditionFalse, gitopsv1.ReasonAuthenticationFailed)

	// A new commit is fetched on the manual trigger; the tag ref stays put.
	repo.Tag("v1.0.0")
	createRepo(t, ns, "tag", repo.URL(), &gitopsv1.GitRepositoryRef{SemVer: "^1"}, "")
	waitRepo(t, ns, "tag", metav1.ConditionTrue, "v1.0.0@sha1:"+head)
	next := repo.Commit("two", map[string]string{"app/cm.yaml": "a: 2\n"})
	g = &gitopsv1.GitRepository{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "file"}, g); err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, g)
	g = waitRepo(t, ns, "file", metav1.ConditionTrue, "main@sha1:"+next)
	if g.Status.LastHandledReconcileAt == "" {
		t.Error("lastHandledReconcileAt not set")
	}
}

// TestGitRepositoryFileURLAttack: a tenant points a GitRepository at a
// repository of the manager's disk outside the folders the manager allows
// (a mode-700 one, through .., through a symbolic link). Each is refused
// with Ready=False and Stalled=True, reason FileURLNotAllowed naming the
// URL, and nothing of the victim is stored. Changing the URL to an allowed
// repository fixes it.
func TestGitRepositoryFileURLAttack(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	outside, err := os.MkdirTemp(outsideFileRoot, "victim-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(outside) })
	victim := gittest.NewRepo(t, outside, "private")
	victimHead := victim.Commit("secret", map[string]string{"secret.yaml": configMap("stolen")})
	if err := os.Chmod(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	inside := t.TempDir()
	allowed := gittest.NewRepo(t, inside, "app")
	head := allowed.Commit("one", map[string]string{"a.yaml": configMap("a")})
	if err := os.Symlink(victim.Dir, filepath.Join(inside, "link")); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(inside, victim.Dir)
	if err != nil {
		t.Fatal(err)
	}
	attacks := map[string]string{
		"mode-700-outside": victim.URL(),
		"dot-dot":          "file://" + inside + "/" + rel,
		"symlink":          "file://" + filepath.Join(inside, "link"),
	}
	for name, url := range attacks {
		createRepo(t, ns, name, url, nil, "")
	}
	for name, url := range attacks {
		g := waitRepo(t, ns, name, metav1.ConditionFalse, gitopsv1.ReasonFileURLNotAllowed)
		if _, _, msg := readyOf(g); !strings.Contains(msg, url) {
			t.Errorf("%s: message %q does not name the URL %s", name, msg, url)
		}
		if !conditions.IsTrue(g, conditions.Stalled) || g.Status.Artifact != nil || g.Status.ObservedGeneration != g.Generation {
			t.Errorf("%s: want Stalled, no artifact and observedGeneration set; status = %+v", name, g.Status)
		}
	}
	if got := victim.Git("rev-parse", "HEAD"); got != victimHead {
		t.Errorf("victim repository changed: HEAD %s, want %s", got, victimHead)
	}

	// The fix: an allowed URL.
	g := &gitopsv1.GitRepository{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "mode-700-outside"}, g); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(g.DeepCopy())
	g.Spec.URL = allowed.URL()
	if err := env.Client.Patch(ctx, g, patch); err != nil {
		t.Fatal(err)
	}
	g = waitRepo(t, ns, "mode-700-outside", metav1.ConditionTrue, "main@sha1:"+head)
	if conditions.Get(g, conditions.Stalled) != nil {
		t.Errorf("still Stalled after the URL was fixed: %+v", g.Status.Conditions)
	}
}

// TestLostArtifactIsFetchedAgain: the store loses a GitRepository's artifact
// (a new state folder, a clean-up) while its status still names it. The
// next reconcile of its Sync has the GitRepository fetch it again at once,
// instead of failing until the GitRepository's next interval (an hour here).
func TestLostArtifactIsFetchedAgain(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h := repo.Commit("one", map[string]string{"app/lost.yaml": configMap("lost-artifact")})
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "app", "src", "app", nil)
	waitSync(t, ns, "app", metav1.ConditionTrue, "main@sha1:"+h)
	g := waitRepo(t, ns, "src", metav1.ConditionTrue, h)
	art := filepath.Join(stateDir, "gitops", "artifacts", strings.TrimPrefix(g.Status.Artifact.Digest, "sha256:"))
	if err := os.RemoveAll(art); err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, getSync(t, ns, "app"))
	eventually(t, 20*time.Second, "the artifact fetched again", func() (bool, string) {
		_, err := os.Stat(art)
		return err == nil, fmt.Sprint(err)
	})
	waitSync(t, ns, "app", metav1.ConditionTrue, "main@sha1:"+h)
}
