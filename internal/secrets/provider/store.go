package provider

import (
	"context"
	"errors"

	"k8s.io/client-go/rest"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/kit/egress"
)

// Store is one configured SecretStore or ClusterSecretStore, as a
// Constructor sees it.
type Store struct {
	// Kind is SecretStore or ClusterSecretStore.
	Kind string
	// Name of the store.
	Name string
	// Namespace is the SecretStore's namespace; empty for a
	// ClusterSecretStore.
	Namespace string
	// Spec is the store's spec; constructors read the provider they
	// implement from Spec.Provider and must not change it.
	Spec *secretsv1.SecretStoreSpec
	// Egress is the networks a constructor's clients may not connect to
	// (egress.Policy.Guard on their transport, or DialContext): the manager's
	// --egress-denied-networks for a SecretStore, whose address a tenant
	// chooses; none for a ClusterSecretStore, which an admin configures.
	Egress egress.Policy
}

// String names the store for messages: "SecretStore team-a/vault".
func (s Store) String() string {
	if s.Namespace == "" {
		return s.Kind + " " + s.Name
	}
	return s.Kind + " " + s.Namespace + "/" + s.Name
}

// Kube reads what a store's configuration references (credentials Secrets,
// CA bundles, ServiceAccount tokens) with the store's limits: a SecretStore
// reads only its own namespace, and a reference to another namespace is an
// ErrInvalidConfig; a ClusterSecretStore (admin-owned) names the namespace
// of each reference. Values are returned in memory and never logged.
type Kube interface {
	// SecretKey returns one key of a Secret; a missing Secret or key is an
	// ErrInvalidConfig naming them.
	SecretKey(ctx context.Context, sel secretsv1.SecretKeySelector) ([]byte, error)
	// SecretData returns every key of a Secret (sel.Key is ignored).
	SecretData(ctx context.Context, sel secretsv1.SecretKeySelector) (map[string][]byte, error)
	// CABundle returns inline when set, else the bundle p names, else nil.
	CABundle(ctx context.Context, inline []byte, p *secretsv1.CAProvider) ([]byte, error)
	// ServiceAccountToken requests a token for the ServiceAccount with the
	// TokenRequest API (audiences from sel, or the API server's).
	ServiceAccountToken(ctx context.Context, sel secretsv1.ServiceAccountSelector) (string, error)
	// LocalServer is the API server Strata runs against: its address and
	// TLS settings, without any credentials.
	LocalServer() *rest.Config
}

// Constructor builds a Client for one store. An error that only a change of
// the store's spec (or of the Secrets it references) can fix wraps
// ErrInvalidConfig; anything else is reported as a provider error and
// retried.
type Constructor func(ctx context.Context, store Store, kube Kube) (Client, error)

// ErrInvalidConfig is returned (wrapped) when a store's configuration
// cannot work as written.
var ErrInvalidConfig = errors.New("invalid provider configuration")

// Name returns the provider a store spec configures ("vault",
// "kubernetes", "webhook", "fake"), or "" when none is set.
func Name(p *secretsv1.SecretStoreProvider) string {
	switch {
	case p.Vault != nil:
		return "vault"
	case p.Kubernetes != nil:
		return "kubernetes"
	case p.Webhook != nil:
		return "webhook"
	case p.Fake != nil:
		return "fake"
	}
	return ""
}
