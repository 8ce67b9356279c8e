package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/render"
	"github.com/strata-dev/strata/internal/composition/xrd"
	"github.com/strata-dev/strata/internal/conditions"
)

// CompositionReconciler validates Compositions and snapshots every valid
// change into a numbered CompositionRevision.
type CompositionReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Schemas, when set, type-checks templates against the composed kinds.
	Schemas render.SchemaSource
}

// SetupWithManager registers the Composition controller; it also runs when
// XRDs change, since their schema types the expressions.
func (r *CompositionReconciler) SetupWithManager(mgr manager.Manager, workers int) error {
	return ctrl.ControllerManagedBy(mgr).
		Named("composition").
		For(&v1alpha1.Composition{}).
		Owns(&v1alpha1.CompositionRevision{}).
		Watches(&v1alpha1.CompositeResourceDefinition{}, handler.EnqueueRequestsFromMapFunc(r.forXRD)).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

func (r *CompositionReconciler) forXRD(ctx context.Context, o client.Object) []reconcile.Request {
	x := o.(*v1alpha1.CompositeResourceDefinition)
	l := &v1alpha1.CompositionList{}
	if err := r.Client.List(ctx, l); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, c := range l.Items {
		gv, _ := schema.ParseGroupVersion(c.Spec.CompositeTypeRef.APIVersion)
		if gv.Group == x.Spec.Group && c.Spec.CompositeTypeRef.Kind == x.Spec.Names.Kind {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&c)})
		}
	}
	return out
}

// Reconcile validates a Composition and publishes a revision when valid.
func (r *CompositionReconciler) Reconcile(ctx context.Context, req reconcile.Request) (res reconcile.Result, retErr error) {
	c := &v1alpha1.Composition{}
	if err := r.Client.Get(ctx, req.NamespacedName, c); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if c.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	orig := c.DeepCopy()
	defer func() {
		if retErr == nil {
			c.Status.ObservedGeneration = c.Generation
		}
		if err := r.Client.Status().Patch(ctx, c, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, fmt.Errorf("cannot patch Composition status: %w", err))
		}
	}()
	conditions.EnsureInitialized(c)

	x, err := FindXRD(ctx, r.Client, c.Spec.CompositeTypeRef)
	if err != nil {
		return reconcile.Result{}, err
	}
	if x == nil {
		msg := fmt.Sprintf("no CompositeResourceDefinition defines %s %s", c.Spec.CompositeTypeRef.APIVersion, c.Spec.CompositeTypeRef.Kind)
		conditions.Set(c, v1alpha1.Valid, metav1.ConditionFalse, v1alpha1.ReasonCompositeTypeNotFound, msg)
		conditions.MarkStalled(c, v1alpha1.ReasonCompositeTypeNotFound, msg)
		return reconcile.Result{}, nil
	}
	if err := Validate(x, &c.Spec, r.Schemas); err != nil {
		var se *render.SchemaError
		if errors.As(err, &se) {
			conditions.MarkFailed(c, conditions.ReasonReconcileError, err.Error())
			return reconcile.Result{}, err
		}
		msg := err.Error()
		if cur := conditions.Get(c, v1alpha1.Valid); cur == nil || cur.Message != msg {
			r.Recorder.Eventf(c, nil, "Warning", v1alpha1.ReasonCompositionInvalid, "Validate", "%s", msg)
		}
		conditions.Set(c, v1alpha1.Valid, metav1.ConditionFalse, v1alpha1.ReasonCompositionInvalid, msg)
		conditions.MarkStalled(c, v1alpha1.ReasonCompositionInvalid, msg)
		return reconcile.Result{}, nil
	}
	rev, err := r.publish(ctx, c)
	if err != nil {
		conditions.MarkFailed(c, conditions.ReasonReconcileError, err.Error())
		return reconcile.Result{}, err
	}
	c.Status.LatestRevision = rev.Spec.Revision
	c.Status.LatestRevisionName = rev.Name
	conditions.Set(c, v1alpha1.Valid, metav1.ConditionTrue, v1alpha1.ReasonValidated, fmt.Sprintf("every expression compiles; published revision %d", rev.Spec.Revision))
	conditions.MarkReady(c, conditions.ReasonAvailable, fmt.Sprintf("revision %d (%s) is current", rev.Spec.Revision, rev.Name))
	return reconcile.Result{}, nil
}

// Validate runs the publish-time checks of a Composition against its XRD
// and, when schemas is not nil, the schemas of the kinds it composes.
func Validate(x *v1alpha1.CompositeResourceDefinition, spec *v1alpha1.CompositionSpec, schemas render.SchemaSource) error {
	if spec.CompositeTypeRef.Kind != x.Spec.Names.Kind {
		return fmt.Errorf("compositeTypeRef.kind %s does not match XRD kind %s", spec.CompositeTypeRef.Kind, x.Spec.Names.Kind)
	}
	typ, err := xrd.XRType(x)
	if err != nil {
		return fmt.Errorf("cannot type the composite kind: %w", err)
	}
	plan, err := render.NewPlan(spec, typ)
	if err != nil || schemas == nil {
		return err
	}
	return plan.CheckTargets(spec, schemas)
}

// FindXRD returns the XRD defining a composite type, or nil.
func FindXRD(ctx context.Context, c client.Client, ref v1alpha1.TypeReference) (*v1alpha1.CompositeResourceDefinition, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("invalid apiVersion %q: %w", ref.APIVersion, err)
	}
	l := &v1alpha1.CompositeResourceDefinitionList{}
	if err := c.List(ctx, l); err != nil {
		return nil, fmt.Errorf("cannot list XRDs: %w", err)
	}
	for i := range l.Items {
		x := &l.Items[i]
		if x.Spec.Group == gv.Group && x.Spec.Names.Kind == ref.Kind {
			return x, nil
		}
	}
	return nil, nil
}

func specHash(spec *v1alpha1.CompositionSpec) (string, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:10], nil
}

// publish returns the revision for the current spec, creating it when new.
func (r *CompositionReconciler) publish(ctx context.Context, c *v1alpha1.Composition) (*v1alpha1.CompositionRevision, error) {
	hash, err := specHash(&c.Spec)
	if err != nil {
		return nil, fmt.Errorf("cannot hash spec: %w", err)
	}
	revs, err := Revisions(ctx, r.Client, c.Name)
	if err != nil {
		return nil, err
	}
	var latest int64
	for i := range revs {
		if revs[i].Labels[v1alpha1.LabelCompositionHash] == hash {
			if revs[i].Spec.Revision == revs[len(revs)-1].Spec.Revision {
				return &revs[i], nil
			}
		}
		latest = max(latest, revs[i].Spec.Revision)
	}
	rev := &v1alpha1.CompositionRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:   fmt.Sprintf("%s-%s", truncate(c.Name, 50), hash[:7]),
			Labels: map[string]string{v1alpha1.LabelCompositionName: c.Name, v1alpha1.LabelCompositionHash: hash},
		},
		Spec: v1alpha1.CompositionRevisionSpec{Revision: latest + 1, CompositionSpec: *c.Spec.DeepCopy()},
	}
	if err := ctrlSetOwner(c, rev); err != nil {
		return nil, err
	}
	// A spec that went back to an older revision's content gets a new number
	// under a fresh name, since revisions are immutable.
	for _, existing := range revs {
		if existing.Name == rev.Name {
			rev.Name = fmt.Sprintf("%s-%s-%d", truncate(c.Name, 45), hash[:7], latest+1)
		}
	}
	if err := r.Client.Create(ctx, rev); err != nil {
		return nil, fmt.Errorf("cannot create CompositionRevision %s: %w", rev.Name, err)
	}
	orig := rev.DeepCopy()
	conditions.Set(rev, v1alpha1.Valid, metav1.ConditionTrue, v1alpha1.ReasonValidated, "validated when published")
	if err := r.Client.Status().Patch(ctx, rev, client.MergeFrom(orig)); err != nil {
		return nil, fmt.Errorf("cannot set status of CompositionRevision %s: %w", rev.Name, err)
	}
	r.Recorder.Eventf(c, rev, "Normal", "PublishRevision", "Publish", "published revision %d (%s)", rev.Spec.Revision, rev.Name)
	return rev, nil
}

// Revisions lists a Composition's revisions, oldest first.
func Revisions(ctx context.Context, c client.Client, composition string) ([]v1alpha1.CompositionRevision, error) {
	l := &v1alpha1.CompositionRevisionList{}
	if err := c.List(ctx, l, client.MatchingLabels{v1alpha1.LabelCompositionName: composition}); err != nil {
		return nil, fmt.Errorf("cannot list revisions of %s: %w", composition, err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Spec.Revision < l.Items[j].Spec.Revision })
	return l.Items, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.TrimRight(s[:n], "-.")
}

func ctrlSetOwner(c *v1alpha1.Composition, rev *v1alpha1.CompositionRevision) error {
	t := true
	rev.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: "Composition", Name: c.Name, UID: c.UID,
		Controller: &t, BlockOwnerDeletion: &t,
	}}
	return nil
}
