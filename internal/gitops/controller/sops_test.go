package controller

import (
	"context"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/gittest"
)

func TestSyncDecryptsSOPS(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	enc, err := os.ReadFile("../build/testdata/secret.sops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile("../build/testdata/demo.agekey")
	if err != nil {
		t.Fatal(err)
	}
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h := repo.Commit("secret", map[string]string{"app/secret.yaml": string(enc)})
	createRepo(t, ns, "src", repo.URL(), nil, "")

	// Without decryption the ciphertext is never applied.
	createSync(t, ns, "plain", "src", "app", nil)
	waitSync(t, ns, "plain", metav1.ConditionFalse, "app/secret.yaml: document 1: the manifest is SOPS-encrypted")

	if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sops-age"}, Data: map[string][]byte{"demo.agekey": key}}); err != nil {
		t.Fatal(err)
	}
	createSync(t, ns, "decrypted", "src", "app", func(s *gitopsv1.Sync) {
		s.Spec.TargetNamespace = ns
		s.Spec.Decryption = &gitopsv1.Decryption{Provider: "sops", SecretRef: gitopsv1.LocalReference{Name: "sops-age"}}
	})
	waitSync(t, ns, "decrypted", metav1.ConditionTrue, "main@sha1:"+h)
	sec := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-db-credentials"}, sec); err != nil {
		t.Fatal(err)
	}
	if string(sec.Data["password"]) != "s3cr3t-demo-password" {
		t.Errorf("password = %q, want the decrypted value", sec.Data["password"])
	}
}
