package connsecret

import (
	"bytes"
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/kit/ssa"
)

// Type is the type of every connection Secret Strata writes.
const Type corev1.SecretType = "connection.strata.dev/v1alpha1"

// Ref names a connection Secret.
type Ref struct {
	Namespace string
	Name      string
}

func (r Ref) String() string { return "Secret " + r.Namespace + "/" + r.Name }

// Publisher reads and writes connection Secrets.
type Publisher struct {
	// Client writes (server-side apply, delete).
	Client client.Client
	// Reader reads Secrets live: the manager's API reader, or a client
	// whose cache is disabled for Secrets. Never a cache of every Secret.
	Reader client.Reader
}

// Request is one publication.
type Request struct {
	// Owner is the writer; its field manager writes the Secret and its
	// mark says the Secret is its own.
	Owner ownership.Owner
	Ref   Ref
	// Data are the connection details.
	Data map[string][]byte
	// Labels go on the Secret besides the owner's mark.
	Labels map[string]string
	// Merge keeps the keys the Secret already holds that Data does not
	// name (a managed resource publishes its details piecemeal: the
	// password before the create, the endpoint after it). Without it the
	// Secret holds exactly Data, and a key that leaves Data is removed.
	Merge bool
}

// Result says what Publish did.
type Result int

const (
	// Unchanged: the Secret already held the details; nothing was written.
	Unchanged Result = iota
	// Created the Secret.
	Created
	// Updated the owner's Secret.
	Updated
	// Adopted a Secret its previous owner handed over (ownership.AnnotationAdopt).
	Adopted
)

func (r Result) String() string {
	return [...]string{"unchanged", "created", "updated", "adopted"}[r]
}

// Publish writes r.Data to the Secret r.Ref. A Secret that exists and is not
// the owner's (nor handed to it) is left alone: the error is a
// *ownership.ConflictError naming the Secret and its owner.
func (p Publisher) Publish(ctx context.Context, r Request) (Result, error) {
	live, decision, err := p.decide(ctx, r.Owner, r.Ref)
	if err != nil {
		return Unchanged, err
	}
	data := map[string][]byte{}
	if r.Merge && live != nil {
		maps.Copy(data, live.Data)
	}
	maps.Copy(data, r.Data)
	if decision == ownership.Update && equal(live.Data, data) && hasLabels(live, r.Labels) &&
		!ssa.HasApplyEntry(live, ssa.LegacyFieldManager) {
		return Unchanged, nil
	}
	manager := r.Owner.FieldManager()
	if live != nil && decision == ownership.Update {
		// Fields an older Strata wrote with the shared manager become the
		// owner's, so a key that leaves Data is removed.
		if _, err := ssa.Migrate(ctx, p.Client, live, []string{ssa.LegacyFieldManager}, manager); err != nil {
			return Unchanged, err
		}
	}
	labels := maps.Clone(r.Labels)
	sec := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: r.Ref.Namespace, Name: r.Ref.Name, Labels: labels},
		Type:       Type,
		Data:       data,
	}
	if live != nil {
		// The type of a Secret is immutable: keep the one it has.
		sec.Type = live.Type
	}
	r.Owner.SetMark(sec)
	opts := ssa.Options{FieldManager: manager, Policy: ssa.PolicyFor(decision)}
	if live != nil && decision != ownership.Create {
		// Only the Secret decided on: not one made again in between.
		opts.UID = live.UID
	}
	if err := ssa.Apply(ctx, p.Client, sec, opts); err != nil {
		return Unchanged, fmt.Errorf("cannot publish connection %s: %w", r.Ref, err)
	}
	switch decision {
	case ownership.Create:
		return Created, nil
	case ownership.Adopt:
		return Adopted, nil
	}
	return Updated, nil
}

// Read returns the data of the owner's connection Secret, nil when it does
// not exist. A Secret that is not the owner's is not read: its values are
// another owner's (a *ownership.ConflictError).
func (p Publisher) Read(ctx context.Context, owner ownership.Owner, ref Ref) (map[string][]byte, error) {
	live, _, err := p.decide(ctx, owner, ref)
	if err != nil || live == nil {
		return nil, err
	}
	return live.Data, nil
}

// Delete deletes the connection Secret when the owner controls it, and
// reports whether it did. A Secret that is gone, or that is someone else's,
// is left alone.
func (p Publisher) Delete(ctx context.Context, owner ownership.Owner, ref Ref) (bool, error) {
	live := &corev1.Secret{}
	if err := p.Reader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, live); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("cannot read connection %s: %w", ref, err)
	}
	if !owner.Controls(live) {
		return false, nil
	}
	// Delete exactly the Secret that was read: not one created in its place.
	pre := client.Preconditions{UID: &live.UID, ResourceVersion: &live.ResourceVersion}
	if err := p.Client.Delete(ctx, live, pre); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("cannot delete connection %s: %w", ref, err)
	}
	return true, nil
}

// decide reads the Secret live and decides whether owner may write it.
func (p Publisher) decide(ctx context.Context, owner ownership.Owner, ref Ref) (*corev1.Secret, ownership.Decision, error) {
	live := &corev1.Secret{}
	err := p.Reader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, live)
	switch {
	case apierrors.IsNotFound(err):
		return nil, ownership.Create, nil
	case err != nil:
		return nil, 0, fmt.Errorf("cannot read connection %s: %w", ref, err)
	}
	live.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	d, err := ownership.Decide(live, owner)
	if err != nil {
		return nil, 0, err
	}
	return live, d, nil
}

func equal(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func hasLabels(s *corev1.Secret, want map[string]string) bool {
	for k, v := range want {
		if s.Labels[k] != v {
			return false
		}
	}
	return true
}
