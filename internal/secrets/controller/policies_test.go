package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
)

// creationPolicy Merge writes its keys into an existing Secret and never
// takes a key another writer manages; Orphan leaves no owner reference;
// None writes nothing.
func TestCreationPolicies(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, nil)
	st := fakeStore(ns, "fake", secretsv1.FakeProviderData{Key: "k", Value: "from-store"})
	create(t, st)

	// Merge into a Secret another writer created.
	shared := corev1ac.Secret("shared", ns).WithData(map[string][]byte{"theirs": []byte("keep-me"), "taken": []byte("theirs-value")})
	if err := env.Client.Apply(ctx, shared, client.FieldOwner("someone-else")); err != nil {
		t.Fatal(err)
	}
	merge := externalSecret(ns, "merge", "fake", item("mine", "k", ""))
	merge.Spec.Target = secretsv1.ExternalSecretTarget{Name: "shared", CreationPolicy: secretsv1.CreatePolicyMerge}
	create(t, merge)
	ready(t, merge, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	if d := cmp.Diff(map[string]string{"theirs": "keep-me", "taken": "theirs-value", "mine": "from-store"}, secretData(t, ns, "shared")); d != "" {
		t.Errorf("merged Secret (-want +got):\n%s", d)
	}
	// A key another writer manages is not taken.
	grab := externalSecret(ns, "grab", "fake", item("taken", "k", ""))
	grab.Spec.Target = secretsv1.ExternalSecretTarget{Name: "shared", CreationPolicy: secretsv1.CreatePolicyMerge}
	create(t, grab)
	msg := ready(t, grab, metav1.ConditionFalse, secretsv1.ReasonSecretConflict)
	if !strings.Contains(msg, "Secret "+ns+"/shared") {
		t.Errorf("message %q does not name the Secret", msg)
	}
	if got := secretData(t, ns, "shared")["taken"]; got != "theirs-value" {
		t.Errorf("another writer's key was overwritten: %q", got)
	}
	// Merge never creates.
	missing := externalSecret(ns, "nothing-to-merge", "fake", item("x", "k", ""))
	missing.Spec.Target = secretsv1.ExternalSecretTarget{Name: "absent", CreationPolicy: secretsv1.CreatePolicyMerge}
	create(t, missing)
	ready(t, missing, metav1.ConditionFalse, secretsv1.ReasonSecretSyncedError)

	orphan := externalSecret(ns, "orphan", "fake", item("v", "k", ""))
	orphan.Spec.Target.CreationPolicy = secretsv1.CreatePolicyOrphan
	none := externalSecret(ns, "none", "fake", item("v", "k", ""))
	none.Spec.Target.CreationPolicy = secretsv1.CreatePolicyNone
	create(t, orphan, none)
	ready(t, orphan, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	ready(t, none, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	s := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "orphan"}, s); err != nil {
		t.Fatal(err)
	}
	if len(s.OwnerReferences) != 0 {
		t.Errorf("Orphan Secret has owners: %v", s.OwnerReferences)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "none"}, &corev1.Secret{}); err == nil {
		t.Error("creationPolicy None wrote a Secret")
	}
}

// An immutable target is replaced when a value rotates.
func TestImmutableTargetIsReplaced(t *testing.T) {
	ns := namespace(t, nil)
	st := fakeStore(ns, "fake", secretsv1.FakeProviderData{Key: "k", Value: "one"})
	es := externalSecret(ns, "app", "fake", item("v", "k", ""))
	es.Spec.Target.Immutable = true
	create(t, st, es)
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	setFake(t, st, secretsv1.FakeProviderData{Key: "k", Value: "two"})
	ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)
	refresh(t, es)
	eventually(t, "the replaced immutable Secret", func() (bool, string) {
		s := &corev1.Secret{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, s); err != nil {
			return false, err.Error()
		}
		return string(s.Data["v"]) == "two" && s.Immutable != nil && *s.Immutable, string(s.Data["v"])
	})
}

// Periodic refresh picks up a rotated value without any manual trigger.
func TestPeriodicRefresh(t *testing.T) {
	ns := namespace(t, nil)
	st := fakeStore(ns, "fake", secretsv1.FakeProviderData{Key: "k", Value: "one"})
	es := externalSecret(ns, "app", "fake", item("v", "k", ""))
	es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Second}
	create(t, st, es)
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	setFake(t, st, secretsv1.FakeProviderData{Key: "k", Value: "two"})
	eventually(t, "the rotated value", func() (bool, string) {
		v := secretData(t, ns, "app")["v"]
		return v == "two", v
	})
	// Someone edits the Secret: the next sync restores the store's value.
	s := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, s); err != nil {
		t.Fatal(err)
	}
	s.Data["v"] = []byte("tampered")
	if err := env.Client.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the restored value", func() (bool, string) {
		v := secretData(t, ns, "app")["v"]
		return v == "two", v
	})
}
