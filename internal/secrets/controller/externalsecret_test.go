package controller

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/testenv"
)

func TestSyncFromFakeStore(t *testing.T) {
	ns := namespace(t, nil)
	st := fakeStore(ns, "fake",
		secretsv1.FakeProviderData{Key: "db", ValueMap: map[string]string{"user": "app", "password": "hunter2-one"}},
		secretsv1.FakeProviderData{Key: "token", Value: "tok-one"})
	es := externalSecret(ns, "app", "fake", item("password", "db", "password"), item("token", "token", ""))
	es.Spec.Target.Template = &secretsv1.ExternalSecretTemplate{MergePolicy: "Merge",
		Data:     map[string]string{"dsn": "postgres://app:{{ .password }}@db"},
		Metadata: secretsv1.ExternalSecretTemplateMetadata{Labels: map[string]string{"team": "a"}}}
	create(t, st, es)
	ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)
	msg := ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	if !strings.Contains(msg, "SecretStore "+ns+"/fake") {
		t.Errorf("message %q does not name the store", msg)
	}
	want := map[string]string{"password": "hunter2-one", "token": "tok-one", "dsn": "postgres://app:hunter2-one@db"}
	if d := cmp.Diff(want, secretData(t, ns, "app")); d != "" {
		t.Errorf("Secret data (-want +got):\n%s", d)
	}
	s := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, s); err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(s); ref == nil || ref.UID != es.UID {
		t.Errorf("Secret is not controlled by the ExternalSecret: %v", s.OwnerReferences)
	}
	if s.Labels["team"] != "a" {
		t.Errorf("template label missing: %v", s.Labels)
	}
	managers := map[string]bool{}
	for _, f := range s.ManagedFields {
		managers[f.Manager] = true
	}
	if !managers["strata/externalsecret/"+ns+"/app"] {
		t.Errorf("Secret not written by the ExternalSecret's field manager: %v", managers)
	}
	if es.Status.Binding.Name != "app" || es.Status.RefreshTime.IsZero() || es.Status.SyncedResourceVersion == "" || es.Status.ObservedGeneration != es.Generation {
		t.Errorf("status incomplete: %+v", es.Status)
	}

	// Rotation: the store changes, a manual refresh picks it up.
	setFake(t, st,
		secretsv1.FakeProviderData{Key: "db", ValueMap: map[string]string{"user": "app", "password": "hunter2-two"}},
		secretsv1.FakeProviderData{Key: "token", Value: "tok-one"})
	ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)
	refresh(t, es)
	eventually(t, "the rotated password", func() (bool, string) {
		d := secretData(t, ns, "app")
		return d["password"] == "hunter2-two" && d["dsn"] == "postgres://app:hunter2-two@db", d["dsn"]
	})
	noValueLeaks(t, ns, "hunter2-one", "hunter2-two", "tok-one")
}

// A key the store does not have is KeyNotFound naming store, key and
// property, and the last good Secret stays (deletionPolicy Retain).
func TestKeyNotFoundKeepsLastGoodSecret(t *testing.T) {
	ns := namespace(t, nil)
	st := fakeStore(ns, "fake", secretsv1.FakeProviderData{Key: "db", ValueMap: map[string]string{"password": "good-value"}})
	es := externalSecret(ns, "app", "fake", item("password", "db", "password"))
	create(t, st, es)
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)

	setFake(t, st, secretsv1.FakeProviderData{Key: "db", ValueMap: map[string]string{"other": "x"}})
	ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)
	refresh(t, es)
	msg := ready(t, es, metav1.ConditionFalse, secretsv1.ReasonKeyNotFound)
	for _, w := range []string{"SecretStore " + ns + "/fake", `key "db"`, `property "password"`, "keeps its last synced data"} {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q does not contain %q", msg, w)
		}
	}
	if d := cmp.Diff(map[string]string{"password": "good-value"}, secretData(t, ns, "app")); d != "" {
		t.Errorf("last good Secret changed (-want +got):\n%s", d)
	}
	noValueLeaks(t, ns, "good-value")
}

// deletionPolicy Delete: a key that disappears leaves the Secret, and the
// Secret goes when every key is gone (ESO #4560).
func TestDeletionPolicyDelete(t *testing.T) {
	ns := namespace(t, nil)
	st := fakeStore(ns, "fake",
		secretsv1.FakeProviderData{Key: "a", Value: "va"},
		secretsv1.FakeProviderData{Key: "b", Value: "vb"})
	es := externalSecret(ns, "app", "fake", item("a", "a", ""), item("b", "b", ""))
	es.Spec.Target.DeletionPolicy = secretsv1.DeletionPolicyDelete
	create(t, st, es)
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)

	setFake(t, st, secretsv1.FakeProviderData{Key: "a", Value: "va"})
	ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)
	refresh(t, es)
	eventually(t, "key b removed", func() (bool, string) {
		d := secretData(t, ns, "app")
		_, has := d["b"]
		return !has && d["a"] == "va", strings.Join(sortedKeys(d), ",")
	})

	setFake(t, st)
	ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)
	refresh(t, es)
	ready(t, es, metav1.ConditionFalse, secretsv1.ReasonSecretDeleted)
	eventually(t, "Secret deleted", func() (bool, string) {
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, &corev1.Secret{})
		return client.IgnoreNotFound(err) == nil && err != nil, "still there"
	})
}

// Attack: an ExternalSecret (creationPolicy Owner) names a Secret someone
// else created. It is refused, named, and the Secret is unchanged.
func TestNeverAdoptsSomeoneElsesSecret(t *testing.T) {
	ns := namespace(t, nil)
	victim := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "victim"}, Data: map[string][]byte{"password": []byte("original")}}
	st := fakeStore(ns, "fake", secretsv1.FakeProviderData{Key: "k", Value: "attacker-value"})
	es := externalSecret(ns, "grab", "fake", item("password", "k", ""))
	es.Spec.Target.Name = "victim"
	create(t, victim, st, es)
	msg := ready(t, es, metav1.ConditionFalse, secretsv1.ReasonSecretConflict)
	if !strings.Contains(msg, "Secret "+ns+"/victim") || !strings.Contains(msg, "not created by ExternalSecret "+ns+"/grab") {
		t.Errorf("message %q does not name the Secret and the ExternalSecret", msg)
	}
	if !conditions.IsTrue(es, conditions.Stalled) {
		t.Errorf("not Stalled: %v", es.Status.Conditions)
	}
	event(t, ns, "grab", secretsv1.ReasonSecretConflict)
	after := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(victim), after); err != nil {
		t.Fatal(err)
	}
	if string(after.Data["password"]) != "original" || len(after.OwnerReferences) != 0 || after.ResourceVersion != victim.ResourceVersion {
		t.Errorf("victim changed: data %q, owners %v, resourceVersion %s -> %s", after.Data["password"], after.OwnerReferences, victim.ResourceVersion, after.ResourceVersion)
	}

	// Its owner may hand it over explicitly.
	after.Annotations = map[string]string{"strata.dev/adopt": "ExternalSecret/" + ns + "/grab"}
	if err := env.Client.Update(context.Background(), after); err != nil {
		t.Fatal(err)
	}
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
}

// Attack: the ExternalSecret's Secret is deleted and made again by someone
// else right before the ExternalSecret writes a new value into it. The
// write is refused (it names the UID it read); the ExternalSecret then
// reports the new Secret as a conflict and never writes it.
func TestNeverTakesOverAReplacedSecret(t *testing.T) {
	ns := namespace(t, nil)
	st := fakeStore(ns, "fake", secretsv1.FakeProviderData{Key: "k", Value: "one"})
	es := externalSecret(ns, "app", "fake", item("password", "k", ""))
	create(t, st, es)
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	replaced := testenv.ReplaceBefore(t, &hook, env.Client, testenv.BeforeApply, "/namespaces/"+ns+"/secrets/app",
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Data: map[string][]byte{"password": []byte("theirs")}})
	setFake(t, st, secretsv1.FakeProviderData{Key: "k", Value: "two"})
	ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)
	refresh(t, es)
	msg := ready(t, es, metav1.ConditionFalse, secretsv1.ReasonSecretConflict)
	if !replaced.Load() {
		t.Fatal("the ExternalSecret never wrote the new value (the hook did not run)")
	}
	if !strings.Contains(msg, "Secret "+ns+"/app") {
		t.Errorf("message %q does not name the Secret", msg)
	}
	after := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, after); err != nil {
		t.Fatal(err)
	}
	if string(after.Data["password"]) != "theirs" || len(after.OwnerReferences) != 0 {
		t.Errorf("the replacement changed: data %q, owners %v", after.Data["password"], after.OwnerReferences)
	}
}

func TestTemplateThatDoesNotParse(t *testing.T) {
	ns := namespace(t, nil)
	st := fakeStore(ns, "fake", secretsv1.FakeProviderData{Key: "k", Value: "v1"})
	es := externalSecret(ns, "app", "fake", item("x", "k", ""))
	create(t, st, es)
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(es), es); err != nil {
		t.Fatal(err)
	}
	es.Spec.Target.Template = &secretsv1.ExternalSecretTemplate{Data: map[string]string{"y": "{{ .x "}}
	if err := env.Client.Update(context.Background(), es); err != nil {
		t.Fatal(err)
	}
	msg := ready(t, es, metav1.ConditionFalse, secretsv1.ReasonTemplateInvalid)
	if !strings.Contains(msg, `template of key "y"`) || !strings.Contains(msg, "ExternalSecret "+ns+"/app") {
		t.Errorf("message %q does not name the ExternalSecret and key", msg)
	}
	if d := cmp.Diff(map[string]string{"x": "v1"}, secretData(t, ns, "app")); d != "" {
		t.Errorf("last good Secret changed (-want +got):\n%s", d)
	}
}
