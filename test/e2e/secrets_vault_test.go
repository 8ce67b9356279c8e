package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-dev/strata/internal/testenv"
	mt "github.com/strata-dev/strata/internal/testenv/managedtest"
	"github.com/strata-dev/strata/internal/testenv/vaulttest"
)

// TestVaultSecrets is the acceptance test of external secrets against a
// real Vault on the local cluster: a value written into Vault appears in a
// Secret; rotating it in Vault changes the Secret within the refresh
// interval and rolls the Deployment annotated secrets.strata.dev/reload
// (new pod template hash); deleting a key with deletionPolicy Delete
// removes it from the Secret; a PushSecret writes the database password a
// PostgreSQL claim publishes into Vault, and removes it when deleted.
//
// Vault is the server that takes longest to build (about 18 minutes on a cold
// two-core machine, beside the tests): under `make test` the Vault tests wait
// for its build before they take a cluster slot while the package's other
// tests need the slots, and start their clusters while it builds once they do
// not (parallelEarly).
func TestVaultSecrets(t *testing.T) {
	parallelEarly(t, "vault", "vault-plugin-auth-kubernetes")
	pu, err := url.Parse(mt.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, mt.PostgresURL())
	if err != nil {
		t.Fatalf("PostgreSQL at %s is not reachable: %v\nstart it (e.g. `service postgresql start`) or set STRATA_TEST_POSTGRES_URL", pu.Redacted(), err)
	}
	defer admin.Close(ctx)
	t.Cleanup(func() {
		for _, q := range []string{
			`SELECT format('DROP DATABASE %I WITH (FORCE)', datname) FROM pg_database WHERE datname LIKE 'billing-%'`,
			`SELECT format('DROP ROLE %I', rolname) FROM pg_roles WHERE rolname LIKE 'billing-%'`,
		} {
			rows, err := admin.Query(ctx, q)
			if err != nil {
				continue
			}
			stmts, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			for _, s := range stmts {
				_, _ = admin.Exec(ctx, s)
			}
		}
	})
	host, port, _ := net.SplitHostPort(pu.Host)
	pgPassword, _ := pu.User.Password()

	// The cluster first: under `make test` on a cold machine Vault may still be
	// building (parallelEarly), and vaulttest.Start waits for it.
	dir := t.TempDir()
	startUp(t, dir)
	vs := vaulttest.Start(t)
	// The store's token may use e2e/ only.
	vs.Policy(t, "strata-e2e", "secret/data/e2e/*", "secret/metadata/e2e/*")
	token := vs.Token(t, "strata-e2e")
	vs.Put(t, "secret", "e2e/app", map[string]any{"password": "first-password", "user": "app"})
	vs.Put(t, "secret", "e2e/extra", map[string]any{"apiKey": "first-key"})

	apply(t, dir, fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: vault-token, namespace: default}
stringData: {token: %q}
---
apiVersion: secrets.strata.dev/v1alpha1
kind: SecretStore
metadata: {name: vault, namespace: default}
spec:
  provider:
    vault:
      server: %q
      path: secret
      version: v2
      auth:
        tokenSecretRef: {name: vault-token, key: token}
---
apiVersion: secrets.strata.dev/v1alpha1
kind: ExternalSecret
metadata: {name: app, namespace: default}
spec:
  refreshInterval: 2s
  secretStoreRef: {name: vault}
  target: {name: app-credentials, deletionPolicy: Delete}
  data:
  - secretKey: password
    remoteRef: {key: e2e/app, property: password}
  - secretKey: apiKey
    remoteRef: {key: e2e/extra, property: apiKey}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  annotations: {secrets.strata.dev/reload: "true"}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: example.invalid/web:1
        env:
        - name: PASSWORD
          valueFrom: {secretKeyRef: {name: app-credentials, key: password}}
`, token, vs.Addr))
	wait := func(obj string) {
		t.Helper()
		if out, err := kubectlErr(dir, "wait", "--for=condition=Ready", obj, "-n", "default", "--timeout=90s"); err != nil {
			t.Fatalf("%s not Ready: %v\n%s\n%s", obj, err, out, kubectl(t, dir, "get", obj, "-n", "default", "-o", "yaml"))
		}
	}
	wait("secretstores.secrets.strata.dev/vault")
	wait("externalsecrets.secrets.strata.dev/app")
	if got := secretData(t, dir, "default", "app-credentials", "password"); got != "first-password" {
		t.Fatalf("Secret app-credentials has password %q", got)
	}
	podHash := func() string {
		return kubectl(t, dir, "get", "deployment/web", "-n", "default", "-o", `jsonpath={.spec.template.metadata.annotations.secrets\.strata\.dev/secret-hash}`)
	}
	var first string
	mt.Eventually(t, 60*time.Second, "pod template hash on deployment/web", func() error {
		if first = podHash(); first == "" {
			return fmt.Errorf("no %s annotation", "secrets.strata.dev/secret-hash")
		}
		return nil
	})

	// Rotation in Vault reaches the Secret (refreshInterval 2s) and rolls
	// the Deployment.
	vs.Put(t, "secret", "e2e/app", map[string]any{"password": "rotated-password", "user": "app"})
	mt.Eventually(t, 60*time.Second, "rotated password in Secret app-credentials", func() error {
		if got := secretData(t, dir, "default", "app-credentials", "password"); got != "rotated-password" {
			return fmt.Errorf("still the old value")
		}
		return nil
	})
	mt.Eventually(t, 60*time.Second, "new pod template hash on deployment/web", func() error {
		if h := podHash(); h == first || h == "" {
			return fmt.Errorf("hash %q unchanged", h)
		}
		return nil
	})

	// deletionPolicy Delete: a key deleted in Vault leaves the Secret.
	if err := vs.API().KVv2("secret").DeleteMetadata(ctx, "e2e/extra"); err != nil {
		t.Fatal(err)
	}
	mt.Eventually(t, 60*time.Second, "apiKey removed from Secret app-credentials", func() error {
		out := kubectl(t, dir, "get", "secret", "app-credentials", "-n", "default", "-o", "jsonpath={.data}")
		if strings.Contains(out, "apiKey") {
			return fmt.Errorf("data still has apiKey")
		}
		if !strings.Contains(out, "password") {
			return fmt.Errorf("password went too: %s", out)
		}
		return nil
	})

	// A claim's database password lands in Vault through a PushSecret.
	apply(t, dir, fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: pg-admin, namespace: default}
stringData: {endpoint: %q, port: %q, username: %q, password: %q, sslmode: disable}
---
apiVersion: postgresql.sql.strata.dev/v1alpha1
kind: ProviderConfig
metadata: {name: default}
spec:
  connectionSecretRef: {name: pg-admin, namespace: default}
`, host, port, pu.User.Username(), pgPassword))
	root := testenv.RepoRoot()
	kubectl(t, dir, "apply", "-f", filepath.Join(root, "compositions", "postgresql-database"))
	kubectl(t, dir, "wait", "--for=condition=Offered", "xrd/xpostgresqldatabases.platform.strata.dev", "--timeout=60s")
	apply(t, dir, `
apiVersion: platform.strata.dev/v1alpha1
kind: PostgreSQLDatabase
metadata: {name: billing, namespace: default}
spec:
  providerConfigName: default
  writeConnectionSecretToRef: {name: billing-db}
---
apiVersion: secrets.strata.dev/v1alpha1
kind: PushSecret
metadata: {name: billing-db, namespace: default}
spec:
  secretStoreRefs: [{name: vault}]
  selector: {secret: {name: billing-db}}
  deletionPolicy: Delete
  data:
  - match: {secretKey: password, remoteRef: {remoteKey: e2e/billing/db, property: password}}
  - match: {secretKey: user, remoteRef: {remoteKey: e2e/billing/db, property: user}}
`)
	wait("postgresqldatabase/billing")
	wait("pushsecrets.secrets.strata.dev/billing-db")
	dbPassword := secretData(t, dir, "default", "billing-db", "password")
	if dbPassword == "" {
		t.Fatal("the claim published no password")
	}
	got := vs.Get(t, "secret", "e2e/billing/db")
	if got["password"] != dbPassword || got["user"] != secretData(t, dir, "default", "billing-db", "user") {
		t.Fatalf("vault e2e/billing/db has keys %v, not the claim's user and password", vaultKeys(got))
	}
	if owner := vs.Metadata(t, "secret", "e2e/billing/db")["strata.dev/pushed-by.password"]; owner != "pushsecret/default/billing-db" {
		t.Errorf("vault records writer %v", owner)
	}
	// An ExternalSecret reads it back; the value never shows in status.
	out := kubectl(t, dir, "get", "pushsecrets.secrets.strata.dev/billing-db", "-n", "default", "-o", "yaml")
	if strings.Contains(out, dbPassword) {
		t.Error("the PushSecret shows the password")
	}
	kubectl(t, dir, "delete", "pushsecrets.secrets.strata.dev/billing-db", "-n", "default", "--timeout=60s")
	if d := vs.Get(t, "secret", "e2e/billing/db"); d != nil {
		t.Errorf("vault still has e2e/billing/db after the PushSecret (deletionPolicy Delete) was deleted")
	}
	kubectl(t, dir, "delete", "postgresqldatabase/billing", "-n", "default", "--timeout=180s")
}

func vaultKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
