package controller

import (
	"context"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
)

// A ClusterExternalSecret stamps its ExternalSecret into the selected
// namespaces, never over an ExternalSecret someone else wrote, and removes
// it from a namespace that is no longer selected.
func TestClusterExternalSecret(t *testing.T) {
	label := map[string]string{"ces-test": "yes"}
	a, b, taken := namespace(t, label), namespace(t, label), namespace(t, label)
	css := &secretsv1.ClusterSecretStore{
		ObjectMeta: metav1.ObjectMeta{Name: "ces-store"},
		Spec: secretsv1.SecretStoreSpec{Provider: secretsv1.SecretStoreProvider{Fake: &secretsv1.FakeProvider{
			Data: []secretsv1.FakeProviderData{{Key: "k", Value: "v"}}}}},
	}
	theirs := externalSecret(taken, "common", "someone-elses", item("x", "y", ""))
	spec := externalSecret("", "", "ces-store", item("v", "k", "")).Spec
	spec.SecretStoreRef.Kind = secretsv1.ClusterSecretStoreKind
	ces := &secretsv1.ClusterExternalSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "common"},
		Spec: secretsv1.ClusterExternalSecretSpec{
			ExternalSecretSpec: spec,
			NamespaceSelectors: []*metav1.LabelSelector{{MatchLabels: label}},
		},
	}
	create(t, css, theirs, ces)
	ready(t, ces, metav1.ConditionFalse, secretsv1.ReasonPartiallyProvisioned)
	want := []string{a, b}
	sort.Strings(want)
	if d := cmp.Diff(want, ces.Status.ProvisionedNamespaces); d != "" {
		t.Errorf("provisioned (-want +got):\n%s", d)
	}
	if len(ces.Status.FailedNamespaces) != 1 || ces.Status.FailedNamespaces[0].Namespace != taken {
		t.Errorf("failed namespaces: %+v", ces.Status.FailedNamespaces)
	}
	after := &secretsv1.ExternalSecret{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(theirs), after); err != nil {
		t.Fatal(err)
	}
	if after.Spec.SecretStoreRef.Name != "someone-elses" || len(after.OwnerReferences) != 0 {
		t.Errorf("someone else's ExternalSecret was changed: %+v", after.Spec.SecretStoreRef)
	}
	for _, ns := range []string{a, b} {
		es := &secretsv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "common"}}
		ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	}

	// Namespace b leaves the selection: its ExternalSecret goes.
	nsObj := namespaceObj(t, b)
	nsObj.Labels = nil
	if err := env.Client.Update(context.Background(), nsObj); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ExternalSecret removed from the deselected namespace", func() (bool, string) {
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: b, Name: "common"}, &secretsv1.ExternalSecret{})
		return err != nil && client.IgnoreNotFound(err) == nil, "still there"
	})
}
