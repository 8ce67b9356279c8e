package postgresql_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/managed"
	mt "github.com/strata-dev/strata/internal/testenv/managedtest"
	pgv1 "github.com/strata-dev/strata/providers/sql/apis/postgresql/v1alpha1"
)

// messagesAbout returns the messages of every event about the named object.
func messagesAbout(t *testing.T, name string) []string {
	t.Helper()
	l := &corev1.EventList{}
	if err := env.Client.List(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range l.Items {
		if e.InvolvedObject.Name == name {
			out = append(out, e.Message)
		}
	}
	return out
}

// TestProviderConfigWrongCredentials: a ProviderConfig whose Secret names a
// login the server refuses is Ready=False (ConnectionFailed) with a message
// that names the server and holds no secret; fixing the Secret makes it
// Ready. (The test server trusts every password from 127.0.0.1, so the
// refused login is a user that may not log in, with a password.)
func TestProviderConfigWrongCredentials(t *testing.T) {
	db := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	nologin := "nologin_" + sfx
	if _, err := db.Exec(ctx, "CREATE ROLE "+nologin+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec(context.Background(), "DROP ROLE IF EXISTS "+nologin) })
	u, err := url.Parse(mt.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	pc := providerConfig(t, "pg-"+sfx, "")
	sec := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: pc.Name + "-creds"}, sec); err != nil {
		t.Fatal(err)
	}
	good := sec.DeepCopy()
	wrong := "wrong-password-" + sfx
	sec.Data["username"], sec.Data["password"] = []byte(nologin), []byte(wrong)
	if err := env.Client.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, pc, conditions.Ready, metav1.ConditionFalse, managed.ReasonConnectionFailed, wait)
	msg := conditions.Get(pc, conditions.Ready).Message
	if !strings.Contains(msg, "postgres at "+u.Host) || !strings.Contains(msg, "not permitted to log in") {
		t.Errorf("Ready message = %q, want it to name the server and the refusal", msg)
	}
	mt.HasEvent(t, env.Client, pc.Name, managed.ReasonConnectionFailed)
	for _, m := range append(messagesAbout(t, pc.Name), msg) {
		if strings.Contains(m, wrong) {
			t.Errorf("the password shows in %q", m)
		}
	}
	// A resource using it is not created either, and says why.
	d := &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: "creds-" + sfx}, Spec: pgv1.DatabaseSpec{ResourceSpec: spec(pc.Name)}}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, d, conditions.Ready, metav1.ConditionFalse, conditions.ReasonUnavailable, wait)
	if m := conditions.Get(d, conditions.Ready).Message; strings.Contains(m, wrong) || !strings.Contains(m, "postgres at "+u.Host) {
		t.Errorf("Database Ready message = %q, want the server named and no password", m)
	}
	// Fixing the Secret makes both Ready.
	sec.Data = good.Data
	if err := env.Client.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, pc, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	mt.WaitCondition(t, env.Client, d, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
	if err := env.Client.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	mt.WaitGone(t, env.Client, d, wait)
}

// TestUnknownEncodingStalls: a database with an encoding the server does not
// know is Stalled (Rejected), not retried forever, and can be deleted.
func TestUnknownEncodingStalls(t *testing.T) {
	db := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	pc := providerConfig(t, "pg-"+sfx, "")
	d := &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: "enc-" + sfx},
		Spec: pgv1.DatabaseSpec{ResourceSpec: spec(pc.Name), ForProvider: pgv1.DatabaseParameters{Encoding: "NO_SUCH_ENCODING"}}}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, d, conditions.Stalled, metav1.ConditionTrue, managed.ReasonRejected, wait)
	c := conditions.Get(d, conditions.Ready)
	if c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "NO_SUCH_ENCODING") || !strings.Contains(c.Message, "cannot create database") {
		t.Errorf("Ready = %s %q, want False naming the database and the encoding", c.Status, c.Message)
	}
	if conditions.Get(d, conditions.Reconciling) != nil {
		t.Error("a stalled resource is still Reconciling")
	}
	if exists(t, db, dbExists, d.Name) {
		t.Errorf("database %s exists on the server", d.Name)
	}
	if err := env.Client.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	mt.WaitGone(t, env.Client, d, wait)
}
