package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"sort"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
	"github.com/strata-dev/strata/internal/kit/patch"
)

// CompositionReconciler validates Compositions and snapshots every valid
// change into a numbered CompositionRevision.
type CompositionReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Schemas, when set, type-checks templates against the composed kinds.
	Schemas render.SchemaSource
	// Kinds, when set, says whether the API server serves a composed kind;
	// a Composition composing a kind it does not serve is not valid.
	Kinds ServedKinds
}

// ServedKinds says whether the API server serves a kind.
type ServedKinds interface {
	Served(gvk schema.GroupVersionKind) (bool, error)
}

// unservedKindRequeue is how soon a Composition composing a kind the API
// server does not serve is checked again (the kind's CRD may be installed
// next).
const unservedKindRequeue = 30 * time.Second

// SetupWithManager registers the Composition controller; it also runs when
// XRDs change, since their schema types the expressions.
func (r *CompositionReconciler) SetupWithManager(mgr manager.Manager, workers int) error {
	return ctrl.ControllerManagedBy(mgr).
		Named("composition").
		For(&v1alpha1.Composition{}).
		Owns(&v1alpha1.CompositionRevision{}).
		Watches(&v1alpha1.CompositeResourceDefinition{}, handler.EnqueueRequestsFromMapFunc(r.forXRD)).
		Watches(&apiextensionsv1.CustomResourceDefinition{}, handler.EnqueueRequestsFromMapFunc(r.forCRD)).
		WithOptions(controller.Options{RateLimiter: kitreconcile.RateLimiter(), MaxConcurrentReconciles: workers}).
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

// forCRD checks the Compositions that are not valid again when a CRD
// changes: one may compose the kind it serves.
func (r *CompositionReconciler) forCRD(ctx context.Context, _ client.Object) []reconcile.Request {
	l := &v1alpha1.CompositionList{}
	if err := r.Client.List(ctx, l); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range l.Items {
		if !conditions.IsTrue(&l.Items[i], v1alpha1.Valid) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&l.Items[i])})
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
	h := patch.NewHelper(r.Client, c)
	defer func() {
		if retErr == nil {
			c.Status.ObservedGeneration = c.Generation
		}
		// XRs select their revision by status.latestRevisionName: a write
		// from a stale read must not put an older one back.
		if err := h.Status(ctx, c, patch.WithOptimisticLock()); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, err)
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
	if msg, err := r.checkKinds(&c.Spec); err != nil {
		conditions.MarkFailed(c, conditions.ReasonReconcileError, err.Error())
		return reconcile.Result{}, err
	} else if msg != "" {
		if cur := conditions.Get(c, v1alpha1.Valid); cur == nil || cur.Message != msg {
			r.Recorder.Eventf(c, nil, "Warning", v1alpha1.ReasonCompositionInvalid, "Validate", "%s", msg)
		}
		conditions.Set(c, v1alpha1.Valid, metav1.ConditionFalse, v1alpha1.ReasonCompositionInvalid, msg)
		conditions.MarkStalled(c, v1alpha1.ReasonCompositionInvalid, msg)
		return reconcile.Result{RequeueAfter: unservedKindRequeue}, nil
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

// checkKinds returns a message naming the first resource whose kind the API
// server does not serve, or "" when all are served (or Kinds is not set).
func (r *CompositionReconciler) checkKinds(spec *v1alpha1.CompositionSpec) (string, error) {
	if r.Kinds == nil {
		return "", nil
	}
	for _, t := range spec.Resources {
		var tm metav1.TypeMeta
		if err := json.Unmarshal(t.Template.Raw, &tm); err != nil {
			return fmt.Sprintf("resource %q: cannot read apiVersion and kind: %v", t.Name, err), nil
		}
		gvk := tm.GroupVersionKind()
		ok, err := r.Kinds.Served(gvk)
		if err != nil {
			return "", err
		}
		if !ok {
			return fmt.Sprintf("resource %q: kind %s of apiVersion %s is not served by the API server (is its CRD installed?)", t.Name, tm.Kind, tm.APIVersion), nil
		}
	}
	return "", nil
}

// composes reports whether a Composition's compositeTypeRef names the
// composite kind gvk (group and kind; the version may be any the XRD serves).
func composes(ref v1alpha1.TypeReference, gvk schema.GroupVersionKind) bool {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && gv.Group == gvk.Group && ref.Kind == gvk.Kind
}

// selectComposition names the first, by name, of the Compositions of the
// composite kind gvk whose labels match sel. When allowed is not nil (the
// XRD's claimCompositionSelector, for a claim's choice), only Compositions it
// matches may be chosen.
func selectComposition(ctx context.Context, c client.Reader, gvk schema.GroupVersionKind, sel map[string]string, allowed *metav1.LabelSelector) (string, error) {
	l := &v1alpha1.CompositionList{}
	if err := c.List(ctx, l, client.MatchingLabels(sel)); err != nil {
		return "", fmt.Errorf("cannot list compositions: %w", err)
	}
	var names, refused []string
	for i := range l.Items {
		comp := &l.Items[i]
		if !composes(comp.Spec.CompositeTypeRef, gvk) {
			continue
		}
		if err := claimMayUse(allowed, comp); err != nil {
			refused = append(refused, comp.Name)
			continue
		}
		names = append(names, comp.Name)
	}
	if len(names) == 0 && len(refused) > 0 {
		sort.Strings(refused)
		return "", kitreconcile.Terminal(v1alpha1.ReasonCompositionNotAllowed, fmt.Errorf("compositions %s match labels %v but the XRD's claimCompositionSelector does not allow claims to use them",
			strings.Join(refused, ", "), labels.Set(sel)))
	}
	if len(names) == 0 {
		return "", kitreconcile.Terminal(conditions.ReasonCompositionInvalid, fmt.Errorf("no composition for %s matches labels %v", gvk.Kind, labels.Set(sel)))
	}
	sort.Strings(names)
	return names[0], nil
}

// claimMayUse says whether the XRD's claimCompositionSelector (allowed; nil
// allows everything) lets a claim choose comp.
func claimMayUse(allowed *metav1.LabelSelector, comp *v1alpha1.Composition) error {
	if allowed == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(allowed)
	if err != nil {
		return fmt.Errorf("invalid claimCompositionSelector: %w", err)
	}
	if !sel.Matches(labels.Set(comp.Labels)) {
		return fmt.Errorf("composition %s is not one claims may choose (the XRD's claimCompositionSelector is %s)", comp.Name, sel)
	}
	return nil
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
	h := patch.NewHelper(r.Client, rev)
	conditions.Set(rev, v1alpha1.Valid, metav1.ConditionTrue, v1alpha1.ReasonValidated, "validated when published")
	if err := h.Status(ctx, rev); err != nil {
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
