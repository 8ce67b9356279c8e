package postgresql_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/managed"
	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
	"github.com/strata-dev/strata/internal/testenv"
	mt "github.com/strata-dev/strata/internal/testenv/managedtest"
	pgv1 "github.com/strata-dev/strata/providers/sql/apis/postgresql/v1alpha1"
	"github.com/strata-dev/strata/providers/sql/postgresql"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	if os.Getenv(childKubeconfig) != "" {
		os.Exit(runChildManager())
	}
	os.Exit(testenv.Main(m, &env, testenv.Start))
}

const wait = 30 * time.Second

// admin connects to the test PostgreSQL server as its administrator,
// failing the test with how to start it when it is unreachable.
func admin(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, mt.PostgresURL())
	if err != nil {
		t.Fatalf("PostgreSQL at %s is not reachable: %v\nstart it (e.g. `service postgresql start`; trust auth for user postgres on 127.0.0.1:5432) or point STRATA_TEST_POSTGRES_URL at one", redact(mt.PostgresURL()), err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// providerConfig creates a ProviderConfig (and its Secret) for the server at
// addr (default: the test server), named name.
func providerConfig(t *testing.T, name, addr string) *pgv1.ProviderConfig {
	t.Helper()
	u, err := url.Parse(mt.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		addr = u.Host
	}
	host, port, _ := net.SplitHostPort(addr)
	pw, _ := u.User.Password()
	ctx := context.Background()
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name + "-creds"},
		StringData: map[string]string{"endpoint": host, "port": port, "username": u.User.Username(), "password": pw, "sslmode": "disable"},
	}
	if err := env.Client.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	pc := &pgv1.ProviderConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       pgv1.ProviderConfigSpec{ConnectionSecretRef: managedv1.SecretReference{Namespace: "default", Name: sec.Name}},
	}
	if err := env.Client.Create(ctx, pc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.Delete(ctx, pc)
		_ = env.Client.Delete(ctx, sec)
	})
	return pc
}

func start(t *testing.T) {
	mt.StartManager(t, env.Config, func(m ctrl.Manager) error {
		return postgresql.Setup(m, managed.Options{PollInterval: time.Minute, MaxReconcileRate: 0})
	})
}

func spec(pc string) managedv1.ResourceSpec {
	return managedv1.ResourceSpec{ProviderConfigReference: &managedv1.Reference{Name: pc}}
}

func exists(t *testing.T, db *pgx.Conn, query, name string) bool {
	t.Helper()
	var ok bool
	if err := db.QueryRow(context.Background(), "SELECT EXISTS ("+query+")", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

const (
	dbExists   = "SELECT 1 FROM pg_database WHERE datname = $1"
	roleExists = "SELECT 1 FROM pg_roles WHERE rolname = $1"
)

func ptr[T any](v T) *T { return &v }

// TestRoleDatabaseGrant is the whole story: a role with a generated
// password, a database it owns and a grant, all by reference; a client logs
// in with the published credentials; the ProviderConfig cannot be deleted
// while in use; deleting removes everything from the server.
func TestRoleDatabaseGrant(t *testing.T) {
	db := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	pc := providerConfig(t, "pg-"+sfx, "")
	name := "app-" + sfx

	role := &pgv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: pgv1.RoleSpec{ResourceSpec: spec(pc.Name),
		ForProvider: pgv1.RoleParameters{Privileges: pgv1.RolePrivileges{Login: ptr(true)}}}}
	role.Spec.WriteConnectionSecretToReference = &managedv1.SecretReference{Namespace: "default", Name: name + "-conn"}
	database := &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: pgv1.DatabaseSpec{ResourceSpec: spec(pc.Name),
		ForProvider: pgv1.DatabaseParameters{OwnerRef: &managedv1.Reference{Name: name}, Encoding: "UTF8"}}}
	grant := &pgv1.Grant{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: pgv1.GrantSpec{ResourceSpec: spec(pc.Name),
		ForProvider: pgv1.GrantParameters{RoleRef: &managedv1.Reference{Name: name}, DatabaseRef: &managedv1.Reference{Name: name},
			Privileges: []pgv1.GrantPrivilege{"CONNECT", "TEMPORARY"}}}}
	// Created in the "wrong" order: references wait for their targets.
	for _, o := range []client.Object{grant, database, role} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	mt.WaitCondition(t, env.Client, grant, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	mt.WaitCondition(t, env.Client, database, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	mt.WaitCondition(t, env.Client, role, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	if database.Spec.ForProvider.Owner != name || database.Status.AtProvider.Owner != name {
		t.Errorf("owner = %q (observed %q), want %q", database.Spec.ForProvider.Owner, database.Status.AtProvider.Owner, name)
	}
	if database.Spec.ForProvider.ConnectionLimit == nil || *database.Spec.ForProvider.ConnectionLimit != -1 {
		t.Errorf("connectionLimit not late-initialized to -1: %v", database.Spec.ForProvider.ConnectionLimit)
	}
	if role.Spec.ForProvider.Privileges.CreateDB == nil || *role.Spec.ForProvider.Privileges.CreateDB {
		t.Errorf("createDb not late-initialized to false: %v", role.Spec.ForProvider.Privileges.CreateDB)
	}
	if got := strings.Join(grant.Status.AtProvider.Privileges, ","); got != "CONNECT,TEMPORARY" {
		t.Errorf("observed privileges = %s", got)
	}
	mt.HasEvent(t, env.Client, name, managed.EventCreated)

	// Log in with the published credentials.
	sec := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name + "-conn"}, sec); err != nil {
		t.Fatal(err)
	}
	if len(sec.Data["password"]) != 32 || string(sec.Data["username"]) != name {
		t.Fatalf("connection secret has username %q and a %d-byte password", sec.Data["username"], len(sec.Data["password"]))
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(string(sec.Data["username"]), string(sec.Data["password"])),
		Host: net.JoinHostPort(string(sec.Data["endpoint"]), string(sec.Data["port"])), Path: "/" + name, RawQuery: "sslmode=disable"}
	app, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("cannot log in with the published credentials: %v", err)
	}
	var who string
	if err := app.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != name {
		t.Errorf("current_user = %q, %v", who, err)
	}
	_ = app.Close(ctx)

	// The ProviderConfig reports its users and cannot go while it has any.
	mt.Eventually(t, wait, "ProviderConfig users", func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pc), pc); err != nil {
			return err
		}
		if pc.Status.Users != 3 {
			return fmt.Errorf("users = %d", pc.Status.Users)
		}
		return nil
	})
	if err := env.Client.Delete(ctx, pc); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, pc, conditions.Ready, metav1.ConditionFalse, managed.ReasonInUse, wait)
	if msg := conditions.Get(pc, conditions.Ready).Message; !strings.Contains(msg, "in use by 3 resource(s): Database/"+name) {
		t.Errorf("in-use message = %q", msg)
	}

	for _, o := range []client.Object{grant, database, role} {
		if err := env.Client.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []client.Object{grant, database, role, pc} {
		mt.WaitGone(t, env.Client, o, wait)
	}
	if exists(t, db, dbExists, name) || exists(t, db, roleExists, name) {
		t.Error("database or role left on the server after delete")
	}
	mt.WaitGone(t, env.Client, sec, wait)
}

// TestOddNamesAreQuoted proves identifiers and literals are quoted: a
// database named like an injection creates exactly that database, and a
// role's password with quotes works for login.
func TestOddNamesAreQuoted(t *testing.T) {
	db := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	pc := providerConfig(t, "pg-"+sfx, "")
	canary := "strata_canary_" + sfx
	if _, err := db.Exec(ctx, "CREATE TABLE "+canary+" (x int)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec(ctx, "DROP TABLE IF EXISTS "+canary) })
	odd := `a"; DROP TABLE ` + canary + `; --`

	d := &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: "odd-" + sfx, Annotations: map[string]string{managed.AnnotationExternalName: odd}},
		Spec: pgv1.DatabaseSpec{ResourceSpec: spec(pc.Name)}}
	pwSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pw-" + sfx},
		StringData: map[string]string{"pw": `p'w"; DROP TABLE ` + canary + `; --`}}
	oddRole := `r'"; DROP TABLE ` + canary + `; --`
	r := &pgv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "odd-" + sfx, Annotations: map[string]string{managed.AnnotationExternalName: oddRole}},
		Spec: pgv1.RoleSpec{ResourceSpec: spec(pc.Name), ForProvider: pgv1.RoleParameters{
			Privileges:        pgv1.RolePrivileges{Login: ptr(true)},
			PasswordSecretRef: &managedv1.SecretKeySelector{SecretReference: managedv1.SecretReference{Namespace: "default", Name: pwSecret.Name}, Key: "pw"},
		}}}
	for _, o := range []client.Object{pwSecret, d, r} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, pwSecret) })
	mt.WaitCondition(t, env.Client, d, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	mt.WaitCondition(t, env.Client, r, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	if !exists(t, db, dbExists, odd) {
		t.Errorf("no database named exactly %q", odd)
	}
	if !exists(t, db, "SELECT 1 FROM pg_tables WHERE tablename = $1", canary) {
		t.Fatal("the canary table was dropped: a name was not quoted")
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(oddRole, string(pwSecret.Data["pw"])), Host: "127.0.0.1:5432", Path: "/postgres"}
	if strings.Contains(mt.PostgresURL(), "@") {
		pu, _ := url.Parse(mt.PostgresURL())
		u.Host = pu.Host
	}
	// Trust auth may skip the password; the login at least proves the role
	// exists under exactly its odd name.
	if c, err := pgx.Connect(ctx, u.String()+"?sslmode=disable"); err != nil {
		t.Errorf("cannot log in as %q: %v", oddRole, err)
	} else {
		_ = c.Close(ctx)
	}
	for _, o := range []client.Object{d, r} {
		if err := env.Client.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
		mt.WaitGone(t, env.Client, o, wait)
	}
	if exists(t, db, dbExists, odd) || exists(t, db, roleExists, oddRole) {
		t.Error("odd database or role left after delete")
	}
	// A name PostgreSQL would truncate is rejected, not silently changed.
	long := &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: "long-" + sfx, Annotations: map[string]string{managed.AnnotationExternalName: strings.Repeat("x", 64)}},
		Spec: pgv1.DatabaseSpec{ResourceSpec: spec(pc.Name)}}
	if err := env.Client.Create(ctx, long); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, long, conditions.Stalled, metav1.ConditionTrue, "", wait)
	if msg := conditions.Get(long, conditions.Ready).Message; !strings.Contains(msg, "63-byte limit") {
		t.Errorf("message = %q", msg)
	}
	_ = env.Client.Delete(ctx, long)
	mt.WaitGone(t, env.Client, long, wait)
}

// TestOwnerDrift changes a database's owner behind Strata's back: it is
// corrected at the next poll, and with managementPolicies ["Observe"] only
// reported.
func TestOwnerDrift(t *testing.T) {
	db := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	pc := providerConfig(t, "pg-"+sfx, "")
	owner := "owner_" + sfx
	if _, err := db.Exec(ctx, "CREATE ROLE "+owner); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec(ctx, "DROP ROLE IF EXISTS "+owner) })
	owned := func(name string) string {
		var o string
		if err := db.QueryRow(ctx, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name).Scan(&o); err != nil {
			t.Fatal(err)
		}
		return o
	}

	managedName, observedName := "drift_"+sfx, "observed_"+sfx
	d := &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: "drift-" + sfx,
		Annotations: map[string]string{managed.AnnotationExternalName: managedName, managed.AnnotationPollInterval: "1s"}},
		Spec: pgv1.DatabaseSpec{ResourceSpec: spec(pc.Name), ForProvider: pgv1.DatabaseParameters{Owner: owner}}}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, d, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	if _, err := db.Exec(ctx, "ALTER DATABASE "+managedName+" OWNER TO postgres"); err != nil {
		t.Fatal(err)
	}
	mt.Eventually(t, wait, "owner drift corrected", func() error {
		if o := owned(managedName); o != owner {
			return fmt.Errorf("owner is %s", o)
		}
		return nil
	})
	mt.HasEvent(t, env.Client, d.Name, managed.EventUpdated)

	// Observe only: import an existing database; drift is reported, not fixed.
	if _, err := db.Exec(ctx, "CREATE DATABASE "+observedName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec(ctx, "DROP DATABASE IF EXISTS "+observedName) })
	o := &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: "observed-" + sfx,
		Annotations: map[string]string{managed.AnnotationExternalName: observedName, managed.AnnotationPollInterval: "1s"}},
		Spec: pgv1.DatabaseSpec{ResourceSpec: spec(pc.Name), ForProvider: pgv1.DatabaseParameters{Owner: owner}}}
	o.Spec.ManagementPolicies = managedv1.ManagementPolicies{managedv1.ManagementObserve}
	if err := env.Client.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, o, conditions.Synced, metav1.ConditionTrue, managed.ReasonDriftDetected, wait)
	if msg := conditions.Get(o, conditions.Synced).Message; !strings.Contains(msg, fmt.Sprintf(`owner is "postgres", want %q`, owner)) {
		t.Errorf("drift message = %q", msg)
	}
	if !conditions.IsTrue(o, conditions.Ready) || o.Status.AtProvider.Owner != "postgres" {
		t.Errorf("observed database: Ready=%v atProvider.owner=%q", conditions.IsTrue(o, conditions.Ready), o.Status.AtProvider.Owner)
	}
	mt.HasEvent(t, env.Client, o.Name, managed.EventDrift)
	if o.Spec.ForProvider.Encoding != "" || o.Spec.ForProvider.ConnectionLimit != nil {
		t.Errorf("Observe-only spec was late-initialized: %+v", o.Spec.ForProvider)
	}
	if o.Status.AtProvider.Encoding == "" {
		t.Error("Observe-only status.atProvider.encoding is empty")
	}
	time.Sleep(2500 * time.Millisecond) // two more polls must not change it
	if got := owned(observedName); got != "postgres" {
		t.Errorf("Observe-only database's owner changed to %s", got)
	}
	// Deleting an observed resource leaves the database.
	for _, x := range []client.Object{o, d} {
		if err := env.Client.Delete(ctx, x); err != nil {
			t.Fatal(err)
		}
		mt.WaitGone(t, env.Client, x, wait)
	}
	if !exists(t, db, dbExists, observedName) {
		t.Error("deleting an Observe-only Database dropped the database")
	}
	if exists(t, db, dbExists, managedName) {
		t.Error("managed database left after delete")
	}
}

// TestServerUnreachable cuts the connection to PostgreSQL for a while: the
// resource reports Ready=False with a clear message and recovers by itself.
func TestServerUnreachable(t *testing.T) {
	admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	pu, _ := url.Parse(mt.PostgresURL())
	proxy := mt.NewProxy(t, pu.Host)
	pc := providerConfig(t, "pg-"+sfx, proxy.Addr)
	d := &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: "down-" + sfx, Annotations: map[string]string{managed.AnnotationPollInterval: "1s"}},
		Spec: pgv1.DatabaseSpec{ResourceSpec: spec(pc.Name)}}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, d, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	proxy.Stop()
	mt.WaitCondition(t, env.Client, d, conditions.Ready, metav1.ConditionFalse, conditions.ReasonUnavailable, wait)
	msg := conditions.Get(d, conditions.Ready).Message
	if !strings.HasPrefix(msg, "cannot connect to postgres at "+proxy.Addr+": ") {
		t.Errorf("Ready message = %q, want it to name the server", msg)
	}
	if c := conditions.Get(d, conditions.Synced); c.Status != metav1.ConditionFalse || c.Reason != conditions.ReasonReconcileError {
		t.Errorf("Synced = %+v", c)
	}
	mt.HasEvent(t, env.Client, d.Name, managed.EventCannotConnect)
	proxy.Start()
	mt.WaitCondition(t, env.Client, d, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, time.Minute)
	if err := env.Client.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	mt.WaitGone(t, env.Client, d, wait)
}

// TestReferences: a reference to a missing Role says so in Synced until the
// Role exists and is Ready; a label selector resolves too.
func TestReferences(t *testing.T) {
	db := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	pc := providerConfig(t, "pg-"+sfx, "")
	name := "ref-" + sfx
	d := &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: pgv1.DatabaseSpec{ResourceSpec: spec(pc.Name),
		ForProvider: pgv1.DatabaseParameters{OwnerRef: &managedv1.Reference{Name: name}}}}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, d, conditions.Synced, metav1.ConditionFalse, managed.ReasonReferenceNotReady, wait)
	if msg := conditions.Get(d, conditions.Synced).Message; msg != fmt.Sprintf("referenced Role %q is not found", name) {
		t.Errorf("Synced message = %q", msg)
	}
	if c := conditions.Get(d, conditions.Ready); c.Status != metav1.ConditionFalse || c.Reason != conditions.ReasonDependencyNotReady {
		t.Errorf("Ready = %s/%s", c.Status, c.Reason)
	}
	if exists(t, db, dbExists, name) {
		t.Fatal("database created before its owner reference resolved")
	}
	r := &pgv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}}, Spec: pgv1.RoleSpec{ResourceSpec: spec(pc.Name)}}
	if err := env.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, d, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	if d.Status.AtProvider.Owner != name {
		t.Errorf("owner = %q, want %q", d.Status.AtProvider.Owner, name)
	}
	g := &pgv1.Grant{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: pgv1.GrantSpec{ResourceSpec: spec(pc.Name),
		ForProvider: pgv1.GrantParameters{RoleSelector: &managedv1.Selector{MatchLabels: map[string]string{"app": name}},
			DatabaseRef: &managedv1.Reference{Name: name}, Privileges: []pgv1.GrantPrivilege{"CONNECT"}}}}
	if err := env.Client.Create(ctx, g); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, g, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	if g.Spec.ForProvider.Role != name {
		t.Errorf("roleSelector resolved to %q, want %q", g.Spec.ForProvider.Role, name)
	}
	for _, o := range []client.Object{g, d, r} {
		if err := env.Client.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
		mt.WaitGone(t, env.Client, o, wait)
	}
	if exists(t, db, dbExists, name) || exists(t, db, roleExists, name) {
		t.Error("left on the server after delete")
	}
}

// TestAnotherTeamsRoleAndDatabaseAreNotTakenOver is the attack on a shared
// PostgreSQL server: a Role and a Database whose external names (a
// claimant's parameters, in a composition that passes them on) are those of
// another team's login role and database. Before, the Role took the login
// over and, as soon as its spec differed (a connection limit), set the
// password it publishes to its own connection Secret: the other team's
// login, handed to whoever wrote the name. Deleting the Database dropped
// the other team's data. Now both report the conflict and leave the server
// as it was, then and when they are deleted.
func TestAnotherTeamsRoleAndDatabaseAreNotTakenOver(t *testing.T) {
	db := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	pc := providerConfig(t, "pg-"+sfx, "")
	victim, victimDB := "team_"+sfx, "teamdb_"+sfx
	for _, q := range []string{
		"CREATE ROLE " + victim + " LOGIN CONNECTION LIMIT 3 PASSWORD 'their-password'",
		"CREATE DATABASE " + victimDB + " OWNER " + victim,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_, _ = db.Exec(ctx, "DROP DATABASE IF EXISTS "+victimDB)
		_, _ = db.Exec(ctx, "DROP ROLE IF EXISTS "+victim)
	})
	verifier := func() string {
		var v string
		if err := db.QueryRow(ctx, "SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = $1", victim).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	password := verifier()
	if password == "" {
		t.Fatal("the other team's role has no password")
	}
	ann := func(external string) map[string]string {
		return map[string]string{managed.AnnotationExternalName: external, managed.AnnotationPollInterval: "1s"}
	}
	role := &pgv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "grab-role-" + sfx, Annotations: ann(victim)},
		Spec: pgv1.RoleSpec{ResourceSpec: spec(pc.Name), ForProvider: pgv1.RoleParameters{
			Privileges: pgv1.RolePrivileges{Login: ptr(true)}, ConnectionLimit: ptr(int32(50))}}}
	role.Spec.WriteConnectionSecretToReference = &managedv1.SecretReference{Namespace: "default", Name: "grab-" + sfx}
	database := &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: "grab-db-" + sfx, Annotations: ann(victimDB)},
		Spec: pgv1.DatabaseSpec{ResourceSpec: spec(pc.Name), ForProvider: pgv1.DatabaseParameters{Owner: "postgres"}}}
	for _, o := range []client.Object{role, database} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	mt.WaitCondition(t, env.Client, role, conditions.Synced, metav1.ConditionFalse, managed.ReasonResourceConflict, wait)
	mt.WaitCondition(t, env.Client, database, conditions.Synced, metav1.ConditionFalse, managed.ReasonResourceConflict, wait)
	if msg := conditions.Get(role, conditions.Synced).Message; !strings.Contains(msg, fmt.Sprintf("external resource %q already exists and this resource did not create it", victim)) {
		t.Errorf("Role's Synced message = %q", msg)
	}
	if !conditions.IsTrue(database, conditions.Stalled) || conditions.IsTrue(database, conditions.Ready) {
		t.Errorf("Database conditions %+v, want Stalled and not Ready", database.Status.Conditions)
	}
	if role.Status.AtProvider.ConnectionLimit != nil || database.Status.AtProvider.Owner != "" {
		t.Errorf("the other team's settings were copied into status: role %+v, database %+v", role.Status.AtProvider, database.Status.AtProvider)
	}
	mt.HasEvent(t, env.Client, role.Name, managed.EventConflict)

	untouched := func(when string) {
		t.Helper()
		var limit int32
		var owner string
		if err := db.QueryRow(ctx, "SELECT rolconnlimit FROM pg_roles WHERE rolname = $1", victim).Scan(&limit); err != nil {
			t.Fatalf("%s: the other team's role: %v", when, err)
		}
		if err := db.QueryRow(ctx, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", victimDB).Scan(&owner); err != nil {
			t.Fatalf("%s: the other team's database: %v", when, err)
		}
		if limit != 3 || owner != victim {
			t.Errorf("%s: role connection limit %d (want 3), database owner %s (want %s)", when, limit, owner, victim)
		}
		// The test server may trust every local login, so the password is
		// compared as the server keeps it (its SCRAM verifier).
		if got := verifier(); got != password {
			t.Errorf("%s: the other team's password was changed", when)
		}
	}
	time.Sleep(3 * time.Second) // three polls
	untouched("after three polls")
	sec := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "grab-" + sfx}, sec); err == nil && len(sec.Data["username"]) > 0 {
		t.Errorf("connection details of the other team's role were published: keys %v", slices.Sorted(maps.Keys(sec.Data)))
	}

	for _, o := range []client.Object{role, database} {
		if err := env.Client.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
		mt.WaitGone(t, env.Client, o, wait)
	}
	untouched("after the Role and Database were deleted")
}

// TestProviderConfigAllowedClaimNamespaces: a ProviderConfig that lists the
// namespaces whose claims may use it refuses a Database composed for a claim
// elsewhere (the label the composition engine sets) before anything reaches
// the server, and takes it once its namespace is listed. A Database created
// directly (no claim) is not restricted.
func TestProviderConfigAllowedClaimNamespaces(t *testing.T) {
	db := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	pc := providerConfig(t, "pg-"+sfx, "")
	pc.Spec.AllowedClaimNamespaces = []string{"payments-" + sfx}
	if err := env.Client.Update(ctx, pc); err != nil {
		t.Fatal(err)
	}
	newDB := func(name, claimNS string) *pgv1.Database {
		d := &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{managed.AnnotationPollInterval: "1s"}},
			Spec: pgv1.DatabaseSpec{ResourceSpec: spec(pc.Name)}}
		if claimNS != "" {
			d.Labels = map[string]string{"strata.dev/claim-namespace": claimNS, "strata.dev/claim-name": "db"}
		}
		if err := env.Client.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = db.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()) })
		return d
	}
	other := newDB("other-"+sfx, "web-"+sfx)
	own := newDB("own-"+sfx, "payments-"+sfx)
	direct := newDB("direct-"+sfx, "")
	mt.WaitCondition(t, env.Client, other, conditions.Synced, metav1.ConditionFalse, managed.ReasonProviderConfigNotAllowed, wait)
	if msg := conditions.Get(other, conditions.Synced).Message; !strings.Contains(msg, fmt.Sprintf("ProviderConfig %q may not be used by claims in namespace web-%s", pc.Name, sfx)) {
		t.Errorf("Synced message = %q", msg)
	}
	if !conditions.IsTrue(other, conditions.Stalled) {
		t.Errorf("conditions %+v, want Stalled", other.Status.Conditions)
	}
	mt.WaitCondition(t, env.Client, own, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	mt.WaitCondition(t, env.Client, direct, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	time.Sleep(2 * time.Second) // two polls
	if exists(t, db, dbExists, other.Name) {
		t.Error("a Database of a claim in a namespace the ProviderConfig does not allow was created")
	}

	// Listing the namespace lets it through at its next poll.
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pc), pc); err != nil {
		t.Fatal(err)
	}
	pc.Spec.AllowedClaimNamespaces = append(pc.Spec.AllowedClaimNamespaces, "web-"+sfx)
	if err := env.Client.Update(ctx, pc); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, other, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	for _, d := range []*pgv1.Database{other, own, direct} {
		if err := env.Client.Delete(ctx, d); err != nil {
			t.Fatal(err)
		}
		mt.WaitGone(t, env.Client, d, wait)
		if exists(t, db, dbExists, d.Name) {
			t.Errorf("database %s left after delete", d.Name)
		}
	}
}
