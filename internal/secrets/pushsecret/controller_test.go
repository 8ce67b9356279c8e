package pushsecret_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/secrets/provider"
	"github.com/strata-dev/strata/internal/secrets/provider/vault"
	"github.com/strata-dev/strata/internal/secrets/pushsecret"
	"github.com/strata-dev/strata/internal/testenv"
	"github.com/strata-dev/strata/internal/testenv/managedtest"
	"github.com/strata-dev/strata/internal/testenv/vaulttest"
)

var (
	env *testenv.Env
	vs  *vaulttest.Server
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	s, stop, err := vaulttest.StartServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	vs = s
	return testenv.Main(m, &env, testenv.Start)
}

// stores resolves every store name to the test Vault's KV v2 at secret/
// with the root token: this test is about the PushSecret controller, the
// store rules are the secrets controller's.
type stores struct{}

func (stores) Client(_ context.Context, _ string, ref secretsv1.PushSecretStoreRef) (provider.Client, error) {
	if ref.Name == "missing" {
		return nil, fmt.Errorf("SecretStore %s not found", ref.Name)
	}
	return vault.New(vault.Config{Server: vs.Addr, Path: "secret", Auth: vault.Auth{Token: vs.RootToken}})
}

const pw = "pg-password-never-shown"

func start(t *testing.T) {
	managedtest.StartManager(t, env.Config, func(mgr ctrl.Manager) error {
		return pushsecret.Setup(mgr, mgr.GetClient(), stores{}, 2)
	})
}

func namespace(t *testing.T) string {
	ns := "ps-" + managedtest.Suffix()
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return ns
}

func secret(t *testing.T, ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

func pushSecret(ns, name, source, key, remoteKey, property string, policy secretsv1.PushSecretDeletionPolicy) *secretsv1.PushSecret {
	return &secretsv1.PushSecret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: secretsv1.PushSecretSpec{
			SecretStoreRefs: []secretsv1.PushSecretStoreRef{{Name: "vault", Kind: secretsv1.SecretStoreKind}},
			Selector:        secretsv1.PushSecretSelector{Secret: secretsv1.PushSecretSecret{Name: source}},
			Data:            []secretsv1.PushSecretData{{Match: secretsv1.PushSecretMatch{SecretKey: key, RemoteRef: secretsv1.PushSecretRemoteRef{RemoteKey: remoteKey, Property: property}}}},
			DeletionPolicy:  policy,
			RefreshInterval: &metav1.Duration{Duration: time.Hour},
		},
	}
}

func vaultValue(t *testing.T, key, property string) func() (string, bool) {
	return func() (string, bool) {
		d := vs.Get(t, "secret", key)
		v, ok := d[property].(string)
		return v, ok
	}
}

func TestPushAndDelete(t *testing.T) {
	start(t)
	ctx := context.Background()
	ns := namespace(t)
	key := "apps/" + ns + "/db"
	src := secret(t, ns, "db-conn", map[string]string{"password": pw, "username": "app"})
	ps := pushSecret(ns, "db", "db-conn", "password", key, "password", secretsv1.PushSecretDeletionPolicyDelete)
	if err := env.Client.Create(ctx, ps); err != nil {
		t.Fatal(err)
	}
	managedtest.WaitCondition(t, env.Client, ps, conditions.Ready, metav1.ConditionTrue, secretsv1.ReasonPushSynced, 30*time.Second)
	if v, _ := vaultValue(t, key, "password")(); v != pw {
		t.Fatalf("vault has %q", v)
	}
	if got := vs.Metadata(t, "secret", key)["strata.dev/pushed-by.password"]; got != "pushsecret/"+ns+"/db" {
		t.Errorf("owner record %v", got)
	}
	managedtest.HasEvent(t, env.Client, "db", pushsecret.EventSynced)
	if strings.Contains(fmt.Sprint(ps.Status), pw) {
		t.Error("status shows the value")
	}

	// A rotated password reaches Vault.
	src.StringData = map[string]string{"password": "rotated"}
	if err := env.Client.Update(ctx, src); err != nil {
		t.Fatal(err)
	}
	managedtest.Eventually(t, 30*time.Second, "rotated password in vault", func() error {
		if v, _ := vaultValue(t, key, "password")(); v != "rotated" {
			return fmt.Errorf("vault has another value")
		}
		return nil
	})

	// deletionPolicy Delete: deleting the PushSecret removes the key.
	if err := env.Client.Delete(ctx, ps); err != nil {
		t.Fatal(err)
	}
	managedtest.WaitGone(t, env.Client, ps, 30*time.Second)
	if d := vs.Get(t, "secret", key); d != nil {
		t.Errorf("vault still has %s", key)
	}
}

func TestRefusesAnotherWritersValue(t *testing.T) {
	start(t)
	ctx := context.Background()
	victimNS, attackerNS := namespace(t), namespace(t)
	key := "apps/" + victimNS + "/shared"
	secret(t, victimNS, "src", map[string]string{"password": pw})
	victim := pushSecret(victimNS, "victim", "src", "password", key, "password", secretsv1.PushSecretDeletionPolicyDelete)
	if err := env.Client.Create(ctx, victim); err != nil {
		t.Fatal(err)
	}
	managedtest.WaitCondition(t, env.Client, victim, conditions.Ready, metav1.ConditionTrue, secretsv1.ReasonPushSynced, 30*time.Second)

	// Attack 1: another tenant's PushSecret aims at the same property.
	secret(t, attackerNS, "src", map[string]string{"password": "attacker"})
	attacker := pushSecret(attackerNS, "attacker", "src", "password", key, "password", secretsv1.PushSecretDeletionPolicyDelete)
	if err := env.Client.Create(ctx, attacker); err != nil {
		t.Fatal(err)
	}
	managedtest.WaitCondition(t, env.Client, attacker, conditions.Stalled, metav1.ConditionTrue, secretsv1.ReasonPushErrored, 30*time.Second)
	if msg := conditions.Get(attacker, conditions.Ready).Message; !strings.Contains(msg, "written by pushsecret/"+victimNS+"/victim") || !strings.Contains(msg, key) {
		t.Errorf("message: %s", msg)
	}
	// Attack 2: a field a human wrote, without any record.
	vs.Put(t, "secret", "apps/"+attackerNS+"/human", map[string]any{"token": "by-hand"})
	human := pushSecret(attackerNS, "human", "src", "password", "apps/"+attackerNS+"/human", "token", secretsv1.PushSecretDeletionPolicyDelete)
	if err := env.Client.Create(ctx, human); err != nil {
		t.Fatal(err)
	}
	managedtest.WaitCondition(t, env.Client, human, conditions.Stalled, metav1.ConditionTrue, secretsv1.ReasonPushErrored, 30*time.Second)
	// Deleting the refused PushSecrets deletes nothing of the victims.
	for _, o := range []client.Object{attacker, human} {
		if err := env.Client.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
		managedtest.WaitGone(t, env.Client, o, 30*time.Second)
	}
	if v, _ := vaultValue(t, key, "password")(); v != pw {
		t.Errorf("victim's value changed")
	}
	if v, _ := vaultValue(t, "apps/"+attackerNS+"/human", "token")(); v != "by-hand" {
		t.Errorf("human's value changed")
	}
	if got := vs.Metadata(t, "secret", key)["strata.dev/pushed-by.password"]; got != "pushsecret/"+victimNS+"/victim" {
		t.Errorf("owner record %v", got)
	}
}

func TestBadInput(t *testing.T) {
	start(t)
	ctx := context.Background()
	ns := namespace(t)
	noSrc := pushSecret(ns, "no-source", "absent", "password", "apps/"+ns+"/x", "p", secretsv1.PushSecretDeletionPolicyNone)
	if err := env.Client.Create(ctx, noSrc); err != nil {
		t.Fatal(err)
	}
	managedtest.WaitCondition(t, env.Client, noSrc, conditions.Ready, metav1.ConditionFalse, secretsv1.ReasonPushSecretNotFound, 30*time.Second)
	if msg := conditions.Get(noSrc, conditions.Ready).Message; !strings.Contains(msg, ns+"/absent") {
		t.Errorf("message: %s", msg)
	}
	secret(t, ns, "src", map[string]string{"user": "u"})
	noKey := pushSecret(ns, "no-key", "src", "password", "apps/"+ns+"/x", "p", secretsv1.PushSecretDeletionPolicyNone)
	if err := env.Client.Create(ctx, noKey); err != nil {
		t.Fatal(err)
	}
	managedtest.WaitCondition(t, env.Client, noKey, conditions.Ready, metav1.ConditionFalse, secretsv1.ReasonPushSecretNotFound, 30*time.Second)
	if msg := conditions.Get(noKey, conditions.Ready).Message; !strings.Contains(msg, `no key "password"`) {
		t.Errorf("message: %s", msg)
	}
	// The Secret appearing with the key wakes the PushSecret.
	secret(t, ns, "absent", map[string]string{"password": pw})
	managedtest.WaitCondition(t, env.Client, noSrc, conditions.Ready, metav1.ConditionTrue, secretsv1.ReasonPushSynced, 30*time.Second)
	if vs.Get(t, "secret", "apps/"+ns+"/x")["p"] != pw {
		t.Error("not pushed")
	}
	badStore := pushSecret(ns, "bad-store", "src", "user", "apps/"+ns+"/y", "p", secretsv1.PushSecretDeletionPolicyNone)
	badStore.Spec.SecretStoreRefs[0].Name = "missing"
	if err := env.Client.Create(ctx, badStore); err != nil {
		t.Fatal(err)
	}
	managedtest.WaitCondition(t, env.Client, badStore, conditions.Ready, metav1.ConditionFalse, secretsv1.ReasonPushErrored, 30*time.Second)
	managedtest.HasEvent(t, env.Client, "bad-store", pushsecret.EventErrored)
}
