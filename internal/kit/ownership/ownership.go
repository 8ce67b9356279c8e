package ownership

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// AnnotationAdopt is set on an existing object by whoever controls it to hand
// it over to a Strata writer. Its value is the writer's Ref, for example
// "Sync/team-a/app" or "XPostgreSQLDatabase/db-x7k2p". Without it, Strata never
// modifies or deletes an object it did not create.
const AnnotationAdopt = "strata.dev/adopt"

// Labels a Sync puts on every object it applies. Prune deletes only objects
// that still carry them.
const (
	LabelSyncName      = "gitops.strata.dev/sync-name"
	LabelSyncNamespace = "gitops.strata.dev/sync-namespace"
)

// ReasonResourceConflict is the condition reason of a writer that found an
// object it must not touch.
const ReasonResourceConflict = "ResourceConflict"

// maxFieldManager is the API server's limit on a field manager's length.
const maxFieldManager = 128

// Mark is how a writer recognises and sets its claim on an object.
type Mark int

const (
	// ControllerRef marks with a controller owner reference (composites:
	// garbage collection deletes composed resources after their XR).
	ControllerRef Mark = iota
	// SyncLabels marks with LabelSyncName and LabelSyncNamespace.
	SyncLabels
	// OwnerRef marks with an owner reference that is not a controller
	// reference (a managed resource's connection Secret: garbage collection
	// deletes it with the resource, and a composite resource that composes
	// the Secret may still become its controller).
	OwnerRef
)

// Owner is a writer Strata acts for.
type Owner struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	UID        types.UID
	Mark       Mark
}

// String names the owner for messages: "Sync team-a/app".
func (o Owner) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Ref is the value of AnnotationAdopt that hands an object to this owner.
func (o Owner) Ref() string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Namespace + "/" + o.Name
}

// FieldManager is the server-side apply field manager this owner writes with,
// so that the API server tells writers apart: "strata/sync/team-a/app". Names
// longer than the API server allows end in a hash of the whole name.
func (o Owner) FieldManager() string {
	m := "strata/" + strings.ToLower(o.Kind) + "/"
	if o.Namespace != "" {
		m += o.Namespace + "/"
	}
	m += o.Name
	if len(m) <= maxFieldManager {
		return m
	}
	sum := sha256.Sum256([]byte(m))
	h := hex.EncodeToString(sum[:])[:16]
	return m[:maxFieldManager-17] + "-" + h
}

// Controls reports whether obj carries this owner's mark.
func (o Owner) Controls(obj metav1.Object) bool {
	switch o.Mark {
	case SyncLabels:
		l := obj.GetLabels()
		return l[LabelSyncName] == o.Name && l[LabelSyncNamespace] == o.Namespace
	case OwnerRef:
		for _, ref := range obj.GetOwnerReferences() {
			if o.UID != "" && ref.UID == o.UID {
				return true
			}
		}
		return false
	default:
		ref := metav1.GetControllerOfNoCopy(obj)
		return ref != nil && o.UID != "" && ref.UID == o.UID
	}
}

// SetMark puts this owner's mark on obj (an object about to be applied).
func (o Owner) SetMark(obj metav1.Object) {
	switch o.Mark {
	case SyncLabels:
		l := obj.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		l[LabelSyncName], l[LabelSyncNamespace] = o.Name, o.Namespace
		obj.SetLabels(l)
	case OwnerRef:
		refs := []metav1.OwnerReference{{APIVersion: o.APIVersion, Kind: o.Kind, Name: o.Name, UID: o.UID}}
		for _, r := range obj.GetOwnerReferences() {
			if r.UID != o.UID {
				refs = append(refs, r)
			}
		}
		obj.SetOwnerReferences(refs)
	default:
		t := true
		refs := []metav1.OwnerReference{{APIVersion: o.APIVersion, Kind: o.Kind, Name: o.Name, UID: o.UID, Controller: &t, BlockOwnerDeletion: &t}}
		for _, r := range obj.GetOwnerReferences() {
			if r.Controller == nil || !*r.Controller {
				refs = append(refs, r)
			}
		}
		obj.SetOwnerReferences(refs)
	}
}

// Decision is what a writer may do with an object.
type Decision int

const (
	// Create: the object does not exist.
	Create Decision = iota
	// Update: the writer controls the object.
	Update
	// Adopt: the object's owner handed it over with AnnotationAdopt.
	Adopt
)

func (d Decision) String() string {
	return [...]string{"create", "update", "adopt"}[d]
}

// Decide says whether owner may write obj, the live object or nil when it
// does not exist. Anything the owner neither controls nor was handed is a
// *ConflictError.
func Decide(obj metav1.Object, owner Owner) (Decision, error) {
	if obj == nil {
		return Create, nil
	}
	if owner.Controls(obj) {
		return Update, nil
	}
	if obj.GetAnnotations()[AnnotationAdopt] == owner.Ref() && metav1.GetControllerOfNoCopy(obj) == nil {
		return Adopt, nil
	}
	return 0, &ConflictError{Object: Describe(obj), Owner: owner.String(), CurrentOwner: CurrentOwner(obj)}
}

// ConflictError says that an object exists and belongs to someone else.
type ConflictError struct {
	// Object names the object: "ConfigMap kube-system/victim".
	Object string
	// Owner is the writer that was refused.
	Owner string
	// CurrentOwner names who holds the object now.
	CurrentOwner string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s already exists and is owned by %s; %s does not modify it (its owner may hand it over with the %s annotation)",
		e.Object, e.CurrentOwner, e.Owner, AnnotationAdopt)
}

// IsConflict reports whether err is, or wraps, a *ConflictError.
func IsConflict(err error) bool {
	var c *ConflictError
	return errors.As(err, &c)
}

// Describe names an object for messages: "ConfigMap kube-system/victim".
func Describe(obj metav1.Object) string {
	kind := ""
	switch k := obj.(type) {
	case interface{ GetKind() string }:
		kind = k.GetKind()
	case interface{ GetObjectKind() schema.ObjectKind }:
		// Typed objects: their TypeMeta, when the caller set it.
		kind = k.GetObjectKind().GroupVersionKind().Kind
	}
	name := obj.GetName()
	if obj.GetNamespace() != "" {
		name = obj.GetNamespace() + "/" + name
	}
	if kind == "" {
		return name
	}
	return kind + " " + name
}

// CurrentOwner names who holds obj: its controller, the Sync that applied it,
// or the field managers that wrote it.
func CurrentOwner(obj metav1.Object) string {
	if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
		return ref.Kind + " " + ref.Name
	}
	l := obj.GetLabels()
	if l[LabelSyncName] != "" {
		return "Sync " + l[LabelSyncNamespace] + "/" + l[LabelSyncName]
	}
	seen := map[string]bool{}
	var managers []string
	for _, f := range obj.GetManagedFields() {
		if f.Manager != "" && !seen[f.Manager] {
			seen[f.Manager] = true
			managers = append(managers, f.Manager)
		}
	}
	if len(managers) > 0 {
		sort.Strings(managers)
		return "another writer (field managers " + strings.Join(managers, ", ") + ")"
	}
	return "another writer"
}
