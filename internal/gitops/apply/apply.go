package apply

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/kit/health"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/kit/ssa"
)

// Entry identifies an applied object.
type Entry struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
}

// Key is the version-independent identity of an entry.
func (e Entry) Key() string {
	gv, _ := schema.ParseGroupVersion(e.APIVersion)
	return gv.Group + "/" + e.Kind + "/" + e.Namespace + "/" + e.Name
}

func (e Entry) String() string {
	if e.Namespace == "" {
		return e.Kind + "/" + e.Name
	}
	return e.Kind + "/" + e.Namespace + "/" + e.Name
}

// EntryOf returns the entry of an object.
func EntryOf(u *unstructured.Unstructured) Entry {
	return Entry{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

// Action says what an apply did to one object.
type Action string

// Actions.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
)

// Change is one applied object and what happened to it.
type Change struct {
	Entry  Entry
	Action Action
	// ResourceVersion after the apply.
	ResourceVersion string
}

// ObjectError is an apply error naming the object.
type ObjectError struct {
	Entry Entry
	Err   error
}

func (e *ObjectError) Error() string { return e.Entry.String() + ": " + e.Err.Error() }
func (e *ObjectError) Unwrap() error { return e.Err }

// PruneAnnotation set to "disabled" keeps an object when it leaves the
// inventory.
const PruneAnnotation = "strata.dev/prune"

// Applier applies and prunes with one client.
type Applier struct {
	// Client to read and write with (perhaps impersonating a service
	// account).
	Client client.Client
	// Owner is the writer the objects are applied for (a Sync): its mark
	// (labels) goes on every applied object, it applies with its own field
	// manager, and an existing object it neither controls nor was handed
	// with the adopt annotation is refused with an *ownership.ConflictError.
	Owner ownership.Owner
	// Workers applies that many objects of a stage at once.
	Workers int
	// EstablishTimeout bounds the wait for CRDs and XRDs.
	EstablishTimeout time.Duration
	// DryRun applies with dryRun=All (for diff).
	DryRun bool
	// Prepare, when set, may change each object just before it is applied,
	// given the live object as read (nil when it does not exist yet).
	Prepare func(live, desired *unstructured.Unstructured)
	// Known maps entry keys to the last write stamp seen, so an apply that
	// changed nothing is reported Unchanged; may be nil.
	Known map[string]string
}

// Stage orders kinds: 0 for CRDs and Namespaces, 1 for XRDs and
// Compositions, 2 for the rest.
func Stage(gvk schema.GroupVersionKind) int {
	switch {
	case gvk.Group == "apiextensions.k8s.io" && gvk.Kind == "CustomResourceDefinition", gvk.Group == "" && gvk.Kind == "Namespace":
		return 0
	case gvk.Group == "apiextensions.strata.dev" && (gvk.Kind == "CompositeResourceDefinition" || gvk.Kind == "Composition"):
		return 1
	}
	return 2
}

// Normalize sets namespaces: targetNamespace on every namespaced object when
// set, else defaultNamespace where the object has none; cluster-scoped
// objects lose any namespace. Kinds the cluster does not know yet (defined
// by a CRD in the same build) are taken as namespaced unless their CRD in
// objs says Cluster.
func Normalize(mapper meta.RESTMapper, objs []*unstructured.Unstructured, defaultNamespace, targetNamespace string) error {
	crdScope := map[schema.GroupKind]string{}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			g, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			k, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			s, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			crdScope[schema.GroupKind{Group: g, Kind: k}] = s
		}
	}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		namespaced := true
		if s, ok := crdScope[gvk.GroupKind()]; ok {
			namespaced = s != "Cluster"
		} else if m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
			namespaced = m.Scope.Name() == meta.RESTScopeNameNamespace
		} else if !meta.IsNoMatchError(err) {
			return fmt.Errorf("cannot map %s: %w", gvk, err)
		} else if Stage(gvk) < 2 || gvk.Group == "rbac.authorization.k8s.io" && strings.HasPrefix(gvk.Kind, "Cluster") {
			namespaced = false
		}
		switch {
		case !namespaced:
			o.SetNamespace("")
		case targetNamespace != "":
			o.SetNamespace(targetNamespace)
		case o.GetNamespace() == "":
			o.SetNamespace(defaultNamespace)
		}
	}
	return nil
}

// Apply applies objs stage by stage and returns what it did. On error the
// changes made so far are returned with it.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured) ([]Change, error) {
	stages := make([][]*unstructured.Unstructured, 3)
	for _, o := range objs {
		s := Stage(o.GroupVersionKind())
		stages[s] = append(stages[s], o)
	}
	var all []Change
	for i, st := range stages {
		if len(st) == 0 {
			continue
		}
		changes, err := a.applyStage(ctx, st)
		all = append(all, changes...)
		if err != nil {
			return all, err
		}
		if i < 2 && !a.DryRun {
			if err := a.waitEstablished(ctx, st); err != nil {
				return all, err
			}
		}
	}
	return all, nil
}

func (a *Applier) applyStage(ctx context.Context, objs []*unstructured.Unstructured) ([]Change, error) {
	workers := a.Workers
	if workers < 1 {
		workers = 1
	}
	changes := make([]Change, len(objs))
	errs := make([]error, len(objs))
	var wg sync.WaitGroup
	next := make(chan int)
	var mu sync.Mutex
	for w := 0; w < workers && w < len(objs); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				changes[i], errs[i] = a.applyOne(ctx, objs[i], &mu)
			}
		}()
	}
	for i := range objs {
		next <- i
	}
	close(next)
	wg.Wait()
	var out []Change
	for i := range objs {
		if errs[i] != nil {
			return out, errs[i]
		}
		out = append(out, changes[i])
	}
	return out, nil
}

func (a *Applier) applyOne(ctx context.Context, in *unstructured.Unstructured, mu *sync.Mutex) (Change, error) {
	o := in.DeepCopy()
	e := EntryOf(o)
	live, err := a.checkOwnership(ctx, o)
	if err != nil {
		return Change{}, err
	}
	if a.Prepare != nil {
		a.Prepare(live, o)
	}
	a.Owner.SetMark(o)
	o.SetManagedFields(nil)
	o.SetResourceVersion("")
	delete(o.Object, "status")
	// The Sync controls every object it gets here (checkOwnership refused
	// the others): its fields are the Sync's, whoever wrote them last.
	// The object checked is the one changed: one deleted and made again
	// (by someone else, perhaps) since the check is refused, not taken.
	opts := ssa.Options{FieldManager: a.FieldManager(), Policy: ssa.Force, DryRun: a.DryRun}
	if live != nil {
		opts.UID = live.GetUID()
	}
	if err := ssa.Apply(ctx, a.Client, o, opts); err != nil {
		if ssa.IsReplaced(err) {
			err = errors.New("it was deleted and made again since its ownership was checked; it is checked again at the next reconcile")
		}
		return Change{}, &ObjectError{Entry: e, Err: cleanErr(err)}
	}
	rv := o.GetResourceVersion()
	stamp := a.writeStamp(o)
	act := Configured
	mu.Lock()
	defer mu.Unlock()
	if a.Known != nil {
		if prev, ok := a.Known[e.Key()]; !ok {
			act = Created
		} else if prev == stamp {
			act = Unchanged
		}
		a.Known[e.Key()] = stamp
	}
	return Change{Entry: e, Action: act, ResourceVersion: rv}, nil
}

// Labels are the ownership labels put on every applied object.
func (a *Applier) Labels() map[string]string {
	u := &unstructured.Unstructured{}
	a.Owner.SetMark(u)
	return u.GetLabels()
}

// FieldManager is the server-side apply field manager the applier writes
// with: the owner's own.
func (a *Applier) FieldManager() string { return a.Owner.FieldManager() }

// checkOwnership reads the live object and refuses to write one that the
// owner neither controls nor was handed (ownership.Decide). An object that
// an older Strata applied for this owner with the shared field manager is
// moved over to the owner's field manager first, so fields it no longer
// sets are removed as usual.
//
// It returns the live object, or nil when there is none yet.
func (a *Applier) checkOwnership(ctx context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	err := a.Client.Get(ctx, client.ObjectKeyFromObject(o), live)
	switch {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return nil, nil
	case err != nil:
		return nil, &ObjectError{Entry: EntryOf(o), Err: cleanErr(err)}
	}
	d, err := ownership.Decide(live, a.Owner)
	if err != nil {
		return nil, err
	}
	if d == ownership.Update && !a.DryRun {
		if err := a.migrateFieldManager(ctx, live); err != nil {
			return nil, &ObjectError{Entry: EntryOf(o), Err: fmt.Errorf("cannot move fields from field manager %q to %q: %w", ssa.LegacyFieldManager, a.FieldManager(), cleanErr(err))}
		}
	}
	return live, nil
}

// migrateFieldManager moves the shared field manager's apply entry of live
// to the owner's (kit/ssa.Migrate: the union of both, so no field is left to
// the old manager or owned twice; Flux does the same when its manager name
// changes).
func (a *Applier) migrateFieldManager(ctx context.Context, live *unstructured.Unstructured) error {
	mine := a.FieldManager()
	if mine == ssa.LegacyFieldManager {
		return nil
	}
	_, err := ssa.Migrate(ctx, a.Client, live, []string{ssa.LegacyFieldManager}, mine)
	return err
}

// writeStamp identifies the last write Strata made to an object: its
// generation and the time and size of Strata's managed-fields entry, which
// an apply that changes nothing leaves alone (unlike resourceVersion, which
// status updates by other controllers move).
func (a *Applier) writeStamp(o *unstructured.Unstructured) string {
	for _, mf := range o.GetManagedFields() {
		if mf.Manager == a.FieldManager() && mf.Operation == "Apply" && mf.Subresource == "" {
			n := 0
			if mf.FieldsV1 != nil {
				n = len(mf.FieldsV1.Raw)
			}
			t := ""
			if mf.Time != nil {
				t = mf.Time.UTC().Format("2006-01-02T15:04:05Z")
			}
			return fmt.Sprintf("%d/%s/%d", o.GetGeneration(), t, n)
		}
	}
	return o.GetResourceVersion()
}

// cleanErr keeps the API server's message and drops the Go error chain.
func cleanErr(err error) error {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return errors.New(se.Status().Message)
	}
	return err
}

// waitEstablished waits for the CRDs (Established), XRDs (Established) and
// Compositions (Valid, when they report it) of a stage.
func (a *Applier) waitEstablished(ctx context.Context, objs []*unstructured.Unstructured) error {
	timeout := a.EstablishTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	for _, o := range objs {
		kind := o.GetKind()
		cond := ""
		switch kind {
		case "CustomResourceDefinition", "CompositeResourceDefinition":
			cond = "Established"
		case "Composition":
			cond = "Valid"
		default:
			continue
		}
		var last string
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(o.GroupVersionKind())
			if err := a.Client.Get(ctx, client.ObjectKeyFromObject(o), u); err != nil {
				last = err.Error()
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			if kind == "Composition" && len(conds) == 0 {
				return true, nil // no composition engine reporting validity
			}
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == cond {
					last = fmt.Sprint(m["message"])
					return m["status"] == "True", nil
				}
			}
			last = cond + " condition not reported yet"
			return false, nil
		})
		if err != nil {
			return &ObjectError{Entry: EntryOf(o), Err: fmt.Errorf("not %s within %s: %s", strings.ToLower(cond), timeout, last)}
		}
	}
	return nil
}

// Diff returns the entries of old that are not in current, in reverse
// stage order (the rest first, Namespaces and CRDs last).
func Diff(old, current []Entry) []Entry {
	keep := map[string]bool{}
	for _, e := range current {
		keep[e.Key()] = true
	}
	var out []Entry
	for _, e := range old {
		if !keep[e.Key()] {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return stageOf(out[i]) > stageOf(out[j])
	})
	return out
}

func stageOf(e Entry) int {
	gv, _ := schema.ParseGroupVersion(e.APIVersion)
	return Stage(gv.WithKind(e.Kind))
}

// Pruned says what happened to one stale object.
type Pruned struct {
	Entry Entry
	// Deleted is false when the object was kept (annotation, not ours, or
	// already gone).
	Deleted bool
	Reason  string
}

// Prune deletes stale entries that the owner still controls (labels
// pointing at another Sync, or none, keep the object) and that are not
// annotated strata.dev/prune: disabled. The delete is conditional on the
// object read, so an object handed to another owner in between is kept.
func (a *Applier) Prune(ctx context.Context, stale []Entry) ([]Pruned, error) {
	var out []Pruned
	for _, e := range stale {
		p, err := a.pruneOne(ctx, e)
		if err != nil {
			return out, &ObjectError{Entry: e, Err: cleanErr(err)}
		}
		out = append(out, p)
	}
	return out, nil
}

// pruneAttempts bounds the re-reads of an object that changed between the
// read and the conditional delete (a controller writing its status).
const pruneAttempts = 3

func (a *Applier) pruneOne(ctx context.Context, e Entry) (Pruned, error) {
	var err error
	for range pruneAttempts {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(e.APIVersion)
		u.SetKind(e.Kind)
		err = a.Client.Get(ctx, client.ObjectKey{Namespace: e.Namespace, Name: e.Name}, u)
		switch {
		case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
			return Pruned{Entry: e, Reason: "already gone"}, nil
		case err != nil:
			return Pruned{}, err
		case u.GetAnnotations()[PruneAnnotation] == "disabled":
			return Pruned{Entry: e, Reason: PruneAnnotation + ": disabled"}, nil
		case !a.Owner.Controls(u):
			return Pruned{Entry: e, Reason: "owned by " + ownership.CurrentOwner(u) + ", not " + a.Owner.String()}, nil
		case a.DryRun:
			return Pruned{Entry: e, Deleted: true}, nil
		}
		uid, rv := u.GetUID(), u.GetResourceVersion()
		pre := client.Preconditions{UID: &uid, ResourceVersion: &rv}
		err = a.Client.Delete(ctx, u, client.PropagationPolicy("Background"), pre)
		switch {
		case err == nil || apierrors.IsNotFound(err):
			return Pruned{Entry: e, Deleted: true}, nil
		case !apierrors.IsConflict(err):
			return Pruned{}, err
		}
	}
	return Pruned{}, err
}

// Health reads each entry and returns its kstatus; a missing object is
// NotFound.
func Health(ctx context.Context, c client.Reader, entries []Entry) (map[Entry]health.Result, error) {
	return HealthWith(ctx, c, entries, nil)
}

// Override decides the health of an object that was read, instead of
// health.Compute; ok false keeps Compute's answer.
type Override func(ctx context.Context, u *unstructured.Unstructured) (res health.Result, ok bool, err error)

// HealthWith is Health with an override for some objects (a Deployment that
// a Rollout rolls out takes the Rollout's health). An override's error
// fails the whole check.
func HealthWith(ctx context.Context, c client.Reader, entries []Entry, override Override) (map[Entry]health.Result, error) {
	out := make(map[Entry]health.Result, len(entries))
	for _, e := range entries {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(e.APIVersion)
		u.SetKind(e.Kind)
		err := c.Get(ctx, client.ObjectKey{Namespace: e.Namespace, Name: e.Name}, u)
		switch {
		case apierrors.IsNotFound(err):
			out[e] = health.Compute(nil)
		case err != nil:
			return nil, fmt.Errorf("cannot read %s: %w", e, err)
		default:
			out[e] = health.Compute(u)
			if override != nil {
				res, ok, err := override(ctx, u)
				if err != nil {
					return nil, err
				}
				if ok {
					out[e] = res
				}
			}
		}
	}
	return out, nil
}
