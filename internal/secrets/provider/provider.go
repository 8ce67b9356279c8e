package provider

import (
	"context"
	"errors"
	"fmt"
)

// Ref names one value in a store, as an ExternalSecret's remoteRef does.
type Ref struct {
	// Key is the secret's path or name in the store.
	Key string
	// Property selects one field of a structured secret (a JSON key, a KV
	// field). Empty means the whole secret: its raw bytes when it has one
	// value, its JSON encoding otherwise.
	Property string
	// Version selects a version where the store keeps several. Empty is the
	// latest.
	Version string
}

// Find selects secrets by name or tags, as an ExternalSecret's
// dataFrom[].find does.
type Find struct {
	// Path restricts the search to keys under this path. Optional.
	Path string
	// NameRegexp matches the keys to return. Empty matches every key.
	NameRegexp string
	// Tags must all be present with these values (stores without tags
	// return ErrNotSupported when Tags is set).
	Tags map[string]string
}

// PushRef names where a value is written, as a PushSecret's remoteRef does.
type PushRef struct {
	// Key is the secret's path or name in the store.
	Key string
	// Property is the field written within the secret. Empty writes the
	// value as the whole secret.
	Property string
}

// Client reads (and, where the store allows it, writes) one store.
// Implementations are safe for concurrent use.
type Client interface {
	// GetSecret returns one value. A missing key or property is ErrNotFound
	// (wrapped, naming the key and property, never the value).
	GetSecret(ctx context.Context, ref Ref) ([]byte, error)
	// GetSecretMap returns every field of a structured secret (dataFrom
	// extract). A missing key is ErrNotFound.
	GetSecretMap(ctx context.Context, ref Ref) (map[string][]byte, error)
	// GetAllSecrets returns the secrets Find selects, keyed by key (dataFrom
	// find).
	GetAllSecrets(ctx context.Context, find Find) (map[string][]byte, error)
	// PushSecret writes value at ref, creating or updating it.
	PushSecret(ctx context.Context, ref PushRef, value []byte) error
	// DeleteSecret removes what PushSecret wrote at ref. A missing key is not
	// an error.
	DeleteSecret(ctx context.Context, ref PushRef) error
	// Validate checks that the store is reachable and the credentials work,
	// without reading any secret's value. Its error is shown on the store's
	// Ready condition, so it names the server and the cause.
	Validate(ctx context.Context) error
	// Close releases connections and tokens.
	Close(ctx context.Context) error
}

// ErrNotFound is returned (wrapped) when a key or property does not exist.
var ErrNotFound = errors.New("not found")

// ErrNotSupported is returned (wrapped) by an operation a store cannot do.
var ErrNotSupported = errors.New("not supported by this store")

// NotFound returns an ErrNotFound naming the key and property.
func NotFound(ref Ref) error {
	if ref.Property != "" {
		return fmt.Errorf("key %q property %q: %w", ref.Key, ref.Property, ErrNotFound)
	}
	return fmt.Errorf("key %q: %w", ref.Key, ErrNotFound)
}
