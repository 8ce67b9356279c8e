package mysql_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/managed"
	mt "github.com/strata-dev/strata/internal/testenv/managedtest"
	myv1 "github.com/strata-dev/strata/providers/sql/apis/mysql/v1alpha1"
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

// TestProviderConfigWrongPassword: a ProviderConfig whose Secret holds a
// wrong password is Ready=False (ConnectionFailed) with a message that names
// the server and holds no secret; fixing the Secret makes it Ready.
func TestProviderConfigWrongPassword(t *testing.T) {
	_, cfg := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	wrong := "wrong-password-" + sfx
	bad := *cfg
	bad.Passwd = wrong
	pc := providerConfig(t, &bad, "my-"+sfx)
	mt.WaitCondition(t, env.Client, pc, conditions.Ready, metav1.ConditionFalse, managed.ReasonConnectionFailed, wait)
	msg := conditions.Get(pc, conditions.Ready).Message
	if !strings.Contains(msg, "mysql at "+cfg.Addr) || !strings.Contains(msg, "Access denied") {
		t.Errorf("Ready message = %q, want it to name the server and the refusal", msg)
	}
	mt.HasEvent(t, env.Client, pc.Name, managed.ReasonConnectionFailed)
	for _, m := range append(messagesAbout(t, pc.Name), msg) {
		if strings.Contains(m, wrong) {
			t.Errorf("the password shows in %q", m)
		}
	}
	// Fixing the Secret makes the ProviderConfig Ready at its next check.
	sec := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: pc.Name + "-creds"}, sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["password"] = []byte(cfg.Passwd)
	if err := env.Client.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, pc, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable, wait)
}

// TestUnknownCharacterSetStalls: a database with a character set the server
// does not know is Stalled (Rejected), not retried forever, and can be
// deleted.
func TestUnknownCharacterSetStalls(t *testing.T) {
	db, cfg := admin(t)
	start(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	pc := providerConfig(t, cfg, "my-"+sfx)
	d := &myv1.Database{ObjectMeta: metav1.ObjectMeta{Name: "charset-" + sfx},
		Spec: myv1.DatabaseSpec{ResourceSpec: spec(pc.Name), ForProvider: myv1.DatabaseParameters{CharacterSet: "no_such_charset"}}}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	mt.WaitCondition(t, env.Client, d, conditions.Stalled, metav1.ConditionTrue, managed.ReasonRejected, wait)
	if c := conditions.Get(d, conditions.Ready); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "no_such_charset") || !strings.Contains(c.Message, "mysql at "+cfg.Addr) {
		t.Errorf("Ready = %s %q, want False naming the character set and the server", c.Status, c.Message)
	}
	if conditions.Get(d, conditions.Reconciling) != nil {
		t.Error("a stalled resource is still Reconciling")
	}
	if n := count(t, db, dbCount, d.Name); n != 0 {
		t.Errorf("database %s exists on the server", d.Name)
	}
	if err := env.Client.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	mt.WaitGone(t, env.Client, d, wait)
}
