package controller

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/scheme"
)

func TestNamespaceAllowed(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "labelled", Labels: map[string]string{"vault": "yes"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "xteam-a"}},
	).Build()
	r := &esReconciler{client: c}
	conds := []secretsv1.ClusterSecretStoreCondition{
		{Namespaces: []string{"listed"}},
		{NamespaceRegexes: []string{"team-.*"}},
		{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"vault": "yes"}}},
	}
	cases := map[string]struct {
		conds []secretsv1.ClusterSecretStoreCondition
		ns    string
		want  bool
	}{
		"no conditions allow all": {ns: "plain", want: true},
		"listed":                  {conds: conds, ns: "listed", want: true},
		"regexp":                  {conds: conds, ns: "team-a", want: true},
		"regexp is anchored":      {conds: conds, ns: "xteam-a"},
		"label":                   {conds: conds, ns: "labelled", want: true},
		"none matches":            {conds: conds, ns: "plain"},
		"invalid selector matches nothing": {conds: []secretsv1.ClusterSecretStoreCondition{{NamespaceSelector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "vault", Operator: "Bad"}}}}}, ns: "labelled"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			css := &secretsv1.ClusterSecretStore{Spec: secretsv1.SecretStoreSpec{Conditions: tc.conds}}
			got, err := r.namespaceAllowed(context.Background(), css, tc.ns)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("allowed = %v, want %v", got, tc.want)
			}
		})
	}
}
