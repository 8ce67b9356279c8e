package ssa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/strata-dev/strata/internal/kit/ownership"
)

// LegacyFieldManager is the field manager every Strata writer shared before
// each got its own. Its apply entries are moved to the writer's own manager
// (Migrate) the next time the writer applies the object.
const LegacyFieldManager = "strata"

// Policy says what an apply does with fields another field manager owns.
type Policy int

const (
	// Shared leaves other managers' fields alone: an apply that would change
	// a field another manager owns fails with a conflict (409). Writers use
	// it for objects they create, so a race with another creator surfaces
	// instead of being overwritten.
	Shared Policy = iota
	// Force takes the fields the writer sets from any other manager. Only
	// for objects the writer controls or was handed (ownership.Decide said
	// Update or Adopt).
	Force
)

// PolicyFor is the policy an ownership decision allows: Force for an object
// the writer controls or adopts, Shared for one it creates.
func PolicyFor(d ownership.Decision) Policy {
	if d == ownership.Create {
		return Shared
	}
	return Force
}

// Options of one apply.
type Options struct {
	// FieldManager names the writer; required.
	FieldManager string
	// Policy: Shared (default) or Force.
	Policy Policy
	// DryRun asks the API server to validate and return the result without
	// persisting it.
	DryRun bool
	// UID, when set, makes the apply fail unless the object is still the
	// one with this UID: one deleted and made again since it was read (by
	// someone else, perhaps) is refused (IsReplaced), and one deleted is
	// not made again (a Conflict). The API server holds metadata.uid
	// immutable, and a UID in an apply body that matches no object fails
	// (TestUIDPrecondition).
	UID types.UID
}

// IsReplaced reports whether err is the API server's refusal of an apply
// made with Options.UID because the object now is another one.
func IsReplaced(err error) bool {
	if !apierrors.IsInvalid(err) {
		return false
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if c.Field == "metadata.uid" {
			return true
		}
	}
	return false
}

func (o Options) patchOptions() []client.PatchOption {
	opts := []client.PatchOption{client.FieldOwner(o.FieldManager)}
	if o.Policy == Force {
		opts = append(opts, client.ForceOwnership)
	}
	if o.DryRun {
		opts = append(opts, client.DryRunAll)
	}
	return opts
}

// Apply server-side applies obj, typed or unstructured, with o's field
// manager and policy. obj is updated with the API server's answer.
func Apply(ctx context.Context, c client.Client, obj client.Object, o Options) error {
	if o.FieldManager == "" {
		return fmt.Errorf("cannot apply %s: no field manager", ownership.Describe(obj))
	}
	obj.SetManagedFields(nil)
	if o.UID != "" {
		obj.SetUID(o.UID)
	}
	return c.Patch(ctx, obj, client.Apply, o.patchOptions()...) //nolint:staticcheck // one place for typed and unstructured SSA
}

// ApplyConfig server-side applies a typed apply configuration (client-go's
// applyconfigurations, or client.ApplyConfigurationFromUnstructured) with
// o's field manager and policy.
func ApplyConfig(ctx context.Context, c client.Client, ac runtime.ApplyConfiguration, o Options) error {
	if o.FieldManager == "" {
		return fmt.Errorf("cannot apply: no field manager")
	}
	opts := []client.ApplyOption{client.FieldOwner(o.FieldManager)}
	if o.Policy == Force {
		opts = append(opts, client.ForceOwnership)
	}
	if o.DryRun {
		opts = append(opts, client.DryRunAll)
	}
	return c.Apply(ctx, ac, opts...)
}

// Unchanged reports whether applying desired with fieldManager would leave
// live as it is (ownership.Unchanged), so the apply can be skipped without
// a request. An object that still carries LegacyFieldManager's apply entry
// is never unchanged: its next apply moves those fields over (Migrate).
func Unchanged(desired, live *unstructured.Unstructured, fieldManager string) bool {
	if live == nil || HasApplyEntry(live, LegacyFieldManager) && fieldManager != LegacyFieldManager {
		return false
	}
	return ownership.Unchanged(desired, live, fieldManager)
}

// HasApplyEntry reports whether obj's managedFields hold an apply entry of
// manager for the object itself (not a subresource).
func HasApplyEntry(obj metav1.Object, manager string) bool {
	return ownership.HasApplyEntry(obj, manager)
}

// MoveManagers returns fields with the apply entries (of the object itself)
// of every manager in from merged into to's apply entry: to ends up owning
// the union of the fields, and the from entries are gone. It is client-go's
// csaupgrade for apply entries (csaupgrade moves only Update entries) and
// Flux's ssa.PatchReplaceFieldsManagers, on structured-merge-diff's field
// sets. moved is false when there was nothing to move.
func MoveManagers(fields []metav1.ManagedFieldsEntry, from []string, to string) (out []metav1.ManagedFieldsEntry, moved bool, err error) {
	old := map[string]bool{}
	for _, m := range from {
		if m != to {
			old[m] = true
		}
	}
	isApply := func(f metav1.ManagedFieldsEntry) bool {
		return f.Operation == metav1.ManagedFieldsOperationApply && f.Subresource == ""
	}
	target := -1
	var union *fieldpath.Set
	for _, f := range fields {
		if !isApply(f) || !old[f.Manager] && f.Manager != to {
			continue
		}
		s, err := decode(f)
		if err != nil {
			return nil, false, fmt.Errorf("cannot read the fields of field manager %q: %w", f.Manager, err)
		}
		if union == nil {
			union = s
		} else {
			union = union.Union(s)
		}
		moved = moved || old[f.Manager]
	}
	if !moved {
		return fields, false, nil
	}
	out = make([]metav1.ManagedFieldsEntry, 0, len(fields))
	for _, f := range fields {
		switch {
		case !isApply(f) || !old[f.Manager] && f.Manager != to:
			out = append(out, f)
		case target < 0:
			// The first entry (to's own, else the first old one) takes
			// the union, under to's name.
			f.Manager = to
			raw, err := union.ToJSON()
			if err != nil {
				return nil, false, fmt.Errorf("cannot encode managed fields: %w", err)
			}
			f.FieldsV1 = &metav1.FieldsV1{Raw: raw}
			target = len(out)
			out = append(out, f)
		}
	}
	// Keep to's own entry's metadata (time, apiVersion) when it had one.
	for _, f := range fields {
		if isApply(f) && f.Manager == to {
			out[target].APIVersion, out[target].Time = f.APIVersion, f.Time
		}
	}
	return out, true, nil
}

func decode(f metav1.ManagedFieldsEntry) (*fieldpath.Set, error) {
	s := &fieldpath.Set{}
	if f.FieldsV1 == nil {
		return s, nil
	}
	if err := s.FromJSON(bytes.NewReader(f.FieldsV1.Raw)); err != nil {
		return nil, err
	}
	return s, nil
}

// Migrate moves the apply entries of the from managers on live (as read
// from the API server with its managedFields, not from a cache that strips
// them) to manager to, with a JSON patch that fails if live changed since it
// was read (optimistic locking). moved is false when there was nothing to
// move. live is updated with the API server's answer.
func Migrate(ctx context.Context, c client.Client, live client.Object, from []string, to string) (moved bool, err error) {
	fields, moved, err := MoveManagers(live.GetManagedFields(), from, to)
	if err != nil || !moved {
		return false, err
	}
	patch, err := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/resourceVersion", "value": live.GetResourceVersion()},
		{"op": "replace", "path": "/metadata/managedFields", "value": fields},
	})
	if err != nil {
		return false, fmt.Errorf("cannot encode managed fields patch: %w", err)
	}
	if err := c.Patch(ctx, live, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		return false, fmt.Errorf("cannot move the fields of %s from field manager %v to %q: %w", ownership.Describe(live), from, to, err)
	}
	return true, nil
}
