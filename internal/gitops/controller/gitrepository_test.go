package controller

import (
	"context"
	"fmt"
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
