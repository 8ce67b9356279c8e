package managed

import (
	"context"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/conditions"
	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// Referenced describes the kind a reference points to.
type Referenced struct {
	// Kind names the kind in messages, e.g. "Role".
	Kind string
	// New returns an empty object of the kind.
	New func() Managed
	// NewList returns an empty list of the kind.
	NewList func() client.ObjectList
}

// ResolveReference sets *value to the external name of the managed resource
// named by ref, or of the first (by name) one matching sel. The referenced
// resource must be Ready. It reports whether *value changed, and returns a
// *ReferenceError while the target is missing or not Ready. With neither ref
// nor sel it does nothing.
func ResolveReference(ctx context.Context, c client.Reader, value *string, ref *managedv1.Reference, sel *managedv1.Selector, to Referenced) (bool, error) {
	var target Managed
	switch {
	case ref != nil:
		obj := to.New()
		if err := c.Get(ctx, client.ObjectKey{Name: ref.Name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				return false, &ReferenceError{Kind: to.Kind, Name: ref.Name, Reason: "not found"}
			}
			return false, fmt.Errorf("cannot get %s %q: %w", to.Kind, ref.Name, err)
		}
		target = obj
	case sel != nil:
		l := to.NewList()
		if err := c.List(ctx, l, client.MatchingLabels(sel.MatchLabels)); err != nil {
			return false, fmt.Errorf("cannot list %s: %w", to.Kind, err)
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return false, err
		}
		if len(items) == 0 {
			return false, &ReferenceError{Kind: to.Kind, Reason: fmt.Sprintf("labels %v", sel.MatchLabels)}
		}
		sort.Slice(items, func(i, j int) bool {
			return items[i].(client.Object).GetName() < items[j].(client.Object).GetName()
		})
		target = items[0].(Managed)
	default:
		return false, nil
	}
	if !conditions.IsTrue(target, conditions.Ready) {
		return false, &ReferenceError{Kind: to.Kind, Name: target.GetName(), Reason: "not Ready"}
	}
	name := ExternalName(target)
	if *value == name {
		return false, nil
	}
	*value = name
	return true, nil
}
