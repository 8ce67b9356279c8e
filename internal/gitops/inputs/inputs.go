package inputs

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/apply"
	"github.com/strata-dev/strata/internal/gitops/build"
	"github.com/strata-dev/strata/internal/gitops/sops"
	"github.com/strata-dev/strata/internal/gitops/source"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/kit/tenant"
)

// GitAuth reads the credentials of repo from its spec.secretRef (in repo's
// namespace) with reader; a repository without one gets empty credentials.
// The Secret's values never reach the error.
func GitAuth(ctx context.Context, reader client.Reader, repo *gitopsv1.GitRepository) (source.Auth, error) {
	if repo.Spec.SecretRef == nil {
		return source.Auth{}, nil
	}
	s := &corev1.Secret{}
	key := types.NamespacedName{Namespace: repo.Namespace, Name: repo.Spec.SecretRef.Name}
	if err := reader.Get(ctx, key, s); err != nil {
		return source.Auth{}, fmt.Errorf("cannot read secret %s: %w", key.Name, err)
	}
	return source.AuthFromSecret(repo.Spec.URL, s.Data), nil
}

// SourceRef names the GitRepository a Sync builds from (its namespace
// defaults to the Sync's).
func SourceRef(s *gitopsv1.Sync) types.NamespacedName {
	ns := s.Spec.SourceRef.Namespace
	if ns == "" {
		ns = s.Namespace
	}
	return types.NamespacedName{Namespace: ns, Name: s.Spec.SourceRef.Name}
}

// Owner is the writer a Sync applies as: it marks objects with the Sync
// labels and applies with its own field manager.
func Owner(s *gitopsv1.Sync) ownership.Owner {
	return ownership.Owner{APIVersion: gitopsv1.GroupVersion.String(), Kind: "Sync", Namespace: s.Namespace, Name: s.Name, UID: s.UID, Mark: ownership.SyncLabels}
}

// ServiceAccountUser is the user a Sync acts as: its spec.serviceAccountName,
// else defaultAccount (the manager's --default-service-account) in the Sync's
// namespace, else "" (the caller's own identity).
func ServiceAccountUser(s *gitopsv1.Sync, defaultAccount string) string {
	return tenant.User(s.Namespace, s.Spec.ServiceAccountName, defaultAccount)
}

// Impersonating returns a copy of cfg that impersonates user.
func Impersonating(cfg *rest.Config, user string) *rest.Config {
	return tenant.Impersonating(cfg, user)
}

// Inventory turns a Sync's status.inventory into apply entries.
func Inventory(inv []gitopsv1.InventoryEntry) []apply.Entry {
	out := make([]apply.Entry, 0, len(inv))
	for _, e := range inv {
		out = append(out, apply.Entry{APIVersion: e.APIVersion, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name})
	}
	return out
}

// BuildOptions returns the build options of a Sync: postBuild variables
// from substitute and substituteFrom, and the decryption keys (read with
// reader).
func BuildOptions(ctx context.Context, reader client.Reader, s *gitopsv1.Sync) (build.Options, error) {
	opts, err := decryptionKeys(ctx, reader, s)
	if err != nil {
		return opts, err
	}
	pb := s.Spec.PostBuild
	if pb == nil {
		return opts, nil
	}
	vars := map[string]string{}
	for _, ref := range pb.SubstituteFrom {
		key := types.NamespacedName{Namespace: s.Namespace, Name: ref.Name}
		var data map[string]string
		switch ref.Kind {
		case "ConfigMap":
			cm := &corev1.ConfigMap{}
			if err := reader.Get(ctx, key, cm); err != nil {
				if apierrors.IsNotFound(err) && ref.Optional {
					continue
				}
				return opts, fmt.Errorf("substituteFrom ConfigMap %s: %w", ref.Name, err)
			}
			data = cm.Data
		case "Secret":
			sec := &corev1.Secret{}
			if err := reader.Get(ctx, key, sec); err != nil {
				if apierrors.IsNotFound(err) && ref.Optional {
					continue
				}
				return opts, fmt.Errorf("substituteFrom Secret %s: %w", ref.Name, err)
			}
			data = map[string]string{}
			for k, v := range sec.Data {
				data[k] = string(v)
			}
		}
		for k, v := range data {
			vars[k] = v
		}
	}
	for k, v := range pb.Substitute {
		vars[k] = v
	}
	opts.Substitute, opts.Vars = true, vars
	return opts, nil
}

// decryptionKeys reads the keys of spec.decryption: the age identities of
// every `*.agekey` entry and the armored PGP private keys of every `*.asc`
// entry of the Secret. They stay in memory, and errors name the entry,
// never its value.
func decryptionKeys(ctx context.Context, reader client.Reader, s *gitopsv1.Sync) (build.Options, error) {
	d := s.Spec.Decryption
	if d == nil {
		return build.Options{}, nil
	}
	sec := &corev1.Secret{}
	if err := reader.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: d.SecretRef.Name}, sec); err != nil {
		return build.Options{}, fmt.Errorf("decryption secret %s: %w", d.SecretRef.Name, err)
	}
	keys, err := sops.ParseKeys(sec.Data)
	if err != nil {
		return build.Options{}, fmt.Errorf("decryption secret %s: %w", d.SecretRef.Name, err)
	}
	if keys == nil {
		return build.Options{}, fmt.Errorf("decryption secret %s has no *.agekey or *.asc entry", d.SecretRef.Name)
	}
	return build.Options{Decryption: keys}, nil
}
