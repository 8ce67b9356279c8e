package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	mt "github.com/strata-dev/strata/internal/testenv/managedtest"
)

// apply writes manifest to a file and `kubectl apply`s it.
func apply(t *testing.T, dir, manifest string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl(t, dir, "apply", "-f", f)
}

// secretData reads one key of a Secret through kubectl.
func secretData(t *testing.T, dir, ns, name, key string) string {
	t.Helper()
	out := kubectl(t, dir, "get", "secret", "-n", ns, name, "-o", "jsonpath={.data."+key+"}")
	b, err := base64.StdEncoding.DecodeString(out)
	if err != nil {
		t.Fatalf("secret %s/%s key %s: %v", ns, name, key, err)
	}
	return string(b)
}

// waitDeleted waits until kubectl no longer finds the objects.
func waitDeleted(t *testing.T, dir string, objs ...string) {
	t.Helper()
	args := append([]string{"wait", "--for=delete", "--timeout=120s"}, objs...)
	if out, err := kubectlErr(dir, args...); err != nil && !strings.Contains(out, "NotFound") {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestProviders drives the sql and s3 providers on the local cluster the way
// a user would: apply a ProviderConfig and managed resources with kubectl,
// wait for Ready, use the published credentials, describe, delete.
func TestProviders(t *testing.T) {
	parallel(t, "versitygw")
	dir := t.TempDir()
	startUp(t, dir, "--subsystems", "provider-nop,provider-sql,provider-s3")
	t.Run("postgresql", func(t *testing.T) { testPostgreSQL(t, dir) })
	t.Run("mysql", func(t *testing.T) { testMySQL(t, dir) })
	t.Run("s3", func(t *testing.T) { testS3(t, dir) })
}

func testPostgreSQL(t *testing.T, dir string) {
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
	name := "e2e-" + mt.Suffix()
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
---
apiVersion: postgresql.sql.strata.dev/v1alpha1
kind: Role
metadata: {name: %[5]s}
spec:
  forProvider:
    privileges: {login: true}
  writeConnectionSecretToRef: {name: %[5]s-conn, namespace: default}
---
apiVersion: postgresql.sql.strata.dev/v1alpha1
kind: Database
metadata: {name: %[5]s}
spec:
  forProvider:
    ownerRef: {name: %[5]s}
---
apiVersion: postgresql.sql.strata.dev/v1alpha1
kind: Grant
metadata: {name: %[5]s}
spec:
  forProvider:
    roleRef: {name: %[5]s}
    databaseRef: {name: %[5]s}
    privileges: [ALL]
`, host, port, pu.User.Username(), pw, name))
	for _, k := range []string{"role", "database", "grant"} {
		kubectl(t, dir, "wait", "--for=condition=Ready", k+".postgresql.sql.strata.dev/"+name, "--timeout=120s")
	}
	out := kubectl(t, dir, "get", "databases.postgresql.sql.strata.dev", name)
	for _, col := range []string{"READY", "SYNCED", "EXTERNAL-NAME", name} {
		if !strings.Contains(out, col) {
			t.Errorf("kubectl get does not show %s:\n%s", col, out)
		}
	}
	desc := kubectl(t, dir, "describe", "role.postgresql.sql.strata.dev", name)
	for _, want := range []string{"Synced", "ReconcileSuccess", "Available", "CreatedExternalResource"} {
		if !strings.Contains(desc, want) {
			t.Errorf("kubectl describe does not show %s:\n%s", want, desc)
		}
	}
	conn := name + "-conn"
	u := url.URL{Scheme: "postgres", User: url.UserPassword(secretData(t, dir, "default", conn, "username"), secretData(t, dir, "default", conn, "password")),
		Host: net.JoinHostPort(secretData(t, dir, "default", conn, "endpoint"), secretData(t, dir, "default", conn, "port")), Path: "/" + name, RawQuery: "sslmode=disable"}
	app, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("cannot log in with the connection Secret's credentials: %v", err)
	}
	if _, err := app.Exec(ctx, "CREATE TABLE notes (body text)"); err != nil {
		t.Errorf("cannot use the database: %v", err)
	}
	_ = app.Close(ctx)

	kubectl(t, dir, "delete", "grant.postgresql.sql.strata.dev/"+name, "database.postgresql.sql.strata.dev/"+name, "role.postgresql.sql.strata.dev/"+name, "--wait=false")
	waitDeleted(t, dir, "grant.postgresql.sql.strata.dev/"+name, "database.postgresql.sql.strata.dev/"+name, "role.postgresql.sql.strata.dev/"+name)
	var n int
	if err := admin.QueryRow(ctx, "SELECT (SELECT count(*) FROM pg_database WHERE datname = $1) + (SELECT count(*) FROM pg_roles WHERE rolname = $1)", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database or role %q still on the server after delete", name)
	}
	kubectl(t, dir, "delete", "providerconfig.postgresql.sql.strata.dev/default", "--timeout=60s")
}

func testMySQL(t *testing.T, dir string) {
	cfg, err := mysql.ParseDSN(mt.MySQLDSN())
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := sql.Open("mysql", cfg.FormatDSN())
	defer admin.Close()
	if err := admin.Ping(); err != nil {
		t.Fatalf("MariaDB/MySQL at %s is not reachable: %v\nstart it (e.g. `service mariadb start`) or set STRATA_TEST_MYSQL_DSN", cfg.Addr, err)
	}
	host, port, _ := net.SplitHostPort(cfg.Addr)
	name := "e2e-" + mt.Suffix()
	apply(t, dir, fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: mysql-admin, namespace: default}
stringData: {endpoint: %q, port: %q, username: %q, password: %q}
---
apiVersion: mysql.sql.strata.dev/v1alpha1
kind: ProviderConfig
metadata: {name: default}
spec:
  connectionSecretRef: {name: mysql-admin, namespace: default}
---
apiVersion: mysql.sql.strata.dev/v1alpha1
kind: User
metadata: {name: %[5]s}
spec:
  writeConnectionSecretToRef: {name: %[5]s-conn, namespace: default}
---
apiVersion: mysql.sql.strata.dev/v1alpha1
kind: Database
metadata: {name: %[5]s}
spec:
  forProvider: {characterSet: utf8mb4}
---
apiVersion: mysql.sql.strata.dev/v1alpha1
kind: Grant
metadata: {name: %[5]s}
spec:
  forProvider:
    userRef: {name: %[5]s}
    databaseRef: {name: %[5]s}
    privileges: [ALL]
`, host, port, cfg.User, cfg.Passwd, name))
	for _, k := range []string{"user", "database", "grant"} {
		kubectl(t, dir, "wait", "--for=condition=Ready", k+".mysql.sql.strata.dev/"+name, "--timeout=120s")
	}
	conn := name + "-conn"
	app := mysql.NewConfig()
	app.User, app.Passwd, app.Net, app.DBName = secretData(t, dir, "default", conn, "username"), secretData(t, dir, "default", conn, "password"), "tcp", name
	app.Addr = net.JoinHostPort(secretData(t, dir, "default", conn, "endpoint"), secretData(t, dir, "default", conn, "port"))
	adb, _ := sql.Open("mysql", app.FormatDSN())
	if _, err := adb.Exec("CREATE TABLE notes (body text)"); err != nil {
		t.Errorf("cannot use the database with the connection Secret's credentials: %v", err)
	}
	_ = adb.Close()
	kubectl(t, dir, "delete", "grant.mysql.sql.strata.dev/"+name, "database.mysql.sql.strata.dev/"+name, "user.mysql.sql.strata.dev/"+name, "--wait=false")
	waitDeleted(t, dir, "grant.mysql.sql.strata.dev/"+name, "database.mysql.sql.strata.dev/"+name, "user.mysql.sql.strata.dev/"+name)
	var n int
	if err := admin.QueryRow("SELECT (SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?) + (SELECT count(*) FROM mysql.user WHERE User = ?)", name, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database or user %q still on the server after delete", name)
	}
	kubectl(t, dir, "delete", "providerconfig.mysql.sql.strata.dev/default", "--timeout=60s")
}

func testS3(t *testing.T, dir string) {
	gw := mt.StartVersityGW(t)
	name := "e2e-" + mt.Suffix()
	apply(t, dir, fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: s3-creds, namespace: default}
stringData: {access_key_id: %q, secret_access_key: %q}
---
apiVersion: s3.aws.strata.dev/v1alpha1
kind: ProviderConfig
metadata: {name: default}
spec:
  credentialsSecretRef: {name: s3-creds, namespace: default}
  endpoint: %q
  usePathStyle: true
---
apiVersion: s3.aws.strata.dev/v1alpha1
kind: Bucket
metadata: {name: %[4]s}
spec:
  forProvider:
    versioning: true
    tags: {team: e2e}
  writeConnectionSecretToRef: {name: %[4]s-conn, namespace: default}
`, gw.AccessKey, gw.SecretKey, gw.Endpoint, name))
	kubectl(t, dir, "wait", "--for=condition=Ready", "bucket.s3.aws.strata.dev/"+name, "--timeout=120s")
	conn := name + "-conn"
	ak, sk := secretData(t, dir, "default", conn, "access_key_id"), secretData(t, dir, "default", conn, "secret_access_key")
	c := awss3.New(awss3.Options{Region: secretData(t, dir, "default", conn, "region"), BaseEndpoint: aws.String(secretData(t, dir, "default", conn, "endpoint")), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, nil
		})})
	ctx := context.Background()
	bucket := secretData(t, dir, "default", conn, "bucket")
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: bytes.NewReader([]byte("v"))}); err != nil {
		t.Fatalf("cannot put an object with the connection Secret's credentials: %v", err)
	}
	o, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: &bucket, Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(o.Body)
	_ = o.Body.Close()
	if string(b) != "v" {
		t.Errorf("got %q", b)
	}
	vs, err := c.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs.Versions {
		if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: v.Key, VersionId: v.VersionId}); err != nil {
			t.Fatal(err)
		}
	}
	kubectl(t, dir, "delete", "bucket.s3.aws.strata.dev/"+name, "--timeout=120s")
	if _, err := c.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &bucket}); err == nil {
		t.Error("bucket still exists after delete")
	}
	kubectl(t, dir, "delete", "providerconfig.s3.aws.strata.dev/default", "--timeout=60s")
}
