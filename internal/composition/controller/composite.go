package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
	"github.com/strata-dev/strata/internal/install"
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
}

func (r *compositeReconciler) Reconcile(ctx context.Context, req reconcile.Request) (res reconcile.Result, retErr error) {
	log := ctrl.LoggerFrom(ctx)
	xr := &unstructured.Unstructured{}
	xr.SetGroupVersionKind(r.gvk)
	if err := r.client.Get(ctx, req.NamespacedName, xr); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if xr.GetAnnotations()[AnnotationPaused] == "true" {
		return reconcile.Result{}, markPaused(ctx, r.client, xr)
	}
	s := &scope{xr: xr, orig: xr.DeepCopy(), conds: readConds(xr)}
	defer func() {
		if xr.GetDeletionTimestamp() != nil && !controllerutil.ContainsFinalizer(xr, FinalizerComposite) {
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
		if equality.Semantic.DeepEqual(s.orig.Object["status"], xr.Object["status"]) {
			return
		}
		s.orig.SetResourceVersion(xr.GetResourceVersion())
		if err := r.client.Status().Patch(ctx, xr, client.MergeFrom(s.orig)); err != nil && !apierrors.IsNotFound(err) {
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
				return reconcile.Result{RequeueAfter: 2 * time.Second}, nil
			}
			return reconcile.Result{}, err
		}
	}
	if s.out != nil && !s.out.Ready {
		// Watches on composed resources bring us back; this is a safety net.
		return reconcile.Result{RequeueAfter: jitter(30 * time.Second)}, nil
	}
	return reconcile.Result{RequeueAfter: jitter(r.engine.pollInterval)}, nil
}

// terminal marks a user error: Stalled, no retry until something changes.
type terminal struct {
	reason string
	err    error
}

func (t *terminal) Error() string { return t.err.Error() }
func (t *terminal) Unwrap() error { return t.err }

func userError(reason string, err error) error {
	return reconcile.TerminalError(&terminal{reason: reason, err: err})
}

func reasonOf(err error) string {
	var t *terminal
	if errors.As(err, &t) {
		return t.reason
	}
	return conditions.ReasonReconcileError
}

func jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
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
	name, err := r.compositionName(ctx, s)
	if err != nil {
		return err
	}
	comp := &v1alpha1.Composition{}
	if err := r.client.Get(ctx, client.ObjectKey{Name: name}, comp); err != nil {
		if apierrors.IsNotFound(err) {
			return userError(conditions.ReasonCompositionInvalid, fmt.Errorf("composition %q not found", name))
		}
		return fmt.Errorf("cannot get composition %s: %w", name, err)
	}
	if !composes(comp.Spec.CompositeTypeRef, r.gvk) {
		return userError(v1alpha1.ReasonCompositionMismatch, fmt.Errorf("composition %s composes %s %s, not %s %s",
			name, comp.Spec.CompositeTypeRef.APIVersion, comp.Spec.CompositeTypeRef.Kind, r.gvk.GroupVersion(), r.gvk.Kind))
	}
	policy, _, _ := unstructured.NestedString(s.xr.Object, "spec", "compositionUpdatePolicy")
	if policy == "" {
		policy = string(s.xrd.Spec.DefaultCompositionUpdatePolicy)
	}
	revName, _, _ := unstructured.NestedString(s.xr.Object, "spec", "compositionRevisionRef", "name")
	curComp, _, _ := unstructured.NestedString(s.xr.Object, "spec", "compositionRef", "name")
	if policy != string(v1alpha1.UpdateManual) || revName == "" || curComp != name {
		revName = comp.Status.LatestRevisionName
	}
	if revName == "" {
		if c := conditions.Get(comp, v1alpha1.Valid); c != nil && c.Status == metav1.ConditionFalse {
			return userError(conditions.ReasonCompositionInvalid, fmt.Errorf("composition %s is invalid: %s", name, c.Message))
		}
		conditions.MarkProgressing(s.conds, conditions.ReasonCreating, fmt.Sprintf("waiting for composition %s to be validated", name))
		return errWait
	}
	rev := &v1alpha1.CompositionRevision{}
	if err := r.client.Get(ctx, client.ObjectKey{Name: revName}, rev); err != nil {
		if apierrors.IsNotFound(err) {
			return userError(conditions.ReasonCompositionInvalid, fmt.Errorf("composition revision %q not found", revName))
		}
		return fmt.Errorf("cannot get composition revision %s: %w", revName, err)
	}
	// A pinned revision (the claim passes compositionRevisionRef through)
	// must be one of the selected Composition's own.
	if owner := rev.Labels[v1alpha1.LabelCompositionName]; owner != name || !composes(rev.Spec.CompositeTypeRef, r.gvk) {
		return userError(v1alpha1.ReasonCompositionMismatch, fmt.Errorf("composition revision %s belongs to composition %q composing %s, not to composition %s of %s",
			revName, owner, rev.Spec.CompositeTypeRef.Kind, name, r.gvk.Kind))
	}
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
	if len(patch) > 0 {
		data, _ := utiljson.Marshal(patch)
		if err := r.client.Patch(ctx, s.xr, client.RawPatch("application/merge-patch+json", data), client.FieldOwner(fieldOwnerXR)); err != nil {
			return fmt.Errorf("cannot record the selected composition: %w", err)
		}
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
		return userError(conditions.ReasonCompositionInvalid, fmt.Errorf("composition revision %s is invalid: %w", rev.Name, err))
	}
	s.plan = plan
	return nil
}

// errWait stops the phases without an error: the XR waits for something
// that a watch will report.
var errWait = errors.New("waiting")

// compositionName names the Composition an XR uses: the XRD's enforced ref,
// the XR's compositionRef, the first (by name) of the Compositions of this
// kind matching its compositionSelector (for a claim's XR, only those the
// XRD's claimCompositionSelector allows), the XRD's default ref, or the only
// Composition of this kind.
func (r *compositeReconciler) compositionName(ctx context.Context, s *scope) (string, error) {
	if ref := s.xrd.Spec.EnforcedCompositionRef; ref != nil {
		return ref.Name, nil
	}
	if n, _, _ := unstructured.NestedString(s.xr.Object, "spec", "compositionRef", "name"); n != "" {
		return n, nil
	}
	if sel, ok, _ := unstructured.NestedStringMap(s.xr.Object, "spec", "compositionSelector", "matchLabels"); ok {
		var allowed *metav1.LabelSelector
		if claim, _, _ := unstructured.NestedString(s.xr.Object, "spec", "claimRef", "name"); claim != "" {
			allowed = s.xrd.Spec.ClaimCompositionSelector
		}
		return selectComposition(ctx, r.client, r.gvk, sel, allowed)
	}
	if ref := s.xrd.Spec.DefaultCompositionRef; ref != nil {
		return ref.Name, nil
	}
	l := &v1alpha1.CompositionList{}
	if err := r.client.List(ctx, l); err != nil {
		return "", fmt.Errorf("cannot list compositions: %w", err)
	}
	var names []string
	for _, c := range l.Items {
		if composes(c.Spec.CompositeTypeRef, r.gvk) {
			names = append(names, c.Name)
		}
	}
	if len(names) == 1 {
		return names[0], nil
	}
	return "", userError(conditions.ReasonCompositionInvalid, fmt.Errorf("no composition selected: set spec.compositionRef or spec.compositionSelector (%d compositions exist for %s)", len(names), r.gvk.Kind))
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
		return userError(conditions.ReasonCompositionInvalid, fmt.Errorf("invalid environment selector: %w", err))
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
				return userError(conditions.ReasonReconcileError, fmt.Errorf("environment config %s key %s: %w", e.Name, k, err))
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
				return userError(conditions.ReasonReconcileError, fmt.Errorf("kind %s is not served by the API server", gvk))
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
	err := r.ctrl.Watch(source.Kind[client.Object](r.engine.composedCache, u,
		handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), owner, handler.OnlyControllerOwner())))
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
	})
	if err != nil {
		return userError(conditions.ReasonCompositionInvalid, fmt.Errorf("cannot render composition revision %s: %w", s.rev.Name, err))
	}
	s.out = out
	return nil
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
func (r *compositeReconciler) apply(ctx context.Context, s *scope) error {
	mapper := r.engine.mgr.GetRESTMapper()
	var mu sync.Mutex
	var created, updated, deleted []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	keep := map[string]bool{}
	for _, res := range s.out.Resources {
		if res.State == render.Blocked {
			keep[res.ID] = true
		}
		if res.State != render.Apply {
			continue
		}
		keep[res.ID] = true
		desired := res.Desired
		m, err := mapper.RESTMapping(desired.GroupVersionKind().GroupKind(), desired.GroupVersionKind().Version)
		if err != nil {
			return fmt.Errorf("resource %q: cannot map kind %s: %w", res.Name, desired.GroupVersionKind(), err)
		}
		if m.Scope.Name() == meta.RESTScopeNameRoot {
			desired.SetNamespace("")
		}
		t := true
		desired.SetOwnerReferences([]metav1.OwnerReference{{
			APIVersion: s.xr.GetAPIVersion(), Kind: s.xr.GetKind(), Name: s.xr.GetName(), UID: s.xr.GetUID(),
			Controller: &t, BlockOwnerDeletion: &t,
		}})
		obs := s.observed[res.ID]
		if obs != nil && subset(desired.Object, obs.Object) {
			continue
		}
		if obs == nil {
			desired.SetResourceVersion("")
		}
		id := res.ID
		g.Go(func() error {
			if err := r.client.Patch(gctx, desired, client.Apply, client.FieldOwner(install.FieldManager), client.ForceOwnership); err != nil {
				if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
					return userError(conditions.ReasonReconcileError, fmt.Errorf("cannot apply resource %q (%s %s): %w", id, desired.GetKind(), desired.GetName(), err))
				}
				return fmt.Errorf("cannot apply resource %q (%s %s): %w", id, desired.GetKind(), desired.GetName(), err)
			}
			mu.Lock()
			if obs == nil {
				created = append(created, id)
				s.observed[id] = desired
			} else {
				updated = append(updated, id)
			}
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	s.created = len(created)
	for id, o := range s.observed {
		if keep[id] {
			continue
		}
		if err := r.client.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("cannot delete resource %q: %w", id, err)
		}
		deleted = append(deleted, id)
		delete(s.observed, id)
	}
	s.actions.created = append(s.actions.created, created...)
	s.actions.updated = append(s.actions.updated, updated...)
	s.actions.deleted = append(s.actions.deleted, deleted...)
	return err
}

// actions are what one reconcile did to composed resources, reported in
// one ComposeResources event.
type actions struct{ created, updated, deleted []string }

func (r *compositeReconciler) reportActions(s *scope) {
	var parts []string
	for _, p := range []struct {
		verb string
		ids  []string
	}{{"created", s.actions.created}, {"updated", s.actions.updated}, {"deleted", s.actions.deleted}} {
		if len(p.ids) > 0 {
			sort.Strings(p.ids)
			parts = append(parts, p.verb+" "+strings.Join(p.ids, ", "))
		}
	}
	if len(parts) > 0 {
		r.recorder.Eventf(s.xr, nil, corev1.EventTypeNormal, ReasonComposeResources, "Compose", "%s", strings.Join(parts, "; "))
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
		return userError(conditions.ReasonReconcileError, errors.New("spec.writeConnectionSecretToRef.namespace is required for a cluster-scoped composite"))
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
	// Read live: caching every Secret of the cluster is not worth it.
	existing := &corev1.Secret{}
	err := r.engine.mgr.GetAPIReader().Get(ctx, client.ObjectKey{Namespace: ns, Name: ref["name"]}, existing)
	if err == nil && ownedBy(existing, s.xr) && secretEqual(existing.Data, data) {
		return nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cannot get connection secret: %w", err)
	}
	if err == nil && metav1.GetControllerOf(existing) != nil && !ownedBy(existing, s.xr) {
		return userError(conditions.ReasonReconcileError, fmt.Errorf("secret %s/%s belongs to another owner", ns, ref["name"]))
	}
	t := true
	sec := &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: ref["name"], Namespace: ns,
			Labels: map[string]string{render.LabelComposite: s.xr.GetName()},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: s.xr.GetAPIVersion(), Kind: s.xr.GetKind(),
				Name: s.xr.GetName(), UID: s.xr.GetUID(), Controller: &t, BlockOwnerDeletion: &t}}},
		Type: "connection.strata.dev/v1alpha1",
		Data: data,
	}
	if err := r.client.Patch(ctx, sec, client.Apply, client.FieldOwner(install.FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("cannot publish connection secret %s/%s: %w", ns, ref["name"], err)
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	r.recorder.Eventf(s.xr, nil, corev1.EventTypeNormal, ReasonPublishConnectionSecret, "Publish", "published keys [%s] to secret %s/%s", strings.Join(keys, " "), ns, ref["name"])
	return nil
}

func secretEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if string(b[k]) != string(v) {
			return false
		}
	}
	return true
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
	conditions.Set(s.conds, conditions.Synced, metav1.ConditionTrue, conditions.ReasonReconcileSuccess, "composed resources are in sync with revision "+s.rev.Name)
	if s.out.Ready {
		conditions.MarkReady(s.conds, conditions.ReasonAvailable, fmt.Sprintf("all %d composed resources are ready", len(s.observed)))
	} else {
		conditions.MarkProgressing(s.conds, conditions.ReasonCreating, s.out.WaitingMessage())
	}
	return nil
}

// reconcileDelete deletes composed resources in reverse dependency order,
// one layer at a time, then releases the XR.
func (r *compositeReconciler) reconcileDelete(ctx context.Context, s *scope) (reconcile.Result, error) {
	if !controllerutil.ContainsFinalizer(s.xr, FinalizerComposite) {
		return reconcile.Result{}, nil
	}
	conditions.MarkProgressing(s.conds, conditions.ReasonDeleting, "deleting composed resources")
	remaining, err := r.composed(ctx, s)
	if err != nil {
		return reconcile.Result{}, err
	}
	if len(remaining) > 0 {
		order := r.deletionOrder(ctx, s, remaining)
		var layer []*unstructured.Unstructured
		for _, name := range order {
			for id, o := range remaining {
				if id == name || strings.HasPrefix(id, name+"-") {
					layer = append(layer, o)
				}
			}
			if len(layer) > 0 {
				break
			}
		}
		if len(layer) == 0 {
			for _, o := range remaining {
				layer = append(layer, o)
			}
		}
		var names []string
		for _, o := range layer {
			if o.GetDeletionTimestamp() == nil {
				if err := r.client.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
					return reconcile.Result{}, fmt.Errorf("cannot delete %s %s: %w", o.GetKind(), o.GetName(), err)
				}
				names = append(names, o.GetLabels()[render.LabelResourceName])
			}
		}
		if len(names) > 0 {
			sort.Strings(names)
			r.recorder.Eventf(s.xr, nil, corev1.EventTypeNormal, ReasonDeleteResources, "Delete", "deleting %s", strings.Join(names, ", "))
		}
		// A stable message: no status write per deleted layer.
		conditions.MarkProgressing(s.conds, conditions.ReasonDeleting, "deleting composed resources")
		return reconcile.Result{RequeueAfter: 5 * time.Second}, nil
	}
	p := client.MergeFrom(s.xr.DeepCopy())
	controllerutil.RemoveFinalizer(s.xr, FinalizerComposite)
	if err := r.client.Patch(ctx, s.xr, p); err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, fmt.Errorf("cannot remove finalizer: %w", err)
	}
	return reconcile.Result{}, nil
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

func (r *compositeReconciler) deletionOrder(ctx context.Context, s *scope, remaining map[string]*unstructured.Unstructured) []string {
	var order []string
	if p := r.currentPlan(ctx, s); p != nil {
		for i := len(p.Order) - 1; i >= 0; i-- {
			order = append(order, p.Order[i])
		}
	}
	return order
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
