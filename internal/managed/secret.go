package managed

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"math/big"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// SecretTypeConnection is the type of connection Secrets.
const SecretTypeConnection corev1.SecretType = "connection.strata.dev/v1alpha1"

// Standard connection detail keys.
const (
	ConnectionEndpoint = "endpoint"
	ConnectionPort     = "port"
	ConnectionUsername = "username"
	ConnectionPassword = "password"
)

const passwordAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// GeneratePassword returns a random 32-character alphanumeric password from
// crypto/rand.
func GeneratePassword() (string, error) {
	b := make([]byte, 32)
	max := big.NewInt(int64(len(passwordAlphabet)))
	for i := range b {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("cannot generate password: %w", err)
		}
		b[i] = passwordAlphabet[n.Int64()]
	}
	return string(b), nil
}

// ReadSecretKey returns one key of a Secret.
func ReadSecretKey(ctx context.Context, c client.Reader, ref managedv1.SecretKeySelector) (string, error) {
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, s); err != nil {
		return "", fmt.Errorf("cannot read Secret %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	v, ok := s.Data[ref.Key]
	if !ok {
		return "", fmt.Errorf("secret %s/%s has no key %q", ref.Namespace, ref.Name, ref.Key)
	}
	return string(v), nil
}

// EnsurePassword returns the password stored under key in mg's connection
// Secret, generating one and saving it there first when there is none. The
// password is saved before the external create, so a crash between the two
// never loses it. It returns "" when mg has no writeConnectionSecretToRef.
func EnsurePassword(ctx context.Context, c client.Client, mg Managed, key string) (string, error) {
	ref := mg.ManagedSpec().WriteConnectionSecretToReference
	if ref == nil {
		return "", nil
	}
	s := &corev1.Secret{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, s)
	if err == nil && len(s.Data[key]) > 0 {
		return string(s.Data[key]), nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("cannot read connection Secret %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	pw, err := GeneratePassword()
	if err != nil {
		return "", err
	}
	if err := PublishConnectionDetails(ctx, c, mg, ConnectionDetails{key: []byte(pw)}); err != nil {
		return "", err
	}
	return pw, nil
}

// PublishConnectionDetails merges details into mg's connection Secret,
// creating it (owned by mg) when missing. It writes only when a value changes.
func PublishConnectionDetails(ctx context.Context, c client.Client, mg Managed, details ConnectionDetails) error {
	ref := mg.ManagedSpec().WriteConnectionSecretToReference
	if ref == nil || len(details) == 0 {
		return nil
	}
	s := &corev1.Secret{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, s)
	if apierrors.IsNotFound(err) {
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name},
			Type:       SecretTypeConnection,
			Data:       map[string][]byte{},
		}
		setOwner(c, s, mg)
		for k, v := range details {
			s.Data[k] = v
		}
		if err := c.Create(ctx, s); err != nil {
			return fmt.Errorf("cannot create connection Secret %s/%s: %w", ref.Namespace, ref.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read connection Secret %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	changed := false
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	for k, v := range details {
		if !bytes.Equal(s.Data[k], v) {
			s.Data[k] = v
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := c.Update(ctx, s); err != nil {
		return fmt.Errorf("cannot update connection Secret %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	return nil
}

// deleteConnectionSecret deletes mg's connection Secret if mg owns it.
func deleteConnectionSecret(ctx context.Context, c client.Client, mg Managed) error {
	ref := mg.ManagedSpec().WriteConnectionSecretToReference
	if ref == nil {
		return nil
	}
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, s); err != nil {
		return client.IgnoreNotFound(err)
	}
	for _, o := range s.OwnerReferences {
		if o.UID == mg.GetUID() {
			if err := c.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("cannot delete connection Secret %s/%s: %w", ref.Namespace, ref.Name, err)
			}
		}
	}
	return nil
}

func setOwner(c client.Client, s *corev1.Secret, mg Managed) {
	gvk, err := apiutil.GVKForObject(mg, c.Scheme())
	if err != nil || mg.GetUID() == "" {
		return
	}
	s.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: schema.GroupVersion{Group: gvk.Group, Version: gvk.Version}.String(),
		Kind:       gvk.Kind,
		Name:       mg.GetName(),
		UID:        mg.GetUID(),
	}}
}

// DesiredPassword returns the password a database login should have: read
// from ref when the user names a Secret key, else generated once and kept in
// the resource's connection Secret. It returns "" when there is neither.
func DesiredPassword(ctx context.Context, c client.Client, mg Managed, ref *managedv1.SecretKeySelector) (string, error) {
	if ref != nil {
		return ReadSecretKey(ctx, c, *ref)
	}
	return EnsurePassword(ctx, c, mg, ConnectionPassword)
}

// PublishedPassword returns the password in the resource's connection
// Secret, or "" when it has none yet.
func PublishedPassword(ctx context.Context, c client.Reader, mg Managed) string {
	ref := mg.ManagedSpec().WriteConnectionSecretToReference
	if ref == nil {
		return ""
	}
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, s); err != nil {
		return ""
	}
	return string(s.Data[ConnectionPassword])
}

// LoginDetails are the connection details of a database login; the password
// is left out when it is not known.
func LoginDetails(user, host, port, password string) ConnectionDetails {
	d := ConnectionDetails{
		ConnectionUsername: []byte(user),
		ConnectionEndpoint: []byte(host),
		ConnectionPort:     []byte(port),
	}
	if password != "" {
		d[ConnectionPassword] = []byte(password)
	}
	return d
}
