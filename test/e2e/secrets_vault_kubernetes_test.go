package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/strata-dev/strata/internal/testenv/vaulttest"
)

// TestVaultKubernetesAuth is Vault's Kubernetes auth method on the local
// cluster as a user sets it up: Vault reviews tokens with the cluster's own
// API server (TokenReview), a SecretStore names a ServiceAccount of its
// namespace, and the manager requests that ServiceAccount's token
// (TokenRequest API, audience vault) and logs in. The value written in Vault
// lands in the Secret; a ServiceAccount the role does not bind is refused.
// (`strata up` runs the manager with the admin kubeconfig, so this does not
// exercise the install's RBAC, whose secrets rules grant
// serviceaccounts/token create.)
func TestVaultKubernetesAuth(t *testing.T) {
	parallelEarly(t, "vault", "vault-plugin-auth-kubernetes")
	dir := t.TempDir()
	startUp(t, dir)
	vs := vaulttest.Start(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	vs.KubernetesAuth(t, cfg, "kubernetes", "vault-auth")
	vs.Policy(t, "team-a", "secret/data/team-a/*", "secret/metadata/team-a/*")
	vaulttest.EnsureNamespace(t, cs, "team-a")
	vaulttest.EnsureServiceAccount(t, cs, "team-a", "vault-reader")
	vs.KubernetesRole(t, "kubernetes", "team-a", "team-a", "vault-reader", "vault", "team-a")
	const pw = "k8s-auth-e2e-password"
	vs.Put(t, "secret", "team-a/db", map[string]any{"password": pw})
	apply(t, dir, fmt.Sprintf(`
apiVersion: secrets.strata.dev/v1alpha1
kind: SecretStore
metadata: {name: vault, namespace: team-a}
spec:
  provider:
    vault:
      server: %q
      path: secret
      auth:
        kubernetes: {mountPath: kubernetes, role: team-a, serviceAccountRef: {name: vault-reader}}
---
apiVersion: secrets.strata.dev/v1alpha1
kind: ExternalSecret
metadata: {name: db, namespace: team-a}
spec:
  secretStoreRef: {name: vault}
  data:
  - secretKey: password
    remoteRef: {key: team-a/db, property: password}
`, vs.Addr))
	for _, obj := range []string{"secretstores.secrets.strata.dev/vault", "externalsecrets.secrets.strata.dev/db"} {
		if out, err := kubectlErr(dir, "wait", "--for=condition=Ready", obj, "-n", "team-a", "--timeout=90s"); err != nil {
			t.Fatalf("%s not Ready: %v\n%s\n%s", obj, err, out, kubectl(t, dir, "get", obj, "-n", "team-a", "-o", "yaml"))
		}
	}
	if got := secretData(t, dir, "team-a", "db", "password"); got != pw {
		t.Fatalf("Secret team-a/db holds %q", got)
	}
	// A ServiceAccount the role does not bind is refused by Vault.
	vaulttest.EnsureServiceAccount(t, cs, "team-a", "other")
	apply(t, dir, fmt.Sprintf(`
apiVersion: secrets.strata.dev/v1alpha1
kind: SecretStore
metadata: {name: vault-other, namespace: team-a}
spec:
  provider:
    vault:
      server: %q
      auth:
        kubernetes: {role: team-a, serviceAccountRef: {name: other}}
`, vs.Addr))
	out, err := kubectlErr(dir, "wait", "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=ProviderError",
		"secretstores.secrets.strata.dev/vault-other", "-n", "team-a", "--timeout=90s")
	if err != nil {
		t.Fatalf("store vault-other is not refused: %v\n%s\n%s", err, out, kubectl(t, dir, "get", "secretstores.secrets.strata.dev/vault-other", "-n", "team-a", "-o", "yaml"))
	}
	if y := kubectl(t, dir, "get", "externalsecrets.secrets.strata.dev,secretstores.secrets.strata.dev", "-n", "team-a", "-o", "yaml"); strings.Contains(y, pw) {
		t.Error("a value shows in the objects")
	}
}
