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
)

// TestPostgreSQLDatabaseClaim is the acceptance test of the
// postgresql-database composition: a ProviderConfig and a claim produce a
// database a client logs into with the claim's connection Secret (its url);
// deleting the claim removes the database and the role.
func TestPostgreSQLDatabaseClaim(t *testing.T) {
	parallel(t)
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
	host, port, _ := net.SplitHostPort(pu.Host)
	pw, _ := pu.User.Password()

	// The XR's name, so its role and database, are derived from the claim's:
	// make sure a failed run leaves nothing behind.
	t.Cleanup(func() {
		for _, q := range []string{
			`SELECT format('DROP DATABASE %I WITH (FORCE)', datname) FROM pg_database WHERE datname LIKE 'orders-%'`,
			`SELECT format('DROP ROLE %I', rolname) FROM pg_roles WHERE rolname LIKE 'orders-%'`,
			`SELECT format('DROP ROLE %I', rolname) FROM pg_roles WHERE rolname LIKE 'sneaky-%'`,
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
	dir := t.TempDir()
	startUp(t, dir)
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
`, host, port, pu.User.Username(), pw))
	root := testenv.RepoRoot()
	kubectl(t, dir, "apply", "-f", filepath.Join(root, "compositions", "postgresql-database"))
	kubectl(t, dir, "wait", "--for=condition=Established", "xrd/xpostgresqldatabases.platform.strata.dev", "--timeout=60s")
	kubectl(t, dir, "wait", "--for=condition=Offered", "xrd/xpostgresqldatabases.platform.strata.dev", "--timeout=60s")
	// A claim naming a ProviderConfig its namespace may not use (another
	// team's server) is refused before anything reaches the server.
	apply(t, dir, `
apiVersion: postgresql.sql.strata.dev/v1alpha1
kind: ProviderConfig
metadata: {name: payments}
spec:
  connectionSecretRef: {name: pg-admin, namespace: default}
  allowedClaimNamespaces: [payments]
---
apiVersion: platform.strata.dev/v1alpha1
kind: PostgreSQLDatabase
metadata: {name: sneaky, namespace: default}
spec:
  providerConfigName: payments
`)
	mt.Eventually(t, time.Minute, "claim sneaky refused the payments ProviderConfig", func() error {
		// The claimant sees why on the claim (the Role is cluster-scoped):
		// Stalled, with the Role's reason and message.
		out, err := kubectlErr(dir, "get", "postgresqldatabase/sneaky", "-n", "default", "-o", `jsonpath={.status.conditions[?(@.type=="Stalled")]}`)
		if err != nil {
			return err
		}
		if !strings.Contains(out, `"reason":"ComposedResourceFailed"`) || !strings.Contains(out, `"status":"True"`) ||
			!strings.Contains(out, `failed: role (ProviderConfigNotAllowed): ProviderConfig \"payments\" may not be used by claims in namespace default`) {
			return fmt.Errorf("claim's Stalled condition: %s", out)
		}
		return nil
	})
	kubectl(t, dir, "delete", "postgresqldatabase/sneaky", "-n", "default", "--timeout=120s")
	var sneaky int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'sneaky-%'").Scan(&sneaky); err != nil || sneaky != 0 {
		t.Errorf("roles made for the refused claim: %d (%v)", sneaky, err)
	}

	kubectl(t, dir, "apply", "-f", filepath.Join(root, "examples", "postgresql-database", "claim.yaml"))
	if out, err := kubectlErr(dir, "wait", "--for=condition=Ready", "postgresqldatabase/orders", "-n", "default", "--timeout=60s"); err != nil {
		trace, _ := strata(t, "trace", "--kubeconfig", filepath.Join(dir, "kubeconfig"), "postgresqldatabase/orders", "-n", "default")
		t.Fatalf("claim not Ready: %v\n%s\n%s\n%s\n%s\n%s", err, out, trace, kubectl(t, dir, "get", "managed", "-o", "wide"),
			kubectl(t, dir, "get", "xpostgresqldatabases", "-o", "jsonpath={.items[0].status.conditions}"),
			kubectl(t, dir, "get", "databases.postgresql.sql.strata.dev", "-o", "yaml", "--show-managed-fields"))
	}
	// The claim may turn Ready a moment before its connection Secret is
	// written; wait for it.
	mt.Eventually(t, time.Minute, "connection Secret orders-db", func() error {
		out, err := kubectlErr(dir, "get", "secret", "orders-db", "-n", "default")
		if err != nil {
			xr, _ := kubectlErr(dir, "get", "xpostgresqldatabases", "-o", "yaml")
			secrets, _ := kubectlErr(dir, "get", "secrets", "-A")
			return fmt.Errorf("%v: %s\n%s\n%s", err, out, xr, secrets)
		}
		return nil
	})
	dbURL := secretData(t, dir, "default", "orders-db", "url")
	database := secretData(t, dir, "default", "orders-db", "database")
	user := secretData(t, dir, "default", "orders-db", "user")
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("url in the connection Secret does not parse: %v", err)
	}
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	app, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("cannot log in with the claim's url: %v", err)
	}
	var who, db string
	if err := app.QueryRow(ctx, "SELECT current_user, current_database()").Scan(&who, &db); err != nil || who != user || db != database {
		t.Errorf("logged in as %q to %q (%v), want %q to %q", who, db, err, user, database)
	}
	if _, err := app.Exec(ctx, "CREATE TABLE orders (id int)"); err != nil {
		t.Errorf("cannot create a table: %v", err)
	}
	_ = app.Close(ctx)

	kubectl(t, dir, "delete", "postgresqldatabase/orders", "-n", "default", "--timeout=180s")
	waitDeleted(t, dir, "databases.postgresql.sql.strata.dev", "--all")
	var n int
	if err := admin.QueryRow(ctx, "SELECT (SELECT count(*) FROM pg_database WHERE datname = $1) + (SELECT count(*) FROM pg_roles WHERE rolname = $2)", database, user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %q or role %q still on the server after the claim was deleted", database, user)
	}
}
