package vault

import (
	"context"
	"errors"
	"fmt"

	"github.com/strata-dev/strata/internal/secrets/provider"
)

// DefaultPath is the KV mount used when a store sets no path (Vault's dev
// server and most installations mount KV v2 there).
const DefaultPath = "secret"

// DefaultAudience is the audience of the ServiceAccount tokens requested
// for Kubernetes auth when the store names none (as ESO does).
const DefaultAudience = "vault"

// NewFromStore is the provider.Constructor of the vault store: it maps the
// store's spec.provider.vault to a Config, reading credentials through kube
// (so a SecretStore reads only its own namespace, and a ClusterSecretStore
// the namespaces it names).
func NewFromStore(ctx context.Context, store provider.Store, kube provider.Kube) (provider.Client, error) {
	v := store.Spec.Provider.Vault
	if v == nil {
		return nil, fmt.Errorf("%s has no vault provider: %w", store, provider.ErrInvalidConfig)
	}
	invalid := func(format string, a ...any) error {
		return fmt.Errorf("%s: spec.provider.vault.%s: %w", store, fmt.Sprintf(format, a...), provider.ErrInvalidConfig)
	}
	cfg := Config{Server: v.Server, Path: DefaultPath, Version: KVVersion(v.Version), Egress: store.Egress}
	if v.Path != nil && *v.Path != "" {
		cfg.Path = *v.Path
	}
	if v.Namespace != nil {
		cfg.Namespace = *v.Namespace
	}
	ca, err := kube.CABundle(ctx, v.CABundle, v.CAProvider)
	if err != nil {
		return nil, fmt.Errorf("%s: spec.provider.vault.caProvider: %w", store, err)
	}
	cfg.CABundle = ca
	a := v.Auth
	switch {
	case a.TokenSecretRef != nil:
		tok, err := kube.SecretKey(ctx, *a.TokenSecretRef)
		if err != nil {
			return nil, fmt.Errorf("%s: spec.provider.vault.auth.tokenSecretRef: %w", store, err)
		}
		if len(tok) == 0 {
			return nil, invalid("auth.tokenSecretRef: Secret %s key %q is empty", a.TokenSecretRef.Name, a.TokenSecretRef.Key)
		}
		cfg.Auth.Token = string(tok)
	case a.AppRole != nil:
		ar := &AppRole{Path: a.AppRole.Path, RoleID: a.AppRole.RoleID}
		if a.AppRole.RoleRef != nil {
			id, err := kube.SecretKey(ctx, *a.AppRole.RoleRef)
			if err != nil {
				return nil, fmt.Errorf("%s: spec.provider.vault.auth.appRole.roleRef: %w", store, err)
			}
			ar.RoleID = string(id)
		}
		if ar.RoleID == "" {
			return nil, invalid("auth.appRole: set roleId or roleRef")
		}
		sid, err := kube.SecretKey(ctx, a.AppRole.SecretRef)
		if err != nil {
			return nil, fmt.Errorf("%s: spec.provider.vault.auth.appRole.secretRef: %w", store, err)
		}
		ar.SecretID = string(sid)
		cfg.Auth.AppRole = ar
	case a.Kubernetes != nil:
		k := &Kubernetes{MountPath: a.Kubernetes.MountPath, Role: a.Kubernetes.Role}
		switch {
		case a.Kubernetes.ServiceAccountRef != nil:
			sel := *a.Kubernetes.ServiceAccountRef
			if len(sel.Audiences) == 0 {
				sel.Audiences = []string{DefaultAudience}
			}
			k.ServiceAccountToken = func(ctx context.Context) (string, error) { return kube.ServiceAccountToken(ctx, sel) }
		case a.Kubernetes.SecretRef != nil:
			tok, err := kube.SecretKey(ctx, *a.Kubernetes.SecretRef)
			if err != nil {
				return nil, fmt.Errorf("%s: spec.provider.vault.auth.kubernetes.secretRef: %w", store, err)
			}
			k.ServiceAccountToken = func(context.Context) (string, error) { return string(tok), nil }
		default:
			return nil, invalid("auth.kubernetes: set serviceAccountRef or secretRef")
		}
		cfg.Auth.Kubernetes = k
	default:
		return nil, invalid("auth: set one of tokenSecretRef, appRole, kubernetes")
	}
	c, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", store, errors.Join(err, provider.ErrInvalidConfig))
	}
	return c, nil
}
