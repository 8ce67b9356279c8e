package controller

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/patch"
)

// A claim's readiness is written twice over the network before its user
// sees it: the composite controller writes the XR's status, the XR's watch
// event reaches the claim controller, which queues the claim and writes the
// claim's status. On a busy API server the hop in between (the watch event
// and the queue) took up to 0.3 s of the 1.3–1.6 s p99 from a Deployment
// turning Available to its claim turning Ready (docs/benchmarks.md, seventh
// session). So when an XR's readiness changes, the composite controller
// writes its claim's status itself, right after the XR's, in the same
// reconcile: the status the claim controller would write, and nothing else.
//
// It does so only for a claim that is settled on this XR, where the claim
// controller has nothing else to write (settledOn), and with the optimistic
// lock: a claim that changed since the cache read it is left to the claim
// controller, which the XR's watch event still brings. The write goes into
// the engine's status memory, so that reconcile of the claim writes nothing
// again. It moves a write; it adds none.

// writeClaimStatus writes the status of the claim bound to xr (of kind
// claimGVK; xrGVK is xr's) from xr's status, when the claim is settled on
// xr. It reports whether it wrote. An error is only logged by the caller:
// the claim controller writes the same status on the XR's watch event.
func writeClaimStatus(ctx context.Context, c client.Client, mem *patch.Memory, claimGVK, xrGVK schema.GroupVersionKind, xr *unstructured.Unstructured) (bool, error) {
	if claimGVK.Empty() || xr.GetDeletionTimestamp() != nil || !reported(xr) {
		return false, nil
	}
	ref, _, _ := unstructured.NestedStringMap(xr.Object, "spec", "claimRef")
	if ref["name"] == "" || ref["kind"] != claimGVK.Kind || ref["apiVersion"] != claimGVK.GroupVersion().String() {
		return false, nil
	}
	claim := &unstructured.Unstructured{}
	claim.SetGroupVersionKind(claimGVK)
	if err := c.Get(ctx, client.ObjectKey{Namespace: ref["namespace"], Name: ref["name"]}, claim); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if !settledOn(claim, xr) {
		return false, nil
	}
	h := patch.NewHelper(c, claim)
	conds := readConds(claim)
	copyXRStatus(claim, conds, xr, xrGVK)
	conds.write()
	before := claim.GetResourceVersion()
	if err := h.Status(ctx, claim, patch.WithOptimisticLock(), patch.WithMemory(mem)); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			// The claim changed since it was read: its controller
			// writes its status.
			return false, nil
		}
		return false, err
	}
	return claim.GetResourceVersion() != before, nil
}

// settledOn reports whether the claim controller has nothing to write for
// claim but what it copies from xr: the claim is bound to xr and reports on
// its latest generation with no error of its own, and is neither paused nor
// being deleted.
func settledOn(claim, xr *unstructured.Unstructured) bool {
	if claim.GetDeletionTimestamp() != nil || claim.GetAnnotations()[AnnotationPaused] == "true" ||
		!controllerutil.ContainsFinalizer(claim, FinalizerClaim) || xrNameOf(claim) != xr.GetName() {
		return false
	}
	if ref, _, _ := unstructured.NestedString(claim.Object, "status", "resourceRef", "name"); ref != xr.GetName() {
		return false
	}
	if g, _, _ := unstructured.NestedInt64(claim.Object, "status", "observedGeneration"); g != claim.GetGeneration() {
		return false
	}
	synced := conditions.Get(readConds(claim), conditions.Synced)
	return synced != nil && synced.Status == metav1.ConditionTrue
}

// writeClaimStatusAfter writes the claim's status after a write of the
// XR's status that changed its readiness (from orig to xr).
func (r *compositeReconciler) writeClaimStatusAfter(ctx context.Context, orig, xr *unstructured.Unstructured) {
	if !compositeReadinessChanged(orig, xr) {
		return
	}
	if _, err := writeClaimStatus(ctx, r.client, r.engine.statusMemory, r.claimGVK, r.gvk, xr); err != nil {
		ctrl.LoggerFrom(ctx).V(1).Info("cannot write the claim's status beside its composite's; its controller will", "error", err.Error())
	}
}
