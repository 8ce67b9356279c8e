package provider

import (
	"context"
	"errors"
)

// OwnedWriter is implemented by stores that can tell who wrote a value, so a
// PushSecret never overwrites or deletes what another writer put there. owner
// names the writer (for example "pushsecret/NAMESPACE/NAME"). adopt says the
// caller wrote ref before (it has a record of it), so a value without an
// ownership record of its own may be taken over; a value recorded for another
// owner is never taken over.
type OwnedWriter interface {
	// PushSecretAs writes like PushSecret and records owner as ref's writer.
	// It returns ErrNotOwner (wrapped, naming key and property) when ref
	// exists and is recorded for another owner, or exists without a record
	// and adopt is false.
	PushSecretAs(ctx context.Context, ref PushRef, value []byte, owner string, adopt bool) error
	// DeleteSecretAs removes ref when owner wrote it (or adopt is set and
	// nothing else is recorded), and returns ErrNotOwner otherwise. A
	// missing key is not an error.
	DeleteSecretAs(ctx context.Context, ref PushRef, owner string, adopt bool) error
}

// ErrNotOwner is returned (wrapped) when a value in a store belongs to
// another writer.
var ErrNotOwner = errors.New("written by another owner")
