package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/gittest"
)

// TestNewRevisionCancelsHealthWaitAndSubstituteFrom: a revision whose
// Deployment cannot become available (no controllers here) is waited for;
// the next commit replaces the wait at once instead of after the timeout.
// Variables come from a ConfigMap and a Secret, with substitute winning.
func TestNewRevisionCancelsHealthWaitAndSubstituteFrom(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	for _, o := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vars"}, Data: map[string]string{"greeting": "from-configmap", "color": "blue"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "secret-vars"}, Data: map[string][]byte{"token": []byte("from-secret")}},
	} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	repo.Commit("one", map[string]string{
		"app/web.yaml": deployment,
		"app/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: vars-out}\ndata: {greeting: '${greeting}', color: '${color}', token: '${token}', size: '${size:=small}'}\n",
	})
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "app", "src", "app", func(s *gitopsv1.Sync) {
		s.Spec.Wait = true
		s.Spec.Timeout = &metav1.Duration{Duration: 10 * time.Minute}
		s.Spec.PostBuild = &gitopsv1.PostBuild{
			Substitute:     map[string]string{"color": "green"},
			SubstituteFrom: []gitopsv1.SubstituteReference{{Kind: "ConfigMap", Name: "vars"}, {Kind: "Secret", Name: "secret-vars"}, {Kind: "ConfigMap", Name: "missing", Optional: true}},
		}
	})
	waitSync(t, ns, "app", metav1.ConditionFalse, "waiting for Deployment/"+ns+"/web")
	out := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vars-out"}, out); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"greeting": "from-configmap", "color": "green", "token": "from-secret", "size": "small"}
	for k, v := range want {
		if out.Data[k] != v {
			t.Errorf("substituted %s = %q, want %q", k, out.Data[k], v)
		}
	}

	start := time.Now()
	rev2 := push(t, repo, ns, "src", "drop web", map[string]string{"app/web.yaml": ""})
	waitSync(t, ns, "app", metav1.ConditionTrue, rev2)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the new revision waited %s for the old one's health check", d)
	}
}
