package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/render"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/kit/patch"
	"github.com/strata-dev/strata/internal/kit/ssa"
	"github.com/strata-dev/strata/internal/kubeclient"
)

// fieldOwnerClaim writes the XR's spec from the claim.
const fieldOwnerClaim = "strata-claim"

// claimReconciler reconciles the claims of one kind.
type claimReconciler struct {
	client   client.Client
	recorder events.EventRecorder
	gvk      schema.GroupVersionKind
	xrGVK    schema.GroupVersionKind
	xrdName  string
	// reader reads from the API server, not the cache.
	reader client.Reader
	// grace is Options.ClaimGrace.
	grace time.Duration
	// memory is the status last written per claim.
	memory *patch.Memory
	// metaWrites are the engine's own writes of claims' metadata and spec.
	metaWrites *ownWrites
	// handoffs hold XRs whose status is being written, newer than the
	// cache (handoff.go).
	handoffs *handoffs
}

// claimOnlyFields stay on the claim and are not copied to the XR's spec.
var claimOnlyFields = []string{"resourceRef", "writeConnectionSecretToRef"}

// xrStatusInternal are XR status fields not copied back to the claim.
var xrStatusInternal = []string{"conditions", "observedGeneration", "resourceRefs"}

func mapXRToClaim(_ context.Context, o client.Object) []reconcile.Request {
	l := o.GetLabels()
	if l[render.LabelClaimName] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: l[render.LabelClaimNamespace], Name: l[render.LabelClaimName]}}}
}

// XRName is the deterministic name of a claim's composite resource.
func XRName(namespace, name string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	return truncate(name, 56) + "-" + hex.EncodeToString(sum[:])[:5]
}

func (r *claimReconciler) Reconcile(ctx context.Context, req reconcile.Request) (res reconcile.Result, retErr error) {
	log := ctrl.LoggerFrom(ctx)
	claim := &unstructured.Unstructured{}
	claim.SetGroupVersionKind(r.gvk)
	if err := r.client.Get(ctx, req.NamespacedName, claim); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if claim.GetAnnotations()[AnnotationPaused] == "true" {
		return reconcile.Result{}, markPaused(ctx, r.client, claim)
	}
	orig := claim.DeepCopy()
	h := patch.NewHelper(r.client, claim)
	conds := readConds(claim)
	// waiting is set while the claim waits for its XR to report on the XR's
	// latest generation: the claim's status is then written when the XR's
	// status changes (its watch brings the claim back), once, instead of
	// once now and again then.
	waiting := false
	defer func() {
		if claim.GetDeletionTimestamp() != nil && !controllerutil.ContainsFinalizer(claim, FinalizerClaim) {
			r.memory.Forget(claim.GetUID())
			return
		}
		if retErr != nil {
			conditions.Set(conds, conditions.Synced, metav1.ConditionFalse, reasonOf(retErr), retErr.Error())
			if errors.Is(retErr, reconcile.TerminalError(nil)) {
				conditions.MarkStalled(conds, reasonOf(retErr), retErr.Error())
			}
		} else if waiting {
			// A claim without a Ready condition reads as healthy to
			// kstatus: past the grace period it gets one, XR or not.
			if conditions.Get(readConds(orig), conditions.Ready) != nil {
				return
			}
			if age := time.Since(claim.GetCreationTimestamp().Time); age < r.grace {
				res.RequeueAfter = r.grace - age + 100*time.Millisecond
				return
			}
			// The claim has not observed its generation until the XR has.
		} else {
			_ = unstructured.SetNestedField(claim.Object, claim.GetGeneration(), "status", "observedGeneration")
		}
		conds.write()
		if err := h.Status(ctx, claim, patch.WithMemory(r.memory)); err != nil && !apierrors.IsNotFound(err) {
			log.Error(err, "cannot patch claim status")
			retErr = errors.Join(retErr, err)
		}
	}()
	conditions.EnsureInitialized(conds)

	if claim.GetDeletionTimestamp() != nil {
		res, waiting, retErr = r.reconcileDelete(ctx, claim, conds)
		return res, retErr
	}
	xr, err := r.bind(ctx, claim)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := r.checkComposition(ctx, claim); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.applyXR(ctx, claim, xr); err != nil {
		return reconcile.Result{}, err
	}
	waiting = !reported(xr)
	r.copyStatus(claim, conds, xr)
	if waiting {
		// The XR's watch brings the claim back; this is a safety net.
		return reconcile.Result{RequeueAfter: kitreconcile.Jitter(30 * time.Second)}, nil
	}
	return reconcile.Result{}, nil
}

// reported says whether the XR's conditions speak of its latest generation.
func reported(xr *unstructured.Unstructured) bool {
	if xr.GetUID() == "" {
		return false
	}
	c := readConds(xr)
	for _, t := range []string{conditions.Ready, conditions.Synced} {
		if cond := conditions.Get(c, t); cond != nil && cond.ObservedGeneration == xr.GetGeneration() {
			return true
		}
	}
	return false
}

// xrNameOf is the name of the claim's XR: the one its spec.resourceRef
// names (a user's choice of an existing XR, or the name an earlier version
// of Strata recorded there), else XRName's. The claim's status.resourceRef
// shows it.
func xrNameOf(claim *unstructured.Unstructured) string {
	if name, _, _ := unstructured.NestedString(claim.Object, "spec", "resourceRef", "name"); name != "" {
		return name
	}
	return XRName(claim.GetNamespace(), claim.GetName())
}

// bind adds the claim's finalizer, finds the claim's XR and refuses one
// bound to another claim. It never writes the claim's spec, which stays
// what its user wrote (no drift for a GitOps tool that applied it).
func (r *claimReconciler) bind(ctx context.Context, claim *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	name := xrNameOf(claim)
	// A claim read from a cache that has not seen this patch yet (the XR's
	// creation brings the claim back at once) has the finalizer already.
	if !controllerutil.ContainsFinalizer(claim, FinalizerClaim) && !r.metaWrites.lags(claim) {
		data, _ := utiljson.Marshal(map[string]any{"metadata": map[string]any{"finalizers": append(claim.GetFinalizers(), FinalizerClaim)}})
		if err := r.client.Patch(ctx, claim, client.RawPatch(types.MergePatchType, data), client.FieldOwner(fieldOwnerClaim)); err != nil {
			return nil, fmt.Errorf("cannot add finalizer %s: %w", FinalizerClaim, err)
		}
		r.metaWrites.record(claim)
	}

	xr := &unstructured.Unstructured{}
	xr.SetGroupVersionKind(r.xrGVK)
	err := r.client.Get(ctx, client.ObjectKey{Name: name}, xr)
	if apierrors.IsNotFound(err) {
		// The cache may not have seen the XR this claim created a moment
		// ago: ask the API server before creating it again.
		err = r.reader.Get(ctx, client.ObjectKey{Name: name}, xr)
	}
	if err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("cannot get composite resource %s: %w", name, err)
		}
		// A claim creates only its own XR. One its spec.resourceRef names
		// under another name must exist: otherwise a claim could take the
		// name of another claim's XR before that claim made it.
		if own := XRName(claim.GetNamespace(), claim.GetName()); name != own {
			return nil, kitreconcile.Reasoned(v1alpha1.ReasonClaimNotAllowed, fmt.Errorf("composite resource %s named in spec.resourceRef does not exist; a claim creates only its own composite resource (%s)", name, own))
		}
		xr.SetName(name)
		return xr, nil
	}
	// The XR whose status the composite controller is writing, if its
	// cache has not seen that write yet.
	xr = r.handoffs.latest(xr)
	ref, _, _ := unstructured.NestedStringMap(xr.Object, "spec", "claimRef")
	if ref["name"] != "" && (ref["name"] != claim.GetName() || ref["namespace"] != claim.GetNamespace()) {
		return nil, kitreconcile.Terminal(conditions.ReasonReconcileError, fmt.Errorf("composite resource %s is bound to claim %s/%s", name, ref["namespace"], ref["name"]))
	}
	// A composite that no claim created (an admin's) is bound only when its
	// owner allows claims from this namespace. The claim retries with
	// backoff (the composite's events do not reach a claim it refused), so
	// it binds once allowed.
	if ref["name"] == "" && !allowsClaimsFrom(xr, claim.GetNamespace()) {
		return nil, kitreconcile.Reasoned(v1alpha1.ReasonClaimNotAllowed, fmt.Errorf("composite resource %s is bound to no claim and does not allow claims from namespace %s (its owner may list the namespace in its %s annotation)",
			name, claim.GetNamespace(), v1alpha1.AnnotationClaimNamespaces))
	}
	return xr, nil
}

// allowsClaimsFrom reports whether xr's AnnotationClaimNamespaces lists ns
// or is "*".
func allowsClaimsFrom(xr *unstructured.Unstructured, ns string) bool {
	for _, n := range strings.Split(xr.GetAnnotations()[v1alpha1.AnnotationClaimNamespaces], ",") {
		if n = strings.TrimSpace(n); n == "*" || (n != "" && n == ns) {
			return true
		}
	}
	return false
}

// checkComposition refuses a claim whose compositionRef names a Composition
// of another composite kind (CompositionMismatch) or one its XRD's
// claimCompositionSelector does not allow (CompositionNotAllowed) before the
// choice reaches the composite, which then stays as it was. A selector is
// checked by the composite, which chooses only among allowed Compositions.
func (r *claimReconciler) checkComposition(ctx context.Context, claim *unstructured.Unstructured) error {
	name, _, _ := unstructured.NestedString(claim.Object, "spec", "compositionRef", "name")
	if name == "" {
		return nil
	}
	comp := &v1alpha1.Composition{}
	if err := r.client.Get(ctx, client.ObjectKey{Name: name}, comp); err != nil {
		// Not found is retried: the claim must not pass on a name that
		// someone may later give a Composition it may not use.
		return fmt.Errorf("cannot get composition %q: %w", name, err)
	}
	if !composes(comp.Spec.CompositeTypeRef, r.xrGVK) {
		return kitreconcile.Terminal(v1alpha1.ReasonCompositionMismatch, fmt.Errorf("composition %s composes %s %s, not %s %s",
			name, comp.Spec.CompositeTypeRef.APIVersion, comp.Spec.CompositeTypeRef.Kind, r.xrGVK.GroupVersion(), r.xrGVK.Kind))
	}
	x := &v1alpha1.CompositeResourceDefinition{}
	if err := r.client.Get(ctx, client.ObjectKey{Name: r.xrdName}, x); err != nil {
		return fmt.Errorf("cannot get XRD %s: %w", r.xrdName, err)
	}
	if err := claimMayUse(x.Spec.ClaimCompositionSelector, comp); err != nil {
		return kitreconcile.Terminal(v1alpha1.ReasonCompositionNotAllowed, err)
	}
	return nil
}

// applyXR server-side applies the XR's spec from the claim's.
func (r *claimReconciler) applyXR(ctx context.Context, claim, xr *unstructured.Unstructured) error {
	spec, _, _ := unstructured.NestedMap(claim.Object, "spec")
	if spec == nil {
		spec = map[string]any{}
	}
	spec = runtimeDeepCopy(spec)
	for _, f := range claimOnlyFields {
		delete(spec, f)
	}
	// The composite records its own selection; the claim only passes what
	// the user set.
	delete(spec, "compositionRevisionRef")
	if n, _, _ := unstructured.NestedString(claim.Object, "spec", "compositionRevisionRef", "name"); n != "" {
		spec["compositionRevisionRef"] = map[string]any{"name": n}
	}
	spec["claimRef"] = map[string]any{
		"apiVersion": r.gvk.GroupVersion().String(), "kind": r.gvk.Kind,
		"namespace": claim.GetNamespace(), "name": claim.GetName(),
	}
	if n, _, _ := unstructured.NestedString(claim.Object, "spec", "writeConnectionSecretToRef", "name"); n != "" {
		// A claim's secret always lands in the claim's own namespace.
		spec["writeConnectionSecretToRef"] = map[string]any{"name": n, "namespace": claim.GetNamespace()}
	}
	desired := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	desired.SetGroupVersionKind(r.xrGVK)
	desired.SetName(xr.GetName())
	desired.SetLabels(withShard(claim, map[string]string{render.LabelClaimName: claim.GetName(), render.LabelClaimNamespace: claim.GetNamespace()}))
	if xr.GetUID() != "" {
		cur, _, _ := unstructured.NestedMap(xr.Object, "spec")
		if ownership.Subset(desired.Object["spec"], cur) && ownership.Subset(desired.Object["metadata"].(map[string]any)["labels"], xr.Object["metadata"].(map[string]any)["labels"]) {
			return nil
		}
		if xr.GetDeletionTimestamp() != nil {
			return nil
		}
	}
	// The XR is created in one request, with the composite finalizer and
	// the Composition and revision it would select itself, so its first
	// reconcile composes without writing to the XR first. Later applies
	// keep both (passing through what the XR chose since), as fields this
	// apply stopped setting would be removed.
	desired.SetFinalizers([]string{FinalizerComposite})
	what := ""
	for _, f := range []string{"compositionRef", "compositionRevisionRef"} {
		if _, set := spec[f]; !set {
			if v, ok, _ := unstructured.NestedString(xr.Object, "spec", f, "name"); ok && v != "" {
				spec[f] = map[string]any{"name": v}
			}
		}
	}
	if xr.GetUID() == "" {
		x := &v1alpha1.CompositeResourceDefinition{}
		if err := r.client.Get(ctx, client.ObjectKey{Name: r.xrdName}, x); err == nil {
			// What cannot be chosen now, the XR chooses (and reports) itself.
			if comp, rev, err := chooseRevision(ctx, r.client, r.xrGVK, x, desired); err == nil {
				spec["compositionRef"] = map[string]any{"name": comp.Name}
				spec["compositionRevisionRef"] = map[string]any{"name": rev.Name}
				what = fmt.Sprintf(" with composition %s revision %d", comp.Name, rev.Spec.Revision)
			}
		}
	}
	// An XR read before is changed only while it is that XR, not one made
	// again in between for another claim.
	if err := ssa.Apply(ctx, r.client, desired, ssa.Options{FieldManager: fieldOwnerClaim, Policy: ssa.Force, UID: xr.GetUID()}); err != nil {
		if ssa.IsReplaced(err) {
			return fmt.Errorf("cannot apply composite resource %s: it was deleted and made again since it was read; it is checked again: %w", xr.GetName(), err)
		}
		if apierrors.IsInvalid(err) {
			return kitreconcile.Terminal(conditions.ReasonReconcileError, fmt.Errorf("cannot apply composite resource %s: %w", xr.GetName(), err))
		}
		return fmt.Errorf("cannot apply composite resource %s: %w", xr.GetName(), err)
	}
	if xr.GetUID() == "" {
		r.recorder.Eventf(claim, nil, corev1.EventTypeNormal, ReasonBindCompositeResource, "Bind", "created and bound composite resource %s %s%s", r.xrGVK.Kind, xr.GetName(), what)
	}
	desired.DeepCopyInto(xr)
	return nil
}

// copyStatus copies the XR's status fields and readiness to the claim.
func (r *claimReconciler) copyStatus(claim *unstructured.Unstructured, conds *condObj, xr *unstructured.Unstructured) {
	st, _, _ := unstructured.NestedMap(xr.Object, "status")
	// Fields the XR no longer has go away on the claim too.
	if cs, ok := claim.Object["status"].(map[string]any); ok {
		for k := range cs {
			if _, keep := st[k]; !keep && k != "conditions" && k != "observedGeneration" {
				delete(cs, k)
			}
		}
	}
	for k, v := range st {
		skip := false
		for _, f := range xrStatusInternal {
			skip = skip || k == f
		}
		if !skip {
			_ = unstructured.SetNestedField(claim.Object, runtimeDeepCopyValue(v), "status", k)
		}
	}
	// The claim's own field, whatever the XR's status holds.
	_ = unstructured.SetNestedMap(claim.Object, map[string]any{
		"apiVersion": r.xrGVK.GroupVersion().String(), "kind": r.xrGVK.Kind, "name": xr.GetName(),
	}, "status", "resourceRef")
	xc := readConds(xr)
	synced := conditions.Get(xc, conditions.Synced)
	ready := conditions.Get(xc, conditions.Ready)
	switch {
	case synced != nil && synced.Status == metav1.ConditionFalse:
		conditions.Set(conds, conditions.Synced, metav1.ConditionFalse, synced.Reason, "composite resource "+xr.GetName()+": "+synced.Message)
	default:
		conditions.Set(conds, conditions.Synced, metav1.ConditionTrue, conditions.ReasonReconcileSuccess, "composite resource "+xr.GetName()+" is in sync with the claim")
	}
	stalled := conditions.Get(xc, conditions.Stalled)
	switch {
	case ready == nil:
		conditions.MarkProgressing(conds, conditions.ReasonCreating, "waiting for composite resource "+xr.GetName())
	case ready.Status == metav1.ConditionTrue:
		conditions.MarkReady(conds, ready.Reason, ready.Message)
	case stalled != nil && stalled.Status == metav1.ConditionTrue:
		conditions.MarkStalled(conds, stalled.Reason, stalled.Message)
	default:
		conditions.MarkProgressing(conds, ready.Reason, ready.Message)
	}
}

// reconcileDelete deletes the XR and waits, for its watch event, until it
// is gone. The claim's status is written (quiet is false) only when the XR
// reports what holds its deletion up (a foreign finalizer); a deletion that
// goes through writes nothing but the finalizer.
func (r *claimReconciler) reconcileDelete(ctx context.Context, claim *unstructured.Unstructured, conds *condObj) (res reconcile.Result, quiet bool, err error) {
	if !controllerutil.ContainsFinalizer(claim, FinalizerClaim) {
		return reconcile.Result{}, true, nil
	}
	name := xrNameOf(claim)
	xr := &unstructured.Unstructured{}
	xr.SetGroupVersionKind(r.xrGVK)
	if err := r.client.Get(ctx, client.ObjectKey{Name: name}, xr); err == nil {
		ref, _, _ := unstructured.NestedStringMap(xr.Object, "spec", "claimRef")
		if ref["name"] == claim.GetName() && ref["namespace"] == claim.GetNamespace() {
			if xr.GetDeletionTimestamp() == nil {
				uid := xr.GetUID()
				if err := r.client.Delete(ctx, xr, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
					return reconcile.Result{}, false, fmt.Errorf("cannot delete composite resource %s: %w", name, err)
				}
			}
			// The XR names what holds it up (a foreign finalizer).
			c := conditions.Get(readConds(xr), conditions.Ready)
			held := c != nil && c.Reason == conditions.ReasonDeleting && strings.Contains(c.Message, "waiting for")
			if held {
				conditions.MarkProgressing(conds, conditions.ReasonDeleting, "waiting for composite resource "+name+" to be deleted: "+c.Message)
			}
			return reconcile.Result{RequeueAfter: kitreconcile.Jitter(30 * time.Second)}, !held, nil
		}
	} else if !apierrors.IsNotFound(err) {
		return reconcile.Result{}, false, fmt.Errorf("cannot get composite resource %s: %w", name, err)
	}
	if r.metaWrites.lags(claim) {
		// The finalizer is gone already: the cache has not seen it (the
		// XR's deletion event can bring the claim back after that).
		controllerutil.RemoveFinalizer(claim, FinalizerClaim)
		return reconcile.Result{}, true, nil
	}
	p := client.MergeFrom(claim.DeepCopy())
	controllerutil.RemoveFinalizer(claim, FinalizerClaim)
	if err := r.client.Patch(ctx, claim, p); err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, false, fmt.Errorf("cannot remove finalizer: %w", err)
	}
	// Remembered until it expires: the claim is gone, and so may be the
	// events that would tell a later reconcile.
	r.metaWrites.record(claim)
	return reconcile.Result{}, true, nil
}

func runtimeDeepCopy(m map[string]any) map[string]any {
	return runtimeDeepCopyValue(m).(map[string]any)
}

func runtimeDeepCopyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = runtimeDeepCopyValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = runtimeDeepCopyValue(e)
		}
		return out
	}
	return v
}

// withShard adds owner's kubeclient.ShardLabel, if it has one, to labels:
// what Strata creates for an object belongs to the object's shard.
func withShard(owner metav1.Object, labels map[string]string) map[string]string {
	if v, ok := owner.GetLabels()[kubeclient.ShardLabel]; ok {
		if labels == nil {
			labels = map[string]string{}
		}
		labels[kubeclient.ShardLabel] = v
	}
	return labels
}
