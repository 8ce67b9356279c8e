package xrd

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/install"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/kit/patch"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/kit/ssa"
)

// Finalizer keeps an XRD until its instances and CRDs are gone.
const Finalizer = "apiextensions.strata.dev/xrd"

// Starter starts reconciling the kinds of an established XRD and stops
// reconciling them when the XRD goes. Both must be idempotent.
type Starter interface {
	// Start runs the composite and claim controllers of x's referenceable
	// version, replacing those of a version x no longer references.
	Start(ctx context.Context, x *v1alpha1.CompositeResourceDefinition) error
	// Stop stops the controllers and informers of the XRD named xrdName.
	Stop(ctx context.Context, xrdName string) error
}

// crdOwner is how an XRD marks the CRDs it creates: a controller owner
// reference to it.
func crdOwner(x *v1alpha1.CompositeResourceDefinition) ownership.Owner {
	return ownership.Owner{APIVersion: v1alpha1.GroupVersion.String(), Kind: "CompositeResourceDefinition", Name: x.Name, UID: x.UID, Mark: ownership.ControllerRef}
}

// Reconciler keeps the CRDs of XRDs applied.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	Starter  Starter
}

// SetupWithManager registers the XRD controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("xrd").
		For(&v1alpha1.CompositeResourceDefinition{}).
		Watches(&apiextensionsv1.CustomResourceDefinition{}, handler.EnqueueRequestsFromMapFunc(r.mapCRDToXRD)).
		WithOptions(controller.Options{RateLimiter: kitreconcile.RateLimiter(), MaxConcurrentReconciles: workers}).
		Complete(r)
}

// Reconcile applies the CRDs of an XRD and reports Established and Offered.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	log := ctrl.LoggerFrom(ctx)
	x := &v1alpha1.CompositeResourceDefinition{}
	if err := r.Client.Get(ctx, req.NamespacedName, x); err != nil {
		if apierrors.IsNotFound(err) {
			// Gone without our finalizer (or after it): nothing may run for it.
			return ctrl.Result{}, r.Starter.Stop(ctx, req.Name)
		}
		return ctrl.Result{}, err
	}
	orig := x.DeepCopy()
	h := patch.NewHelper(r.Client, x)
	defer func() {
		if x.DeletionTimestamp != nil && !controllerutil.ContainsFinalizer(x, Finalizer) {
			return
		}
		if retErr == nil {
			x.Status.ObservedGeneration = x.Generation
		}
		if err := h.Status(ctx, x); err != nil && !apierrors.IsNotFound(err) {
			log.Error(err, "cannot patch XRD status")
		}
	}()
	conditions.EnsureInitialized(x)

	if x.DeletionTimestamp != nil {
		return r.reconcileDelete(ctx, x)
	}
	if controllerutil.AddFinalizer(x, Finalizer) {
		if err := r.Client.Patch(ctx, x, client.MergeFrom(orig)); err != nil {
			return ctrl.Result{}, fmt.Errorf("cannot add finalizer: %w", err)
		}
		orig = x.DeepCopy()
		conditions.EnsureInitialized(x)
	}

	xrCRD, err := CompositeCRD(x)
	var claimCRD *apiextensionsv1.CustomResourceDefinition
	if err == nil {
		claimCRD, err = ClaimCRD(x)
	}
	if err == nil {
		_, err = XRType(x)
	}
	if err == nil && !x.ReferenceableVersion().Served {
		err = fmt.Errorf("version %s is referenceable but not served", x.ReferenceableVersion().Name)
	}
	if err != nil {
		// Nothing may keep reconciling kinds the XRD no longer defines well.
		if stopErr := r.Starter.Stop(ctx, x.Name); stopErr != nil {
			return ctrl.Result{}, fmt.Errorf("cannot stop controllers of %s: %w", x.Name, stopErr)
		}
		msg := "invalid schema: " + err.Error()
		conditions.Set(x, v1alpha1.Established, "False", v1alpha1.ReasonInvalidSchema, msg)
		conditions.MarkStalled(x, v1alpha1.ReasonInvalidSchema, msg)
		r.Recorder.Eventf(x, nil, "Warning", v1alpha1.ReasonInvalidSchema, "ApplyCRD", msg)
		return ctrl.Result{}, kitreconcile.Terminal(v1alpha1.ReasonInvalidSchema, err)
	}
	crds := []*apiextensionsv1.CustomResourceDefinition{xrCRD}
	if claimCRD != nil {
		crds = append(crds, claimCRD)
	}
	// An XRD never takes over a CRD it did not create (a provider's, or
	// another XRD's): applying would replace its schema and make it the
	// XRD's to delete.
	for _, c := range crds {
		if err := r.checkCRDOwner(ctx, x, c.Name); err != nil {
			if !ownership.IsConflict(err) {
				conditions.MarkFailed(x, conditions.ReasonReconcileError, err.Error())
				return ctrl.Result{}, err
			}
			msg := err.Error()
			if c := conditions.Get(x, v1alpha1.Established); c == nil || c.Reason != v1alpha1.ReasonCRDConflict {
				r.Recorder.Eventf(x, nil, "Warning", v1alpha1.ReasonCRDConflict, "ApplyCRD", "%s", msg)
			}
			conditions.Set(x, v1alpha1.Established, "False", v1alpha1.ReasonCRDConflict, msg)
			conditions.MarkStalled(x, v1alpha1.ReasonCRDConflict, msg)
			return ctrl.Result{}, kitreconcile.Terminal(v1alpha1.ReasonCRDConflict, err)
		}
	}
	established := map[string]bool{}
	for _, c := range crds {
		if err := ssa.Apply(ctx, r.Client, c, ssa.Options{FieldManager: install.FieldManager, Policy: ssa.Force}); err != nil {
			msg := fmt.Sprintf("cannot apply CRD %s: %v", c.Name, err)
			conditions.Set(x, v1alpha1.Established, "False", v1alpha1.ReasonInvalidSchema, msg)
			if apierrors.IsInvalid(err) {
				conditions.MarkStalled(x, v1alpha1.ReasonInvalidSchema, msg)
				return ctrl.Result{}, kitreconcile.Terminal(v1alpha1.ReasonInvalidSchema, err)
			}
			conditions.MarkFailed(x, conditions.ReasonReconcileError, msg)
			return ctrl.Result{}, fmt.Errorf("cannot apply CRD %s: %w", c.Name, err)
		}
		for _, cond := range c.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				established[c.Name] = true
			}
		}
	}
	x.Status.Controllers.CompositeResourceType = v1alpha1.TypeReference{APIVersion: x.Spec.Group + "/" + x.ReferenceableVersion().Name, Kind: x.Spec.Names.Kind}
	if claimCRD != nil {
		x.Status.Controllers.CompositeResourceClaimType = v1alpha1.TypeReference{APIVersion: x.Spec.Group + "/" + x.ReferenceableVersion().Name, Kind: x.Spec.ClaimNames.Kind}
	}
	if !established[xrCRD.Name] {
		conditions.Set(x, v1alpha1.Established, "False", v1alpha1.ReasonPending, fmt.Sprintf("waiting for CRD %s to be established", xrCRD.Name))
		conditions.MarkProgressing(x, v1alpha1.ReasonPending, fmt.Sprintf("waiting for CRD %s to be established", xrCRD.Name))
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	if claimCRD != nil && !established[claimCRD.Name] {
		conditions.Set(x, v1alpha1.Offered, "False", v1alpha1.ReasonPending, fmt.Sprintf("waiting for CRD %s to be established", claimCRD.Name))
		conditions.MarkProgressing(x, v1alpha1.ReasonPending, fmt.Sprintf("waiting for CRD %s to be established", claimCRD.Name))
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	if err := r.Starter.Start(ctx, x); err != nil {
		conditions.MarkFailed(x, conditions.ReasonReconcileError, err.Error())
		return ctrl.Result{}, fmt.Errorf("cannot start controllers for %s: %w", x.Name, err)
	}
	if !conditions.IsTrue(x, v1alpha1.Established) {
		r.Recorder.Eventf(x, nil, "Normal", v1alpha1.ReasonWatchingComposite, "Establish", "serving composite kind %s", x.Spec.Names.Kind)
	}
	conditions.Set(x, v1alpha1.Established, "True", v1alpha1.ReasonWatchingComposite, fmt.Sprintf("serving %s and reconciling its composite resources", xrCRD.Name))
	msg := fmt.Sprintf("composite kind %s is established", x.Spec.Names.Kind)
	if claimCRD != nil {
		conditions.Set(x, v1alpha1.Offered, "True", v1alpha1.ReasonOfferingClaims, fmt.Sprintf("serving %s and reconciling its claims", claimCRD.Name))
		msg += fmt.Sprintf(" and claim kind %s is offered", x.Spec.ClaimNames.Kind)
	} else {
		conditions.Remove(x, v1alpha1.Offered)
	}
	conditions.MarkReady(x, conditions.ReasonAvailable, msg)
	log.V(1).Info("XRD established", "xrd", klog.KObj(x))
	return ctrl.Result{}, nil
}

// reconcileDelete refuses to remove the CRDs while instances remain, then
// stops the XRD's controllers and deletes the CRDs it created. A CRD of the
// same name that it did not create is neither counted nor deleted.
func (r *Reconciler) reconcileDelete(ctx context.Context, x *v1alpha1.CompositeResourceDefinition) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(x, Finalizer) {
		return ctrl.Result{}, nil
	}
	var remaining []string
	kinds := []apiextensionsv1.CustomResourceDefinitionNames{x.Spec.Names}
	if x.Spec.ClaimNames != nil {
		kinds = append(kinds, *x.Spec.ClaimNames)
	}
	var own []*apiextensionsv1.CustomResourceDefinition
	for _, k := range kinds {
		name := k.Plural + "." + x.Spec.Group
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return ctrl.Result{}, fmt.Errorf("cannot get CRD %s: %w", name, err)
		}
		if !crdOwner(x).Controls(crd) {
			continue
		}
		own = append(own, crd)
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(schema.GroupVersionKind{Group: x.Spec.Group, Version: x.ReferenceableVersion().Name, Kind: k.Kind + "List"})
		if err := r.Client.List(ctx, l); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				continue
			}
			return ctrl.Result{}, fmt.Errorf("cannot list %s: %w", k.Kind, err)
		}
		for _, i := range l.Items {
			remaining = append(remaining, k.Kind+"/"+klog.KObj(&i).String())
		}
	}
	if len(remaining) > 0 {
		sort.Strings(remaining)
		shown := remaining
		if len(shown) > 5 {
			shown = append(shown[:5:5], "...")
		}
		msg := fmt.Sprintf("cannot delete: %d instance(s) remain (%s); delete them first", len(remaining), strings.Join(shown, ", "))
		conditions.Set(x, conditions.Ready, "False", v1alpha1.ReasonTerminating, msg)
		conditions.Set(x, conditions.Stalled, "True", v1alpha1.ReasonTerminating, msg)
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	if err := r.Starter.Stop(ctx, x.Name); err != nil {
		return ctrl.Result{}, fmt.Errorf("cannot stop controllers of %s: %w", x.Name, err)
	}
	for _, crd := range own {
		// Only the CRD checked: not one made again under its name since.
		uid := crd.UID
		if err := r.Client.Delete(ctx, crd, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("cannot delete CRD %s: %w", crd.Name, err)
		}
	}
	orig := x.DeepCopy()
	controllerutil.RemoveFinalizer(x, Finalizer)
	if err := r.Client.Patch(ctx, x, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("cannot remove finalizer: %w", err)
	}
	return ctrl.Result{}, nil
}

// checkCRDOwner returns a *ownership.ConflictError when the CRD name exists
// and x neither created it nor was handed it with the adopt annotation.
func (r *Reconciler) checkCRDOwner(ctx context.Context, x *v1alpha1.CompositeResourceDefinition, name string) error {
	cur := &apiextensionsv1.CustomResourceDefinition{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, cur); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("cannot get CRD %s: %w", name, err)
	}
	cur.Kind = "CustomResourceDefinition"
	_, err := ownership.Decide(cur, crdOwner(x))
	return err
}

// mapCRDToXRD enqueues the XRDs whose kinds a CRD would serve, so an XRD
// in conflict with a CRD it does not own tries again when that CRD goes.
func (r *Reconciler) mapCRDToXRD(ctx context.Context, o client.Object) []reconcile.Request {
	l := &v1alpha1.CompositeResourceDefinitionList{}
	if err := r.Client.List(ctx, l); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range l.Items {
		x := &l.Items[i]
		if x.Spec.Names.Plural+"."+x.Spec.Group == o.GetName() || claimPlural(x) == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: x.Name}})
		}
	}
	return out
}

func claimPlural(x *v1alpha1.CompositeResourceDefinition) string {
	if x.Spec.ClaimNames == nil {
		return ""
	}
	return x.Spec.ClaimNames.Plural + "." + x.Spec.Group
}
