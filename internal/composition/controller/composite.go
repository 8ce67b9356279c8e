package controller

import (
	"context"
	"errors"
	"fmt"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"

	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/render"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/connsecret"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/kit/patch"
	"github.com/strata-dev/strata/internal/kit/ssa"
)

// Annotations and finalizers on composites and claims.
const (
	// AnnotationPaused "true" stops reconciliation of an XR or claim.
	AnnotationPaused = "strata.dev/paused"
	// FinalizerComposite deletes composed resources in reverse order first.
	FinalizerComposite = "apiextensions.strata.dev/composite"
	// FinalizerClaim deletes the claim's XR first.
	FinalizerClaim = "apiextensions.strata.dev/claim"
	// fieldOwnerXR writes the XR's own spec fields (composition selection).
	fieldOwnerXR = "strata-composite"
)

// Event reasons of composites and claims.
const (
	ReasonSelectComposition       = "SelectComposition"
	ReasonComposeResources        = "ComposeResources"
	ReasonPublishConnectionSecret = "PublishConnectionSecret"
	ReasonBindCompositeResource   = "BindCompositeResource"
	ReasonDeleteResources         = "DeleteResources"
)

// compositeReconciler reconciles the XRs of one kind.
type compositeReconciler struct {
	client   client.Client
	recorder events.EventRecorder
	gvk      schema.GroupVersionKind
	xrdName  string
	engine   *Engine
	ctrl     controller.Controller

	mu      sync.Mutex
	watched map[schema.GroupVersionKind]bool
}

// scope is what the phases of one XR reconcile share.
type scope struct {
	xr       *unstructured.Unstructured
	orig     *unstructured.Unstructured
	conds    *condObj
	xrd      *v1alpha1.CompositeResourceDefinition
	rev      *v1alpha1.CompositionRevision
	plan     *render.Plan
	env      map[string]any
	observed map[string]*unstructured.Unstructured
	out      *render.Output
	created  int
	actions  actions
	// problems are the composed resources the XR may not write, found by
	// the last apply: reported as Synced=False.
	problems []problem
}

// problem is a composed resource that was not applied because the XR may
// not write it: its object belongs to someone else (ResourceConflict) or a
// claim would put it outside its namespace (NamespaceNotAllowed).
type problem struct {
	reason  string
	message string
}

func (r *compositeReconciler) Reconcile(ctx context.Context, req reconcile.Request) (res reconcile.Result, retErr error) {
	log := ctrl.LoggerFrom(ctx)
	xr := &unstructured.Unstructured{}
	xr.SetGroupVersionKind(r.gvk)
	if err := r.client.Get(ctx, req.NamespacedName, xr); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if xr.GetDeletionTimestamp() != nil && r.engine.wasReleased(xr.GetUID()) {
		// Its finalizer is gone; the cache has not seen that yet.
		return reconcile.Result{}, nil
	}
	if xr.GetAnnotations()[AnnotationPaused] == "true" {
		return reconcile.Result{}, markPaused(ctx, r.client, xr)
	}
	s := &scope{xr: xr, orig: xr.DeepCopy(), conds: readConds(xr)}
	h := patch.NewHelper(r.client, xr)
	defer func() {
		if xr.GetDeletionTimestamp() != nil && !controllerutil.ContainsFinalizer(xr, FinalizerComposite) {
			r.engine.statusMemory.Forget(xr.GetUID())
			r.engine.metaWrites.forget(xr.GetUID())
			r.engine.handoffs.forget(xr.GetUID())
			return
		}
		if retErr != nil {
			msg := retErr.Error()
			conditions.Set(s.conds, conditions.Synced, metav1.ConditionFalse, reasonOf(retErr), msg)
			if errors.Is(retErr, reconcile.TerminalError(nil)) {
				conditions.MarkStalled(s.conds, reasonOf(retErr), msg)
			} else if c := conditions.Get(s.conds, conditions.Ready); c == nil || c.Status != metav1.ConditionTrue {
				conditions.MarkFailed(s.conds, conditions.ReasonReconcileError, msg)
			}
		} else {
			_ = unstructured.SetNestedField(xr.Object, xr.GetGeneration(), "status", "observedGeneration")
		}
		s.conds.write()
		// A status that changes the XR's readiness goes to its claim
		// controller as it is sent (handoff.go).
		if xr.GetDeletionTimestamp() == nil && compositeReadinessChanged(s.orig, xr) {
			r.engine.handoffs.offer(xr)
		}
		// Only this controller writes an XR's status, so what it wrote
		// last need not be sent again from a cache that has not seen it.
		err := h.Status(ctx, xr, patch.WithMemory(r.engine.statusMemory))
		r.engine.handoffs.written(xr.GetUID(), err)
		if err != nil && !apierrors.IsNotFound(err) {
			log.Error(err, "cannot patch composite status")
			retErr = errors.Join(retErr, err)
		}
	}()
	conditions.EnsureInitialized(s.conds)

	if xr.GetDeletionTimestamp() != nil {
		return r.reconcileDelete(ctx, s)
	}
	for _, phase := range []func(context.Context, *scope) error{
		r.selectRevision, r.loadEnvironment, r.observe, r.compose, r.publishConnection, r.setStatus,
	} {
		if err := phase(ctx, s); err != nil {
			if errors.Is(err, errWait) {
				// The Composition's watch brings the XR back; this is a
				// safety net.
				return reconcile.Result{RequeueAfter: kitreconcile.Jitter(30 * time.Second)}, nil
			}
			return reconcile.Result{}, err
		}
	}
	if s.out != nil && !s.out.Ready {
		// Watches on composed resources bring us back; this is a safety net.
		return reconcile.Result{RequeueAfter: kitreconcile.Jitter(30 * time.Second)}, nil
	}
	return reconcile.Result{RequeueAfter: kitreconcile.Jitter(r.engine.pollInterval)}, nil
}

// reasonOf is the Stalled/Synced reason of err: the reason given to
// kitreconcile.Terminal, else ReconcileError.
func reasonOf(err error) string {
	if r := kitreconcile.ReasonOf(err); r != "" {
		return r
	}
	return conditions.ReasonReconcileError
}

// selectRevision picks the Composition (enforced, compositionRef, selector,
// XRD default) and the revision (latest for Automatic, pinned for Manual).
// Whatever picked it, the Composition must be written for this composite
// kind and a pinned revision must belong to it: otherwise the XR is
// CompositionMismatch and nothing is composed.
func (r *compositeReconciler) selectRevision(ctx context.Context, s *scope) error {
	s.xrd = &v1alpha1.CompositeResourceDefinition{}
	if err := r.client.Get(ctx, client.ObjectKey{Name: r.xrdName}, s.xrd); err != nil {
		return fmt.Errorf("cannot get XRD %s: %w", r.xrdName, err)
	}
	comp, rev, err := chooseRevision(ctx, r.client, r.gvk, s.xrd, s.xr)
	if w := (*waitError)(nil); errors.As(err, &w) {
		conditions.MarkProgressing(s.conds, conditions.ReasonCreating, w.msg)
		return errWait
	}
	if err != nil {
		return err
	}
	name, revName := comp.Name, rev.Name
	curComp, _, _ := unstructured.NestedString(s.xr.Object, "spec", "compositionRef", "name")
	s.rev = rev
	oldRev, _, _ := unstructured.NestedString(s.xr.Object, "spec", "compositionRevisionRef", "name")
	// One patch records the selection and adds the finalizer.
	patch := map[string]any{}
	if !controllerutil.ContainsFinalizer(s.xr, FinalizerComposite) {
		patch["metadata"] = map[string]any{"finalizers": append(s.xr.GetFinalizers(), FinalizerComposite)}
	}
	if curComp != name || oldRev != revName {
		patch["spec"] = map[string]any{
			"compositionRef":         map[string]any{"name": name},
			"compositionRevisionRef": map[string]any{"name": revName},
		}
	}
	if len(patch) > 0 && r.engine.metaWrites.lags(s.xr) {
		// The cache has not seen this controller's own patch yet: the
		// selection (a function of the same inputs) is recorded already,
		// and so is its event.
		patch = nil
		curComp, oldRev = name, revName
	}
	if len(patch) > 0 {
		data, _ := utiljson.Marshal(patch)
		if err := r.client.Patch(ctx, s.xr, client.RawPatch("application/merge-patch+json", data), client.FieldOwner(fieldOwnerXR)); err != nil {
			return fmt.Errorf("cannot record the selected composition: %w", err)
		}
		r.engine.metaWrites.record(s.xr)
	}
	if curComp != name || oldRev != revName {
		if curComp != name {
			r.recorder.Eventf(s.xr, comp, corev1.EventTypeNormal, ReasonSelectComposition, "Select", "selected composition %s revision %d", name, rev.Spec.Revision)
		} else {
			r.recorder.Eventf(s.xr, rev, corev1.EventTypeNormal, ReasonSelectComposition, "Select", "now using composition %s revision %d", name, rev.Spec.Revision)
		}
	}
	plan, err := r.engine.plan(rev)
	if err != nil {
		return kitreconcile.Terminal(conditions.ReasonCompositionInvalid, fmt.Errorf("composition revision %s is invalid: %w", rev.Name, err))
	}
	s.plan = plan
	return nil
}

// waitError says the XR waits for its Composition to be validated.
type waitError struct{ msg string }

func (w *waitError) Error() string { return w.msg }

// chooseRevision picks the Composition and revision of an XR of kind gvk:
// see selectRevision. It reads and writes nothing but the cache, so a claim
// uses it too, to create its XR with its references in one request.
func chooseRevision(ctx context.Context, c client.Client, gvk schema.GroupVersionKind, x *v1alpha1.CompositeResourceDefinition, xr *unstructured.Unstructured) (*v1alpha1.Composition, *v1alpha1.CompositionRevision, error) {
	name, err := compositionName(ctx, c, gvk, x, xr)
	if err != nil {
		return nil, nil, err
	}
	comp := &v1alpha1.Composition{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, comp); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, kitreconcile.Terminal(conditions.ReasonCompositionInvalid, fmt.Errorf("composition %q not found", name))
		}
		return nil, nil, fmt.Errorf("cannot get composition %s: %w", name, err)
	}
	if !composes(comp.Spec.CompositeTypeRef, gvk) {
		return nil, nil, kitreconcile.Terminal(v1alpha1.ReasonCompositionMismatch, fmt.Errorf("composition %s composes %s %s, not %s %s",
			name, comp.Spec.CompositeTypeRef.APIVersion, comp.Spec.CompositeTypeRef.Kind, gvk.GroupVersion(), gvk.Kind))
	}
	policy, _, _ := unstructured.NestedString(xr.Object, "spec", "compositionUpdatePolicy")
	if policy == "" {
		policy = string(x.Spec.DefaultCompositionUpdatePolicy)
	}
	revName, _, _ := unstructured.NestedString(xr.Object, "spec", "compositionRevisionRef", "name")
	curComp, _, _ := unstructured.NestedString(xr.Object, "spec", "compositionRef", "name")
	if policy != string(v1alpha1.UpdateManual) || revName == "" || curComp != name {
		revName = comp.Status.LatestRevisionName
	}
	if revName == "" {
		if c := conditions.Get(comp, v1alpha1.Valid); c != nil && c.Status == metav1.ConditionFalse {
			return nil, nil, kitreconcile.Terminal(conditions.ReasonCompositionInvalid, fmt.Errorf("composition %s is invalid: %s", name, c.Message))
		}
		return nil, nil, &waitError{msg: fmt.Sprintf("waiting for composition %s to be validated", name)}
	}
	rev := &v1alpha1.CompositionRevision{}
	if err := c.Get(ctx, client.ObjectKey{Name: revName}, rev); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, kitreconcile.Terminal(conditions.ReasonCompositionInvalid, fmt.Errorf("composition revision %q not found", revName))
		}
		return nil, nil, fmt.Errorf("cannot get composition revision %s: %w", revName, err)
	}
	// A pinned revision (the claim passes compositionRevisionRef through)
	// must be one of the selected Composition's own.
	if owner := rev.Labels[v1alpha1.LabelCompositionName]; owner != name || !composes(rev.Spec.CompositeTypeRef, gvk) {
		return nil, nil, kitreconcile.Terminal(v1alpha1.ReasonCompositionMismatch, fmt.Errorf("composition revision %s belongs to composition %q composing %s, not to composition %s of %s",
			revName, owner, rev.Spec.CompositeTypeRef.Kind, name, gvk.Kind))
	}
	return comp, rev, nil
}

// errWait stops the phases without an error: the XR waits for something
// that a watch will report.
var errWait = errors.New("waiting")

// compositionName names the Composition an XR uses: the XRD's enforced ref,
// the XR's compositionRef, the first (by name) of the Compositions of this
// kind matching its compositionSelector (for a claim's XR, only those the
// XRD's claimCompositionSelector allows), the XRD's default ref, or the only
// Composition of this kind.
func compositionName(ctx context.Context, c client.Client, gvk schema.GroupVersionKind, x *v1alpha1.CompositeResourceDefinition, xr *unstructured.Unstructured) (string, error) {
	if ref := x.Spec.EnforcedCompositionRef; ref != nil {
		return ref.Name, nil
	}
	if n, _, _ := unstructured.NestedString(xr.Object, "spec", "compositionRef", "name"); n != "" {
		return n, nil
	}
	if sel, ok, _ := unstructured.NestedStringMap(xr.Object, "spec", "compositionSelector", "matchLabels"); ok {
		var allowed *metav1.LabelSelector
		if claim, _, _ := unstructured.NestedString(xr.Object, "spec", "claimRef", "name"); claim != "" {
			allowed = x.Spec.ClaimCompositionSelector
		}
		return selectComposition(ctx, c, gvk, sel, allowed)
	}
	if ref := x.Spec.DefaultCompositionRef; ref != nil {
		return ref.Name, nil
	}
	l := &v1alpha1.CompositionList{}
	if err := c.List(ctx, l); err != nil {
		return "", fmt.Errorf("cannot list compositions: %w", err)
	}
	var names []string
	for _, comp := range l.Items {
		if composes(comp.Spec.CompositeTypeRef, gvk) {
			names = append(names, comp.Name)
		}
	}
	if len(names) == 1 {
		return names[0], nil
	}
	return "", kitreconcile.Terminal(conditions.ReasonCompositionInvalid, fmt.Errorf("no composition selected: set spec.compositionRef or spec.compositionSelector (%d compositions exist for %s)", len(names), gvk.Kind))
}

// loadEnvironment merges the data of the selected EnvironmentConfigs.
func (r *compositeReconciler) loadEnvironment(ctx context.Context, s *scope) error {
	s.env = map[string]any{}
	src := s.rev.Spec.Environment
	if src == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(&src.Selector)
	if err != nil {
		return kitreconcile.Terminal(conditions.ReasonCompositionInvalid, fmt.Errorf("invalid environment selector: %w", err))
	}
	l := &v1alpha1.EnvironmentConfigList{}
	if err := r.client.List(ctx, l, client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return fmt.Errorf("cannot list environment configs: %w", err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	for _, e := range l.Items {
		for k, v := range e.Data {
			var val any
			if err := utiljson.Unmarshal(v.Raw, &val); err != nil {
				return kitreconcile.Terminal(conditions.ReasonReconcileError, fmt.Errorf("environment config %s key %s: %w", e.Name, k, err))
			}
			s.env[k] = val
		}
	}
	return nil
}

// observe lists the composed resources from the cache and watches their kinds.
func (r *compositeReconciler) observe(ctx context.Context, s *scope) error {
	s.observed = map[string]*unstructured.Unstructured{}
	for _, gvk := range s.plan.GVKs {
		if err := r.watch(gvk); err != nil {
			return err
		}
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := r.client.List(ctx, l, client.MatchingFields{indexComposite: s.xr.GetName()}); err != nil {
			if meta.IsNoMatchError(err) {
				return kitreconcile.Terminal(conditions.ReasonReconcileError, fmt.Errorf("kind %s is not served by the API server", gvk))
			}
			return fmt.Errorf("cannot list %s: %w", gvk.Kind, err)
		}
		for i := range l.Items {
			o := &l.Items[i]
			// The connection Secret is owned by the XR too, but is not a
			// composed resource: it has no resource name.
			id := o.GetLabels()[render.LabelResourceName]
			if !ownedBy(o, s.xr) || id == "" {
				continue
			}
			s.observed[id] = o
		}
	}
	return nil
}

func ownedBy(o, owner client.Object) bool {
	ref := metav1.GetControllerOf(o)
	return ref != nil && ref.UID == owner.GetUID()
}

// watch makes composed resources of a kind enqueue their controlling XR.
func (r *compositeReconciler) watch(gvk schema.GroupVersionKind) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.watched[gvk] {
		return nil
	}
	if err := r.engine.ensureIndex(gvk); err != nil {
		return err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	owner := &unstructured.Unstructured{}
	owner.SetGroupVersionKind(r.gvk)
	mgr := r.engine.mgr
	err := r.ctrl.Watch(source.Kind[client.Object](r.engine.composedCache, u, readinessFirst(
		handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), owner, handler.OnlyControllerOwner()), healthChanged)))
	if err != nil {
		return fmt.Errorf("cannot watch %s: %w", gvk, err)
	}
	r.watched[gvk] = true
	return nil
}

func (r *compositeReconciler) render(_ context.Context, s *scope) error {
	ns := s.xr.GetLabels()[render.LabelClaimNamespace]
	if ns == "" {
		ns = s.xr.GetNamespace()
	}
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	out, err := render.Render(render.Input{
		XR: s.xr, Composition: &s.rev.Spec.CompositionSpec, Observed: s.observed,
		Environment: s.env, DefaultNamespace: ns, Plan: s.plan,
		Namespaced: r.namespaced,
	})
	if err != nil {
		return kitreconcile.Terminal(conditions.ReasonCompositionInvalid, fmt.Errorf("cannot render composition revision %s: %w", s.rev.Name, err))
	}
	s.out = out
	return nil
}

// namespaced says whether a kind is namespaced; a kind the API server does
// not serve counts as namespaced (its apply fails later with a clear error).
func (r *compositeReconciler) namespaced(gvk schema.GroupVersionKind) bool {
	m, err := r.engine.mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	return err != nil || m.Scope.Name() != meta.RESTScopeNameRoot
}

// xrOwner is the XR as a writer of composed resources: it marks them with
// its controller reference and applies with its own field manager.
func xrOwner(xr *unstructured.Unstructured) ownership.Owner {
	return ownership.Owner{APIVersion: xr.GetAPIVersion(), Kind: xr.GetKind(), Namespace: xr.GetNamespace(),
		Name: xr.GetName(), UID: xr.GetUID(), Mark: ownership.ControllerRef}
}

// compose renders and applies until nothing new is created: a resource that
// is ready as soon as it exists unblocks its dependents in the same
// reconcile instead of waiting for the watch event of its creation.
func (r *compositeReconciler) compose(ctx context.Context, s *scope) error {
	defer r.reportActions(s)
	for i := 0; i <= len(s.plan.Order); i++ {
		if err := r.render(ctx, s); err != nil {
			return err
		}
		s.created = 0
		if err := r.apply(ctx, s); err != nil {
			return err
		}
		if s.created == 0 {
			return nil
		}
	}
	return r.render(ctx, s)
}

// apply server-side applies every resource whose dependencies are ready,
// and deletes resources that are excluded or no longer in the Composition.
// An object the XR has not composed before is read live first: the XR
// creates it when it does not exist, updates it when it controls it, adopts
// it when its owner handed it over, and otherwise leaves it alone and
// records a ResourceConflict. Only objects the XR controls are deleted.
func (r *compositeReconciler) apply(ctx context.Context, s *scope) error {
	owner := xrOwner(s.xr)
	reader := r.engine.mgr.GetAPIReader()
	var mu sync.Mutex
	var created, updated, adopted, deleted []string
	var problems []problem
	added := 0
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	keep := map[string]bool{}
	controlled := map[types.UID]bool{}
	for _, o := range s.observed {
		controlled[o.GetUID()] = true
	}
	for _, res := range s.out.Resources {
		switch res.State {
		case render.Blocked:
			keep[res.ID] = true
			continue
		case render.Refused:
			// Nothing is applied, and an object composed before stays.
			keep[res.ID] = true
			d := res.Desired
			mu.Lock()
			problems = append(problems, problem{reason: render.ReasonNamespaceNotAllowed, message: fmt.Sprintf(
				"resource %q: %s %s/%s is not composed: namespace %q is neither the claim's namespace %q nor in the resource's allowedNamespaces",
				res.ID, d.GetKind(), d.GetNamespace(), d.GetName(), d.GetNamespace(), s.xr.GetLabels()[render.LabelClaimNamespace])})
			mu.Unlock()
			continue
		case render.Apply:
		default:
			continue
		}
		keep[res.ID] = true
		desired := res.Desired
		// Composed resources carry exactly one owner reference: the XR's.
		desired.SetOwnerReferences(nil)
		owner.SetMark(desired)
		desired.SetLabels(withShard(s.xr, desired.GetLabels()))
		obs := s.observed[res.ID]
		if obs != nil && (obs.GetName() != desired.GetName() || obs.GetNamespace() != desired.GetNamespace()) {
			// The rendered name changed: the new object is checked like
			// any other the XR has not composed yet.
			obs = nil
		}
		// Skip an apply that would change nothing: same values, and no
		// field the XR applied before has left the template.
		// The cache may also not have seen the XR's last apply of this
		// very object yet.
		key, hash := appliedKey(desired), appliedHash(desired)
		if obs != nil && (ssa.Unchanged(desired, obs, owner.FieldManager()) || r.engine.cacheLags(key, hash, obs)) {
			continue
		}
		if obs == nil {
			desired.SetResourceVersion("")
		}
		id := res.ID
		g.Go(func() error {
			what := fmt.Sprintf("resource %q (%s)", id, ownership.Describe(desired))
			decision := ownership.Update
			var live *unstructured.Unstructured
			if obs == nil {
				live = &unstructured.Unstructured{}
				live.SetGroupVersionKind(desired.GroupVersionKind())
				err := reader.Get(gctx, client.ObjectKeyFromObject(desired), live)
				switch {
				case apierrors.IsNotFound(err):
					decision = ownership.Create
				case err != nil:
					return fmt.Errorf("cannot get %s: %w", what, err)
				default:
					if decision, err = decide(live, owner, controlled); err != nil {
						mu.Lock()
						problems = append(problems, problem{reason: ownership.ReasonResourceConflict, message: fmt.Sprintf("resource %q: %v", id, err)})
						mu.Unlock()
						return nil
					}
					if decision == ownership.Update && ownership.Unchanged(desired, live, owner.FieldManager()) {
						// The XR composed it a moment ago and the cache
						// has not seen it yet: applying it again would
						// change nothing.
						mu.Lock()
						defer mu.Unlock()
						added++
						s.observed[id] = live
						return nil
					}
				}
			}
			if decision != ownership.Create && (live != nil && ssa.HasApplyEntry(live, ssa.LegacyFieldManager) || obs != nil && ssa.HasApplyEntry(obs, ssa.LegacyFieldManager)) {
				if err := migrateLegacy(gctx, r.client, reader, desired, owner.FieldManager()); err != nil {
					return fmt.Errorf("cannot apply %s: %w", what, err)
				}
			}
			// The XR controls the object (or was handed it) unless it
			// creates it: then its fields are the XR's, whoever wrote
			// them last (ssa.PolicyFor).
			// An object read before (from the cache, or just now) is
			// changed only while it is that object: one deleted and made
			// again by someone else in between is not taken over.
			opts := ssa.Options{FieldManager: owner.FieldManager(), Policy: ssa.PolicyFor(decision)}
			if decision != ownership.Create {
				if obs != nil {
					opts.UID = obs.GetUID()
				} else if live != nil {
					opts.UID = live.GetUID()
				}
			}
			if err := ssa.Apply(gctx, r.client, desired, opts); err != nil {
				if ssa.IsReplaced(err) {
					return fmt.Errorf("cannot apply %s: it was deleted and made again since it was read; it is checked again: %w", what, err)
				}
				if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
					return kitreconcile.Terminal(conditions.ReasonReconcileError, fmt.Errorf("cannot apply %s: %w", what, err))
				}
				return fmt.Errorf("cannot apply %s: %w", what, err)
			}
			r.engine.recordApply(key, hash, desired.GetResourceVersion())
			mu.Lock()
			defer mu.Unlock()
			switch decision {
			case ownership.Create:
				created = append(created, id)
			case ownership.Adopt:
				adopted = append(adopted, id)
			default:
				updated = append(updated, id)
			}
			if obs == nil {
				added++
				s.observed[id] = desired
			}
			return nil
		})
	}
	err := g.Wait()
	s.created = added
	sort.Slice(problems, func(i, j int) bool { return problems[i].message < problems[j].message })
	s.problems = problems
	for id, o := range s.observed {
		if keep[id] {
			continue
		}
		// Observed objects are those the XR controls; check again, as
		// nothing else may ever be deleted.
		if !ownedBy(o, s.xr) {
			continue
		}
		// Only the object checked: not one made again in its place since.
		uid := o.GetUID()
		if err := r.client.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			if apierrors.IsConflict(err) {
				return fmt.Errorf("cannot delete resource %q: it was made again since it was read; it is checked again: %w", id, err)
			}
			return fmt.Errorf("cannot delete resource %q: %w", id, err)
		}
		deleted = append(deleted, id)
		delete(s.observed, id)
	}
	s.actions.created = append(s.actions.created, created...)
	s.actions.updated = append(s.actions.updated, updated...)
	s.actions.adopted = append(s.actions.adopted, adopted...)
	s.actions.deleted = append(s.actions.deleted, deleted...)
	return err
}

// migrateLegacy moves the fields an older Strata applied to desired's object
// with the shared "strata" field manager to the XR's own (kit/ssa.Migrate,
// on the object read live with its managedFields), so the apply that follows
// removes a field that left the template instead of leaving it owned by the
// old manager, and no field stays owned twice.
func migrateLegacy(ctx context.Context, c client.Client, reader client.Reader, desired *unstructured.Unstructured, manager string) error {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(desired.GroupVersionKind())
	if err := reader.Get(ctx, client.ObjectKeyFromObject(desired), live); err != nil {
		return client.IgnoreNotFound(err)
	}
	_, err := ssa.Migrate(ctx, c, live, []string{ssa.LegacyFieldManager}, manager)
	return err
}

// decide is ownership.Decide, and one more case: an object without a
// controller whose owner references include a composed resource of the XR
// belongs to the XR too (a provider's connection Secret of a composed
// managed resource, which the Composition reads by composing it). Only the
// object's writer can add such a reference, so a claim cannot make one.
func decide(live *unstructured.Unstructured, owner ownership.Owner, controlled map[types.UID]bool) (ownership.Decision, error) {
	d, err := ownership.Decide(live, owner)
	if err == nil || metav1.GetControllerOfNoCopy(live) != nil {
		return d, err
	}
	for _, ref := range live.GetOwnerReferences() {
		if ref.UID != "" && controlled[ref.UID] {
			return ownership.Adopt, nil
		}
	}
	return d, err
}

// actions are what one reconcile did to composed resources, reported in
// one ComposeResources event.
type actions struct{ created, updated, adopted, deleted []string }

// Two kinds of action go without an event, as they are what the user asked
// for and the XR's status shows them: the creation of a claim's XR's
// resources on its first compose (the claim's event reports the XR's
// creation) and updates that follow a change of the XR's spec. Updates that
// repair drift are reported.
func (r *compositeReconciler) reportActions(s *scope) {
	created, updated := s.actions.created, s.actions.updated
	observed, seen, _ := unstructured.NestedInt64(s.orig.Object, "status", "observedGeneration")
	claimed, _, _ := unstructured.NestedString(s.xr.Object, "spec", "claimRef", "name")
	if !seen && claimed != "" {
		created = nil
	}
	updateVerb := "updated"
	if observed != s.xr.GetGeneration() {
		updated = nil
	} else {
		updateVerb = "corrected drift of"
	}
	var parts []string
	for _, p := range []struct {
		verb string
		ids  []string
	}{{"created", created}, {updateVerb, updated}, {"adopted", s.actions.adopted}, {"deleted", s.actions.deleted}} {
		if len(p.ids) > 0 {
			sort.Strings(p.ids)
			parts = append(parts, p.verb+" "+strings.Join(p.ids, ", "))
		}
	}
	if len(parts) > 0 {
		r.recorder.Eventf(s.xr, nil, corev1.EventTypeNormal, ReasonComposeResources, "Compose", "%s", eventmsg.Truncate(strings.Join(parts, "; ")))
	}
}

// publishConnection writes connection details to the Secret named by
// spec.writeConnectionSecretToRef.
func (r *compositeReconciler) publishConnection(ctx context.Context, s *scope) error {
	ref, ok, _ := unstructured.NestedStringMap(s.xr.Object, "spec", "writeConnectionSecretToRef")
	if !ok || ref["name"] == "" {
		return nil
	}
	ns := ref["namespace"]
	if ns == "" {
		ns = s.xr.GetNamespace()
	}
	if ns == "" {
		return kitreconcile.Terminal(conditions.ReasonReconcileError, errors.New("spec.writeConnectionSecretToRef.namespace is required for a cluster-scoped composite"))
	}
	data := map[string][]byte{}
	allowed := map[string]bool{}
	for _, k := range s.xrd.Spec.ConnectionSecretKeys {
		allowed[k] = true
	}
	for k, v := range s.out.ConnectionDetails {
		if len(allowed) == 0 || allowed[k] {
			data[k] = v
		}
	}
	// The kit's publisher reads the Secret live (caching every Secret of the
	// cluster is not worth it), never touches one another owner holds and
	// writes with the XR's own field manager.
	p := connsecret.Publisher{Client: r.client, Reader: r.engine.mgr.GetAPIReader()}
	res, err := p.Publish(ctx, connsecret.Request{Owner: xrOwner(s.xr), Ref: connsecret.Ref{Namespace: ns, Name: ref["name"]}, Data: data,
		Labels: withShard(s.xr, map[string]string{render.LabelComposite: s.xr.GetName()})})
	switch {
	case ownership.IsConflict(err):
		s.problems = append(s.problems, problem{reason: ownership.ReasonResourceConflict, message: "connection secret: " + err.Error()})
		return nil
	case err != nil:
		return err
	case res == connsecret.Unchanged:
		return nil
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	r.recorder.Eventf(s.xr, nil, corev1.EventTypeNormal, ReasonPublishConnectionSecret, "Publish", "published keys [%s] to secret %s/%s", strings.Join(keys, " "), ns, ref["name"])
	return nil
}

// setStatus records resource refs, status fields and Synced/Ready.
func (r *compositeReconciler) setStatus(_ context.Context, s *scope) error {
	var refs []any
	for _, name := range s.out.Order {
		ids := []string{}
		for id := range s.observed {
			if id == name || strings.HasPrefix(id, name+"-") {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		for _, id := range ids {
			o := s.observed[id]
			ref := map[string]any{"apiVersion": o.GetAPIVersion(), "kind": o.GetKind(), "name": o.GetName()}
			if o.GetNamespace() != "" {
				ref["namespace"] = o.GetNamespace()
			}
			refs = append(refs, ref)
		}
	}
	if refs == nil {
		refs = []any{}
	}
	_ = unstructured.SetNestedSlice(s.xr.Object, refs, "status", "resourceRefs")
	for k, v := range s.out.Status {
		if k == "conditions" || k == "observedGeneration" || k == "resourceRefs" {
			continue
		}
		_ = unstructured.SetNestedField(s.xr.Object, v, "status", k)
	}
	if len(s.problems) > 0 {
		// The first reason in message order names the condition; the
		// message lists every resource that was not applied.
		msgs := make([]string, len(s.problems))
		for i, p := range s.problems {
			msgs[i] = p.message
		}
		reason, msg := s.problems[0].reason, strings.Join(msgs, "; ")
		if c := conditions.Get(s.conds, conditions.Synced); c == nil || c.Reason != reason || c.Message != msg {
			r.recorder.Eventf(s.xr, nil, corev1.EventTypeWarning, reason, "Compose", "%s", eventmsg.Truncate(msg))
		}
		conditions.Set(s.conds, conditions.Synced, metav1.ConditionFalse, reason, msg)
		// Only a change by someone (the object's owner, the claimant or
		// the platform team) lets the XR go on.
		conditions.MarkStalled(s.conds, reason, msg)
		return nil
	}
	conditions.Set(s.conds, conditions.Synced, metav1.ConditionTrue, conditions.ReasonReconcileSuccess, "composed resources are in sync with revision "+s.rev.Name)
	switch {
	case s.out.Ready:
		conditions.MarkReady(s.conds, conditions.ReasonAvailable, fmt.Sprintf("all %d composed resources are ready", len(s.observed)))
	case len(s.out.Failed) > 0:
		msg := s.out.FailedMessage()
		if c := conditions.Get(s.conds, conditions.Stalled); c == nil || c.Message != msg {
			r.recorder.Eventf(s.xr, nil, corev1.EventTypeWarning, v1alpha1.ReasonComposedResourceFailed, "Compose", "%s", eventmsg.Truncate(msg))
		}
		conditions.MarkStalled(s.conds, v1alpha1.ReasonComposedResourceFailed, msg)
	default:
		conditions.MarkProgressing(s.conds, conditions.ReasonCreating, s.out.WaitingMessage())
	}
	return nil
}

// reconcileDelete deletes composed resources in reverse dependency order,
// then releases the XR. Every resource that no remaining resource reads is
// deleted at once, in parallel; one without finalizers is gone when its
// delete returns, so the next layer follows in the same reconcile. Only an
// object another controller's finalizer holds makes the XR wait, for the
// watch event of its removal.
func (r *compositeReconciler) reconcileDelete(ctx context.Context, s *scope) (reconcile.Result, error) {
	if !controllerutil.ContainsFinalizer(s.xr, FinalizerComposite) {
		return reconcile.Result{}, nil
	}
	remaining, err := r.composed(ctx, s)
	if err != nil {
		return reconcile.Result{}, err
	}
	plan := r.currentPlan(ctx, s)
	var deleted []string
	for len(remaining) > 0 {
		layer := deletionLayer(plan, remaining)
		var mu sync.Mutex
		var held []string
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for id, o := range layer {
			if o.GetDeletionTimestamp() != nil {
				fins := append([]string(nil), o.GetFinalizers()...)
				sort.Strings(fins)
				held = append(held, fmt.Sprintf("%s (finalizers %s)", ownership.Describe(o), strings.Join(fins, ", ")))
				continue
			}
			g.Go(func() error {
				if err := r.client.Delete(gctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
					return fmt.Errorf("cannot delete %s %s: %w", o.GetKind(), o.GetName(), err)
				}
				mu.Lock()
				defer mu.Unlock()
				deleted = append(deleted, id)
				if len(o.GetFinalizers()) > 0 {
					// Another controller finishes the deletion; its
					// watch event brings the XR back.
					held = append(held, fmt.Sprintf("%s (finalizers %s)", ownership.Describe(o), strings.Join(o.GetFinalizers(), ", ")))
					return nil
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			r.reportDeleted(s, deleted)
			return reconcile.Result{}, err
		}
		if len(held) > 0 {
			r.reportDeleted(s, deleted)
			// A stable message: an object another controller's finalizer
			// holds is named, as only that controller (or its user) can
			// let the deletion finish.
			sort.Strings(held)
			conditions.MarkProgressing(s.conds, conditions.ReasonDeleting, eventmsg.List("deleting composed resources; waiting for ", held))
			return reconcile.Result{RequeueAfter: kitreconcile.Jitter(30 * time.Second)}, nil
		}
		for id := range layer {
			delete(remaining, id)
		}
	}
	r.reportDeleted(s, deleted)
	p := client.MergeFrom(s.xr.DeepCopy())
	controllerutil.RemoveFinalizer(s.xr, FinalizerComposite)
	if err := r.client.Patch(ctx, s.xr, p); err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, fmt.Errorf("cannot remove finalizer: %w", err)
	}
	r.engine.release(s.xr.GetUID())
	return reconcile.Result{}, nil
}

// reportDeleted records the composed resources one reconcile deleted in one
// event.
func (r *compositeReconciler) reportDeleted(s *scope, ids []string) {
	if len(ids) == 0 {
		return
	}
	sort.Strings(ids)
	r.recorder.Eventf(s.xr, nil, corev1.EventTypeNormal, ReasonDeleteResources, "Delete", "%s", eventmsg.Truncate("deleted "+strings.Join(ids, ", ")))
}

// deletionLayer is the part of remaining that no other remaining resource
// reads (by the plan's graph): what may be deleted now. Without a plan, or
// when the graph leaves nothing (it cannot, being acyclic), everything is.
func deletionLayer(plan *render.Plan, remaining map[string]*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	if plan == nil {
		return remaining
	}
	// templateOf maps a resource id to its template's name: the name, or
	// for a forEach resource the longest name it starts with plus "-".
	templateOf := func(id string) string {
		best := ""
		for _, name := range plan.Order {
			if (id == name || strings.HasPrefix(id, name+"-")) && len(name) > len(best) {
				best = name
			}
		}
		return best
	}
	present := map[string]bool{}
	for id := range remaining {
		present[templateOf(id)] = true
	}
	read := map[string]bool{}
	for name := range present {
		for _, dep := range plan.Graph[name] {
			if dep != name {
				read[dep] = true
			}
		}
	}
	layer := map[string]*unstructured.Unstructured{}
	for id, o := range remaining {
		if !read[templateOf(id)] {
			layer[id] = o
		}
	}
	if len(layer) == 0 {
		return remaining
	}
	return layer
}

// composed lists the XR's composed resources of the kinds in its status
// refs and its revision.
func (r *compositeReconciler) composed(ctx context.Context, s *scope) (map[string]*unstructured.Unstructured, error) {
	gvks := map[schema.GroupVersionKind]bool{}
	refs, _, _ := unstructured.NestedSlice(s.xr.Object, "status", "resourceRefs")
	for _, ref := range refs {
		m, _ := ref.(map[string]any)
		av, _ := m["apiVersion"].(string)
		kind, _ := m["kind"].(string)
		if gv, err := schema.ParseGroupVersion(av); err == nil && kind != "" {
			gvks[gv.WithKind(kind)] = true
		}
	}
	if plan := r.currentPlan(ctx, s); plan != nil {
		for _, g := range plan.GVKs {
			gvks[g] = true
		}
	}
	out := map[string]*unstructured.Unstructured{}
	for gvk := range gvks {
		if err := r.watch(gvk); err != nil {
			return nil, err
		}
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := r.client.List(ctx, l, client.MatchingFields{indexComposite: s.xr.GetName()}); err != nil {
			if meta.IsNoMatchError(err) {
				continue
			}
			return nil, fmt.Errorf("cannot list %s: %w", gvk.Kind, err)
		}
		for i := range l.Items {
			if id := l.Items[i].GetLabels()[render.LabelResourceName]; id != "" && ownedBy(&l.Items[i], s.xr) {
				out[id] = &l.Items[i]
			}
		}
	}
	return out, nil
}

func (r *compositeReconciler) currentPlan(ctx context.Context, s *scope) *render.Plan {
	revName, _, _ := unstructured.NestedString(s.xr.Object, "spec", "compositionRevisionRef", "name")
	if revName == "" {
		return nil
	}
	rev := &v1alpha1.CompositionRevision{}
	if err := r.client.Get(ctx, client.ObjectKey{Name: revName}, rev); err != nil {
		return nil
	}
	p, err := r.engine.plan(rev)
	if err != nil {
		return nil
	}
	return p
}

// mapCompositionToXRs enqueues the XRs using a Composition when it changes.
func (r *compositeReconciler) mapCompositionToXRs(ctx context.Context, o client.Object) []reconcile.Request {
	c, ok := o.(*v1alpha1.Composition)
	if !ok || c.Spec.CompositeTypeRef.Kind != r.gvk.Kind {
		return nil
	}
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(r.gvk.GroupVersion().WithKind(r.gvk.Kind + "List"))
	if err := r.client.List(ctx, l); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, xr := range l.Items {
		name, _, _ := unstructured.NestedString(xr.Object, "spec", "compositionRef", "name")
		if name == "" || name == c.Name {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&xr)})
		}
	}
	return out
}
