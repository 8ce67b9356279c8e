package controller

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/gitops/sopstest"
)

// TestSyncDecryptsSOPS: a Sync applies SOPS-encrypted Secrets from Git,
// decrypted in memory with the age and PGP keys of its decryption Secret
// (a YAML manifest made by an older sops, and a dotenv file of a
// secretGenerator encrypted now by the sops CLI for a GnuPG key); a file
// whose MAC was deleted is refused naming the file, the last good Secret
// stays, and no value reaches a condition or an event.
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
	pgp := sopstest.NewPGPKey(t)
	dotenv := sopstest.Encrypt(t, "db.env", []byte("API_TOKEN=pgp-token-value\n"), sopstest.Options{Args: []string{"--pgp", pgp.Fingerprint}, GnuPGHome: pgp.Home})

	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h := repo.Commit("secret", map[string]string{"app/secret.yaml": string(enc)})
	createRepo(t, ns, "src", repo.URL(), nil, "")

	// Without decryption the ciphertext is never applied.
	createSync(t, ns, "plain", "src", "app", nil)
	waitSync(t, ns, "plain", metav1.ConditionFalse, "app/secret.yaml: document 1: the manifest is SOPS-encrypted")

	if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sops-keys"}, Data: map[string][]byte{"demo.agekey": key, "ops.asc": pgp.Armored}}); err != nil {
		t.Fatal(err)
	}
	createSync(t, ns, "decrypted", "src", "app", func(s *gitopsv1.Sync) {
		s.Spec.TargetNamespace = ns
		s.Spec.Decryption = &gitopsv1.Decryption{Provider: "sops", SecretRef: gitopsv1.LocalReference{Name: "sops-keys"}}
	})
	waitSync(t, ns, "decrypted", metav1.ConditionTrue, "main@sha1:"+h)
	sec := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-db-credentials"}, sec); err != nil {
		t.Fatal(err)
	}
	if string(sec.Data["password"]) != "s3cr3t-demo-password" {
		t.Errorf("password = %q, want the decrypted value", sec.Data["password"])
	}

	// A kustomization with a secretGenerator over a PGP-encrypted dotenv file.
	kustomization := "resources: [secret.yaml]\ngeneratorOptions: {disableNameSuffixHash: true}\nsecretGenerator:\n- name: api\n  envs: [db.env]\n"
	rev := push(t, repo, ns, "src", "pgp", map[string]string{"app/kustomization.yaml": kustomization, "app/db.env": string(dotenv)})
	waitSync(t, ns, "decrypted", metav1.ConditionTrue, rev)
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "api"}, sec); err != nil {
		t.Fatal(err)
	}
	if string(sec.Data["API_TOKEN"]) != "pgp-token-value" {
		t.Errorf("API_TOKEN = %q, want the decrypted value", sec.Data["API_TOKEN"])
	}

	// The MAC line deleted: refused, naming the file; the Secret stays.
	noMAC := regexp.MustCompile(`(?m)^sops_mac=.*\n`).ReplaceAllString(string(dotenv), "")
	push(t, repo, ns, "src", "no mac", map[string]string{"app/db.env": noMAC})
	s := waitSync(t, ns, "decrypted", metav1.ConditionFalse, "app/db.env: cannot decrypt the SOPS dotenv file: the SOPS file has no MAC")
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "api"}, sec); err != nil || string(sec.Data["API_TOKEN"]) != "pgp-token-value" {
		t.Errorf("the last good Secret changed: %q, %v", sec.Data["API_TOKEN"], err)
	}
	for _, c := range s.Status.Conditions {
		if strings.Contains(c.Message, "pgp-token-value") || strings.Contains(c.Message, "s3cr3t-demo-password") {
			t.Errorf("condition %s quotes a secret value: %s", c.Type, c.Message)
		}
	}
	events := &corev1.EventList{}
	if err := env.Client.List(ctx, events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if strings.Contains(e.Message, "pgp-token-value") || strings.Contains(e.Message, "s3cr3t-demo-password") {
			t.Errorf("event %s quotes a secret value: %s", e.Reason, e.Message)
		}
	}
}
