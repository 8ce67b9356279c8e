package controller

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/secrets/provider"
)

// tokenLifetime is how long a ServiceAccount token requested for a store
// lives; clients are rebuilt well before (clientTTL).
const tokenLifetime = int64(3600)

// storeKube is provider.Kube for one store: a SecretStore reads only its own
// namespace (the tenant's rights), a ClusterSecretStore (admin-owned) names
// the namespace of every reference.
type storeKube struct {
	client client.Client
	local  *rest.Config
	store  provider.Store
}

var _ provider.Kube = (*storeKube)(nil)

// namespace returns the namespace a reference may be read in, or an
// ErrInvalidConfig when the store may not read there.
func (k *storeKube) namespace(what, name, ns string) (string, error) {
	if k.store.Kind == secretsv1.ClusterSecretStoreKind {
		if ns == "" {
			return "", fmt.Errorf("%s: %s %q has no namespace; a ClusterSecretStore must name the namespace of every reference: %w", k.store, what, name, provider.ErrInvalidConfig)
		}
		return ns, nil
	}
	if ns != "" && ns != k.store.Namespace {
		return "", fmt.Errorf("%s may only reference objects in its own namespace %q, not %s %s/%s: %w", k.store, k.store.Namespace, what, ns, name, provider.ErrInvalidConfig)
	}
	return k.store.Namespace, nil
}

func (k *storeKube) secret(ctx context.Context, sel secretsv1.SecretKeySelector) (*corev1.Secret, error) {
	ns, err := k.namespace("Secret", sel.Name, sel.Namespace)
	if err != nil {
		return nil, err
	}
	s := &corev1.Secret{}
	if err := k.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: sel.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%s: credentials Secret %s/%s not found: %w", k.store, ns, sel.Name, provider.ErrInvalidConfig)
		}
		return nil, fmt.Errorf("cannot read Secret %s/%s: %w", ns, sel.Name, err)
	}
	return s, nil
}

func (k *storeKube) SecretKey(ctx context.Context, sel secretsv1.SecretKeySelector) ([]byte, error) {
	s, err := k.secret(ctx, sel)
	if err != nil {
		return nil, err
	}
	v, ok := s.Data[sel.Key]
	if !ok || sel.Key == "" {
		return nil, fmt.Errorf("%s: Secret %s/%s has no key %q: %w", k.store, s.Namespace, s.Name, sel.Key, provider.ErrInvalidConfig)
	}
	return v, nil
}

func (k *storeKube) SecretData(ctx context.Context, sel secretsv1.SecretKeySelector) (map[string][]byte, error) {
	s, err := k.secret(ctx, sel)
	if err != nil {
		return nil, err
	}
	return s.Data, nil
}

func (k *storeKube) CABundle(ctx context.Context, inline []byte, p *secretsv1.CAProvider) ([]byte, error) {
	if len(inline) > 0 || p == nil {
		return inline, nil
	}
	if p.Type == "Secret" {
		return k.SecretKey(ctx, secretsv1.SecretKeySelector{Name: p.Name, Namespace: p.Namespace, Key: p.Key})
	}
	ns, err := k.namespace("ConfigMap", p.Name, p.Namespace)
	if err != nil {
		return nil, err
	}
	cm := &corev1.ConfigMap{}
	if err := k.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: p.Name}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%s: CA ConfigMap %s/%s not found: %w", k.store, ns, p.Name, provider.ErrInvalidConfig)
		}
		return nil, fmt.Errorf("cannot read ConfigMap %s/%s: %w", ns, p.Name, err)
	}
	v, ok := cm.Data[p.Key]
	if !ok {
		return nil, fmt.Errorf("%s: ConfigMap %s/%s has no key %q: %w", k.store, ns, p.Name, p.Key, provider.ErrInvalidConfig)
	}
	return []byte(v), nil
}

func (k *storeKube) ServiceAccountToken(ctx context.Context, sel secretsv1.ServiceAccountSelector) (string, error) {
	ns, err := k.namespace("ServiceAccount", sel.Name, sel.Namespace)
	if err != nil {
		return "", err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sel.Name}}
	exp := tokenLifetime
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: sel.Audiences, ExpirationSeconds: &exp}}
	if err := k.client.SubResource("token").Create(ctx, sa, tr); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("%s: ServiceAccount %s/%s not found: %w", k.store, ns, sel.Name, provider.ErrInvalidConfig)
		}
		return "", fmt.Errorf("cannot request a token for ServiceAccount %s/%s: %w", ns, sel.Name, err)
	}
	return tr.Status.Token, nil
}

func (k *storeKube) LocalServer() *rest.Config { return rest.AnonymousClientConfig(k.local) }
