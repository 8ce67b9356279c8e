package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/secrets/provider"
	"github.com/strata-dev/strata/internal/secrets/pushsecret"
)

// pushStores gives the PushSecret controller its stores' clients with the
// rules ExternalSecrets follow: a SecretStore of the PushSecret's
// namespace, a ClusterSecretStore only when its conditions allow that
// namespace, and only once the store is Ready; clients come from the shared
// cache, so pushes count against the store's rate limit.
type pushStores struct {
	r       *esReconciler
	clients *Clients
}

var _ pushsecret.Stores = (*pushStores)(nil)

func (p *pushStores) Client(ctx context.Context, ns string, ref secretsv1.PushSecretStoreRef) (provider.Client, error) {
	kind := ref.Kind
	if kind == "" {
		kind = secretsv1.SecretStoreKind
	}
	var st storeObject
	key := client.ObjectKey{Name: ref.Name}
	if kind == secretsv1.ClusterSecretStoreKind {
		st = &secretsv1.ClusterSecretStore{}
	} else {
		st = &secretsv1.SecretStore{}
		key.Namespace = ns
	}
	if err := p.r.client.Get(ctx, key, st); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, kitreconcile.Reasoned(secretsv1.ReasonStoreNotFound, fmt.Errorf("%s %s (spec.secretStoreRefs) not found", kind, ref.Name))
		}
		return nil, fmt.Errorf("cannot read %s %s: %w", kind, ref.Name, err)
	}
	if css, ok := st.(*secretsv1.ClusterSecretStore); ok {
		allowed, err := p.r.namespaceAllowed(ctx, css, ns)
		if err != nil {
			return nil, err
		}
		if !allowed {
			return nil, kitreconcile.Terminal(secretsv1.ReasonStoreNotAllowed,
				fmt.Errorf("ClusterSecretStore %s does not allow namespace %q (its spec.conditions); PushSecrets there may not use it", css.Name, ns))
		}
	}
	if st.GetStatus().ObservedGeneration != st.GetGeneration() || !conditions.IsTrue(st, conditions.Ready) {
		why := "it has not been validated yet"
		if c := conditions.Get(st, conditions.Ready); c != nil && c.Status == metav1.ConditionFalse && c.Reason != conditions.ReasonCreating {
			why = c.Reason + ": " + c.Message
		}
		return nil, kitreconcile.Reasoned(secretsv1.ReasonStoreNotReady, fmt.Errorf("%s is not ready: %s", describeStore(st), why))
	}
	return p.clients.Get(ctx, st, false)
}
