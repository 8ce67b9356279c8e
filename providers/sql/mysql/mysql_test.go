package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/managed"
	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
	"github.com/strata-dev/strata/internal/testenv"
	mt "github.com/strata-dev/strata/internal/testenv/managedtest"
	myv1 "github.com/strata-dev/strata/providers/sql/apis/mysql/v1alpha1"
	provider "github.com/strata-dev/strata/providers/sql/mysql"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env, testenv.Start)) }

const wait = 30 * time.Second

// admin connects to the test MariaDB/MySQL server as root, failing the test
// with how to start it when it is unreachable.
func admin(t *testing.T) (*sql.DB, *mysql.Config) {
	t.Helper()
	cfg, err := mysql.ParseDSN(mt.MySQLDSN())
	if err != nil {
		t.Fatalf("invalid STRATA_TEST_MYSQL_DSN: %v", err)
	}
	cfg.InterpolateParams = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	if err != nil {
		t.Fatalf("MariaDB/MySQL at %s is not reachable: %v\nstart it (e.g. `service mariadb start`; user root with an empty password on 127.0.0.1:3306) or point STRATA_TEST_MYSQL_DSN at one", cfg.Addr, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, cfg
}

func providerConfig(t *testing.T, cfg *mysql.Config, name string) *myv1.ProviderConfig {
	t.Helper()
	ctx := context.Background()
	host, port, _ := net.SplitHostPort(cfg.Addr)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name + "-creds"},
		StringData: map[string]string{"endpoint": host, "port": port, "username": cfg.User, "password": cfg.Passwd}}
	pc := &myv1.ProviderConfig{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: myv1.ProviderConfigSpec{ConnectionSecretRef: managedv1.SecretReference{Namespace: "default", Name: sec.Name}}}
	for _, o := range []client.Object{sec, pc} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, pc); _ = env.Client.Delete(ctx, sec) })
	return pc
}

func start(t *testing.T) {
	mt.StartManager(t, env.Config, func(m ctrl.Manager) error { return provider.Setup(m, managed.Options{}) })
}

func spec(pc string) managedv1.ResourceSpec {
	return managedv1.ResourceSpec{ProviderConfigReference: &managedv1.Reference{Name: pc}}
}

func count(t *testing.T, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

const (
	dbCount   = "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?"
	userCount = "SELECT count(*) FROM mysql.user WHERE User = ?"
)

// TestUserDatabaseGrant: a user with a generated password, a database and a
// grant by reference; a client logs in with the published credentials and
// uses the database; deleting removes everything.
func TestUserDatabaseGrant(t *testing.T) {
	db, cfg := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	pc := providerConfig(t, cfg, "my-"+sfx)
	name := "app_" + sfx // an underscore: a GRANT wildcard unless escaped

	u := &myv1.User{ObjectMeta: metav1.ObjectMeta{Name: "app-" + sfx, Annotations: map[string]string{managed.AnnotationExternalName: name}},
		Spec: myv1.UserSpec{ResourceSpec: spec(pc.Name), ForProvider: myv1.UserParameters{
			ResourceLimits: myv1.ResourceLimits{MaxUserConnections: ptr(int32(5))}}}}
	u.Spec.WriteConnectionSecretToReference = &managedv1.SecretReference{Namespace: "default", Name: "app-" + sfx + "-conn"}
	d := &myv1.Database{ObjectMeta: metav1.ObjectMeta{Name: "app-" + sfx, Annotations: map[string]string{managed.AnnotationExternalName: name}},
		Spec: myv1.DatabaseSpec{ResourceSpec: spec(pc.Name), ForProvider: myv1.DatabaseParameters{CharacterSet: "utf8mb4"}}}
	g := &myv1.Grant{ObjectMeta: metav1.ObjectMeta{Name: "app-" + sfx},
		Spec: myv1.GrantSpec{ResourceSpec: spec(pc.Name), ForProvider: myv1.GrantParameters{
			UserRef: &managedv1.Reference{Name: u.Name}, DatabaseRef: &managedv1.Reference{Name: d.Name},
			Privileges: []myv1.GrantPrivilege{"SELECT", "INSERT", "CREATE"}}}}
	for _, o := range []client.Object{g, d, u} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	mt.WaitCondition(t, env.Client, g, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	mt.WaitCondition(t, env.Client, d, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	mt.WaitCondition(t, env.Client, u, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	if d.Spec.ForProvider.Collation == "" {
		t.Error("collation was not late-initialized")
	}
	if got := strings.Join(g.Status.AtProvider.Privileges, ","); got != "CREATE,INSERT,SELECT" {
		t.Errorf("observed privileges = %s", got)
	}
	mt.HasEvent(t, env.Client, g.Name, managed.EventCreated)

	sec := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: u.Spec.WriteConnectionSecretToReference.Name}, sec); err != nil {
		t.Fatal(err)
	}
	app := mysql.NewConfig()
	app.User, app.Passwd, app.Net = string(sec.Data["username"]), string(sec.Data["password"]), "tcp"
	app.Addr, app.DBName = net.JoinHostPort(string(sec.Data["endpoint"]), string(sec.Data["port"])), name
	adb, err := sql.Open("mysql", app.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adb.Exec("CREATE TABLE t (x int)"); err != nil {
		t.Errorf("cannot use the database with the published credentials: %v", err)
	}
	if _, err := adb.Exec("DROP TABLE t"); err == nil {
		t.Error("DROP succeeded without the DROP privilege")
	}
	_ = adb.Close()

	// Drift of privileges is corrected.
	if _, err := db.Exec("REVOKE INSERT ON "+provider.QuoteIdentifier(strings.ReplaceAll(name, "_", `\_`))+".* FROM ?@'%'", name); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(g), g); err != nil {
		t.Fatal(err)
	}
	g.Annotations = map[string]string{managed.AnnotationPollInterval: "1s"}
	if err := env.Client.Update(ctx, g); err != nil {
		t.Fatal(err)
	}
	mt.HasEvent(t, env.Client, g.Name, managed.EventUpdated)

	for _, o := range []client.Object{g, d, u} {
		if err := env.Client.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []client.Object{g, d, u} {
		mt.WaitGone(t, env.Client, o, wait)
	}
	if count(t, db, dbCount, name) != 0 || count(t, db, userCount, name) != 0 {
		t.Error("database or user left on the server after delete")
	}
	mt.WaitGone(t, env.Client, sec, wait)
}

// TestOddNamesAreQuoted: a database and a user named like injections are
// created under exactly those names, and the canary table survives.
func TestOddNamesAreQuoted(t *testing.T) {
	db, cfg := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	pc := providerConfig(t, cfg, "my-"+sfx)
	scratch := "strata_canary_" + sfx
	if _, err := db.Exec("CREATE DATABASE " + scratch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec("DROP DATABASE IF EXISTS " + scratch) })
	if _, err := db.Exec("CREATE TABLE " + scratch + ".x (y int)"); err != nil {
		t.Fatal(err)
	}
	oddDB := "a`; DROP TABLE " + scratch + ".x; --"
	oddUser := `u'"; DROP TABLE ` + scratch + `.x; --`
	d := &myv1.Database{ObjectMeta: metav1.ObjectMeta{Name: "odd-" + sfx, Annotations: map[string]string{managed.AnnotationExternalName: oddDB}},
		Spec: myv1.DatabaseSpec{ResourceSpec: spec(pc.Name)}}
	pw := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pw-" + sfx}, StringData: map[string]string{"pw": oddPassword}}
	u := &myv1.User{ObjectMeta: metav1.ObjectMeta{Name: "odd-" + sfx, Annotations: map[string]string{managed.AnnotationExternalName: oddUser}},
		Spec: myv1.UserSpec{ResourceSpec: spec(pc.Name), ForProvider: myv1.UserParameters{Host: "127.0.0.1",
			PasswordSecretRef: &managedv1.SecretKeySelector{SecretReference: managedv1.SecretReference{Namespace: "default", Name: pw.Name}, Key: "pw"}}}}
	g := &myv1.Grant{ObjectMeta: metav1.ObjectMeta{Name: "odd-" + sfx},
		Spec: myv1.GrantSpec{ResourceSpec: spec(pc.Name), ForProvider: myv1.GrantParameters{
			UserRef: &managedv1.Reference{Name: u.Name}, DatabaseRef: &managedv1.Reference{Name: d.Name},
			Privileges: []myv1.GrantPrivilege{"ALL"}}}}
	for _, o := range []client.Object{pw, d, u, g} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, pw) })
	mt.WaitCondition(t, env.Client, g, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	if count(t, db, dbCount, oddDB) != 1 {
		t.Errorf("no database named exactly %q", oddDB)
	}
	if count(t, db, "SELECT count(*) FROM mysql.user WHERE User = ? AND Host = '127.0.0.1'", oddUser) != 1 {
		t.Errorf("no user named exactly %q", oddUser)
	}
	if count(t, db, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'x'", scratch) != 1 {
		t.Fatal("the canary table was dropped: a name was not quoted")
	}
	// The odd user logs in with the odd password and sees the odd database.
	app := mysql.NewConfig()
	app.User, app.Passwd, app.Net, app.Addr, app.DBName = oddUser, oddPassword, "tcp", cfg.Addr, oddDB
	adb, _ := sql.Open("mysql", app.FormatDSN())
	if err := adb.Ping(); err != nil {
		t.Errorf("cannot log in as %q with the odd password: %v", oddUser, err)
	}
	_ = adb.Close()
	for _, o := range []client.Object{g, d, u} {
		if err := env.Client.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
		mt.WaitGone(t, env.Client, o, wait)
	}
	if count(t, db, dbCount, oddDB) != 0 || count(t, db, userCount, oddUser) != 0 {
		t.Error("odd database or user left after delete")
	}
}

func TestQuoteIdentifier(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"plain":    {"app", "`app`"},
		"backtick": {"a`b", "`a``b`"},
		"inject":   {"x`; DROP TABLE y; --", "`x``; DROP TABLE y; --`"},
		"quotes":   {`a'"b`, "`a'\"b`"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := provider.QuoteIdentifier(tc.in); got != tc.want {
				t.Errorf("QuoteIdentifier(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

const oddPassword = `p'w\"; --`

func ptr[T any](v T) *T { return &v }

// TestPasswordRotation: changing the Secret behind passwordSecretRef changes
// the user's password at the next poll, and the connection Secret with it.
func TestPasswordRotation(t *testing.T) {
	db, cfg := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	pc := providerConfig(t, cfg, "my-"+sfx)
	name := "rot_" + sfx
	pw := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "rot-" + sfx}, StringData: map[string]string{"pw": "first-" + sfx}}
	u := &myv1.User{ObjectMeta: metav1.ObjectMeta{Name: "rot-" + sfx, Annotations: map[string]string{
		managed.AnnotationExternalName: name, managed.AnnotationPollInterval: "1s"}},
		Spec: myv1.UserSpec{ResourceSpec: spec(pc.Name), ForProvider: myv1.UserParameters{Host: "127.0.0.1",
			PasswordSecretRef: &managedv1.SecretKeySelector{SecretReference: managedv1.SecretReference{Namespace: "default", Name: pw.Name}, Key: "pw"}}}}
	u.Spec.WriteConnectionSecretToReference = &managedv1.SecretReference{Namespace: "default", Name: "rot-" + sfx + "-conn"}
	for _, o := range []client.Object{pw, u} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, pw) })
	mt.WaitCondition(t, env.Client, u, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	login := func(password string) error {
		c := mysql.NewConfig()
		c.User, c.Passwd, c.Net, c.Addr = name, password, "tcp", cfg.Addr
		d, err := sql.Open("mysql", c.FormatDSN())
		if err != nil {
			return err
		}
		defer d.Close()
		return d.Ping()
	}
	if err := login("first-" + sfx); err != nil {
		t.Fatalf("cannot log in with the first password: %v", err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pw), pw); err != nil {
		t.Fatal(err)
	}
	pw.Data["pw"] = []byte("second-" + sfx)
	if err := env.Client.Update(ctx, pw); err != nil {
		t.Fatal(err)
	}
	mt.Eventually(t, wait, "password rotated", func() error { return login("second-" + sfx) })
	mt.Eventually(t, wait, "connection Secret updated", func() error {
		s := &corev1.Secret{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: u.Spec.WriteConnectionSecretToReference.Name}, s); err != nil {
			return err
		}
		if string(s.Data["password"]) != "second-"+sfx {
			return errors.New("connection Secret still has the old password")
		}
		return nil
	})
	if err := login("first-" + sfx); err == nil {
		t.Error("the old password still works")
	}
	if err := env.Client.Delete(ctx, u); err != nil {
		t.Fatal(err)
	}
	mt.WaitGone(t, env.Client, u, wait)
	if count(t, db, userCount, name) != 0 {
		t.Error("user left after delete")
	}
}

// TestServerUnreachable: with the server cut off, a Database reports
// Ready=False naming the server, and recovers when it is back.
func TestServerUnreachable(t *testing.T) {
	_, cfg := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	proxy := mt.NewProxy(t, cfg.Addr)
	via := *cfg
	via.Addr = proxy.Addr
	pc := providerConfig(t, &via, "my-"+sfx)
	d := &myv1.Database{ObjectMeta: metav1.ObjectMeta{Name: "down-" + sfx, Annotations: map[string]string{managed.AnnotationPollInterval: "1s"}},
		Spec: myv1.DatabaseSpec{ResourceSpec: spec(pc.Name)}}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, d, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	proxy.Stop()
	mt.WaitCondition(t, env.Client, d, conditions.Ready, metav1.ConditionFalse, conditions.ReasonUnavailable, wait)
	if msg := conditions.Get(d, conditions.Ready).Message; !strings.HasPrefix(msg, "cannot connect to mysql at "+proxy.Addr+": ") {
		t.Errorf("Ready message = %q, want it to name the server", msg)
	}
	proxy.Start()
	mt.WaitCondition(t, env.Client, d, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, time.Minute)
	if err := env.Client.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	mt.WaitGone(t, env.Client, d, wait)
}

// TestAnotherTeamsUserAndDatabaseAreNotTakenOver is the takeover attack on a
// shared MariaDB/MySQL server: a User and a Database whose external names are
// another team's account and schema. Both report the conflict; the account's
// password and limits, and the schema with its data, stay as they were, and
// deleting the two resources leaves them.
func TestAnotherTeamsUserAndDatabaseAreNotTakenOver(t *testing.T) {
	db, cfg := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	pc := providerConfig(t, cfg, "my-"+sfx)
	victim := "team_" + sfx
	for _, q := range []string{
		"CREATE USER " + provider.QuoteIdentifier(victim) + "@'%' IDENTIFIED BY 'their-password' WITH MAX_USER_CONNECTIONS 3",
		"CREATE DATABASE " + provider.QuoteIdentifier(victim),
		"CREATE TABLE " + provider.QuoteIdentifier(victim) + ".orders (id int)",
		"INSERT INTO " + provider.QuoteIdentifier(victim) + ".orders VALUES (1)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + provider.QuoteIdentifier(victim))
		_, _ = db.Exec("DROP USER IF EXISTS ?@'%'", victim)
	})
	account := func() string {
		var auth string
		var limit int
		if err := db.QueryRow("SELECT authentication_string, max_user_connections FROM mysql.user WHERE User = ? AND Host = '%'", victim).Scan(&auth, &limit); err != nil {
			t.Fatalf("the other team's account: %v", err)
		}
		return fmt.Sprintf("%s/%d", auth, limit)
	}
	before := account()
	ann := map[string]string{managed.AnnotationExternalName: victim, managed.AnnotationPollInterval: "1s"}
	u := &myv1.User{ObjectMeta: metav1.ObjectMeta{Name: "grab-user-" + sfx, Annotations: ann},
		Spec: myv1.UserSpec{ResourceSpec: spec(pc.Name), ForProvider: myv1.UserParameters{
			ResourceLimits: myv1.ResourceLimits{MaxUserConnections: ptr(int32(50))}}}}
	u.Spec.WriteConnectionSecretToReference = &managedv1.SecretReference{Namespace: "default", Name: "grab-" + sfx}
	d := &myv1.Database{ObjectMeta: metav1.ObjectMeta{Name: "grab-db-" + sfx, Annotations: ann},
		Spec: myv1.DatabaseSpec{ResourceSpec: spec(pc.Name), ForProvider: myv1.DatabaseParameters{CharacterSet: "latin1"}}}
	for _, o := range []client.Object{u, d} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	mt.WaitCondition(t, env.Client, u, conditions.Synced, metav1.ConditionFalse, managed.ReasonResourceConflict, wait)
	mt.WaitCondition(t, env.Client, d, conditions.Synced, metav1.ConditionFalse, managed.ReasonResourceConflict, wait)
	untouched := func(when string) {
		t.Helper()
		if got := account(); got != before {
			t.Errorf("%s: the other team's account changed (password or connection limit)", when)
		}
		if n := count(t, db, "SELECT count(*) FROM "+provider.QuoteIdentifier(victim)+".orders"); n != 1 {
			t.Errorf("%s: the other team's table has %d rows, want 1", when, n)
		}
		var charset string
		if err := db.QueryRow("SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", victim).Scan(&charset); err != nil || charset == "latin1" {
			t.Errorf("%s: the other team's schema has character set %q (%v)", when, charset, err)
		}
	}
	time.Sleep(3 * time.Second) // three polls
	untouched("after three polls")
	for _, o := range []client.Object{u, d} {
		if err := env.Client.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
		mt.WaitGone(t, env.Client, o, wait)
	}
	untouched("after the User and Database were deleted")
}
