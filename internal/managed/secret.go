package managed

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/strata-dev/strata/internal/kit/connsecret"
	"github.com/strata-dev/strata/internal/kit/ownership"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// SecretTypeConnection is the type of connection Secrets.
const SecretTypeConnection = connsecret.Type

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

// owner is mg as the writer of its connection Secret: an owner reference
// that is not a controller reference, so a composite resource that composes
// the Secret can still control it.
func owner(c client.Client, mg Managed) ownership.Owner {
	o := ownership.Owner{Kind: fmt.Sprintf("%T", mg), Namespace: mg.GetNamespace(), Name: mg.GetName(), UID: mg.GetUID(), Mark: ownership.OwnerRef}
	if gvk, err := apiutil.GVKForObject(mg, c.Scheme()); err == nil {
		o.APIVersion, o.Kind = schema.GroupVersion{Group: gvk.Group, Version: gvk.Version}.String(), gvk.Kind
	}
	return o
}

// connectionSecret is mg's connection Secret and the publisher that writes
// it, or false when mg has no writeConnectionSecretToRef. c must read
// Secrets live (Client does): the publisher never caches every Secret.
func connectionSecret(c client.Client, mg Managed) (connsecret.Publisher, connsecret.Ref, bool) {
	ref := mg.ManagedSpec().WriteConnectionSecretToReference
	if ref == nil {
		return connsecret.Publisher{}, connsecret.Ref{}, false
	}
	return connsecret.Publisher{Client: c, Reader: c}, connsecret.Ref{Namespace: ref.Namespace, Name: ref.Name}, true
}

// conflict turns the refusal to touch a Secret someone else owns into a
// user error with reason ResourceConflict: only the user can fix it (by
// naming another Secret, or by the owner handing it over).
func conflict(err error) error {
	if ownership.IsConflict(err) {
		return kitreconcile.Terminal(ownership.ReasonResourceConflict, fmt.Errorf("connection secret: %w", err))
	}
	return err
}

// EnsurePassword returns the password stored under key in mg's connection
// Secret, generating one and saving it there first when there is none. The
// password is saved before the external create, so a crash between the two
// never loses it. It returns "" when mg has no writeConnectionSecretToRef.
// A Secret that is not mg's is neither read nor written (ResourceConflict).
func EnsurePassword(ctx context.Context, c client.Client, mg Managed, key string) (string, error) {
	p, ref, ok := connectionSecret(c, mg)
	if !ok {
		return "", nil
	}
	data, err := p.Read(ctx, owner(c, mg), ref)
	if err != nil {
		return "", conflict(err)
	}
	if len(data[key]) > 0 {
		return string(data[key]), nil
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
// creating it (owned by mg) when missing, by server-side apply with mg's
// own field manager. It writes only when a value changes, and refuses a
// Secret someone else owns (ResourceConflict).
func PublishConnectionDetails(ctx context.Context, c client.Client, mg Managed, details ConnectionDetails) error {
	p, ref, ok := connectionSecret(c, mg)
	if !ok || len(details) == 0 {
		return nil
	}
	_, err := p.Publish(ctx, connsecret.Request{Owner: owner(c, mg), Ref: ref, Data: details, Merge: true})
	return conflict(err)
}

// deleteConnectionSecret deletes mg's connection Secret if mg owns it.
func deleteConnectionSecret(ctx context.Context, c client.Client, mg Managed) error {
	p, ref, ok := connectionSecret(c, mg)
	if !ok {
		return nil
	}
	_, err := p.Delete(ctx, owner(c, mg), ref)
	return err
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
// Secret, or "" when it has none yet or the Secret is not the resource's.
func PublishedPassword(ctx context.Context, c client.Client, mg Managed) string {
	p, ref, ok := connectionSecret(c, mg)
	if !ok {
		return ""
	}
	data, err := p.Read(ctx, owner(c, mg), ref)
	if err != nil {
		return ""
	}
	return string(data[ConnectionPassword])
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
