package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/kit/patch"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
)

type cesReconciler struct {
	client   client.Client
	recorder events.EventRecorder
}

func setupClusterExternalSecret(mgr ctrl.Manager, c client.Client, workers int) error {
	r := &cesReconciler{client: c, recorder: mgr.GetEventRecorder("strata-clusterexternalsecret.secrets.strata.dev")}
	return ctrl.NewControllerManagedBy(mgr).Named("clusterexternalsecret.secrets.strata.dev").
		For(&secretsv1.ClusterExternalSecret{}).
		Owns(&secretsv1.ExternalSecret{}).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.all)).
		WithOptions(controller.Options{RateLimiter: kitreconcile.RateLimiter(), MaxConcurrentReconciles: workers}).
		Complete(r)
}

func (r *cesReconciler) all(ctx context.Context, _ client.Object) []reconcile.Request {
	var l secretsv1.ClusterExternalSecretList
	if err := r.client.List(ctx, &l); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(l.Items))
	for _, c := range l.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: c.Name}})
	}
	return out
}

// selected reports whether a namespace is one the ClusterExternalSecret
// names or selects.
func selected(ces *secretsv1.ClusterExternalSecret, ns *corev1.Namespace) bool {
	for _, n := range ces.Spec.Namespaces {
		if n == ns.Name {
			return true
		}
	}
	sels := append([]*metav1.LabelSelector{}, ces.Spec.NamespaceSelectors...)
	if ces.Spec.NamespaceSelector != nil {
		sels = append(sels, ces.Spec.NamespaceSelector)
	}
	for _, s := range sels {
		if s == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(s)
		if err != nil || sel.Empty() {
			continue // an invalid or empty selector selects nothing
		}
		if sel.Matches(labels.Set(ns.Labels)) {
			return true
		}
	}
	return false
}

// Reconcile stamps the ExternalSecret into every selected namespace, never
// over an ExternalSecret it did not create, and deletes the ones it created
// in namespaces no longer selected.
func (r *cesReconciler) Reconcile(ctx context.Context, req reconcile.Request) (res ctrl.Result, retErr error) {
	ces := &secretsv1.ClusterExternalSecret{}
	if err := r.client.Get(ctx, req.NamespacedName, ces); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ces.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	h := patch.NewHelper(r.client, ces)
	conditions.EnsureInitialized(ces)
	defer func() {
		if equality.Semantic.DeepEqual(h.Base().(*secretsv1.ClusterExternalSecret).Status, ces.Status) {
			return
		}
		if err := h.Status(ctx, ces, patch.WithOptimisticLock()); err != nil {
			retErr = errors.Join(retErr, client.IgnoreNotFound(err))
		}
	}()
	ces.Status.LastHandledReconcileAt = ces.Annotations[secretsv1.ReconcileRequestAnnotation]
	name := ces.Spec.ExternalSecretName
	if name == "" {
		name = ces.Name
	}
	owner := ownership.Owner{APIVersion: secretsv1.GroupVersion.String(), Kind: "ClusterExternalSecret", Name: ces.Name, UID: ces.UID, Mark: ownership.ControllerRef}
	var nsl corev1.NamespaceList
	if err := r.client.List(ctx, &nsl); err != nil {
		return ctrl.Result{}, fmt.Errorf("cannot list namespaces: %w", err)
	}
	want := map[string]bool{}
	var provisioned []string
	var failed []secretsv1.ClusterExternalSecretNamespaceFailure
	for i := range nsl.Items {
		ns := &nsl.Items[i]
		if !selected(ces, ns) || !ns.DeletionTimestamp.IsZero() {
			continue
		}
		want[ns.Name] = true
		if err := r.stamp(ctx, ces, owner, ns.Name, name); err != nil {
			failed = append(failed, secretsv1.ClusterExternalSecretNamespaceFailure{Namespace: ns.Name, Reason: eventmsg.Truncate(err.Error())})
			continue
		}
		provisioned = append(provisioned, ns.Name)
	}
	// Remove what this ClusterExternalSecret stamped where it no longer
	// belongs (a namespace deselected, or the name changed).
	var esl secretsv1.ExternalSecretList
	if err := r.client.List(ctx, &esl); err != nil {
		return ctrl.Result{}, fmt.Errorf("cannot list ExternalSecrets: %w", err)
	}
	for i := range esl.Items {
		es := &esl.Items[i]
		if !owner.Controls(es) || (want[es.Namespace] && es.Name == name) {
			continue
		}
		uid := es.UID
		if err := r.client.Delete(ctx, es, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("cannot delete ExternalSecret %s/%s: %w", es.Namespace, es.Name, err)
		}
		r.recorder.Eventf(ces, nil, corev1.EventTypeNormal, secretsv1.EventDeleted, "Delete", "deleted ExternalSecret %s/%s", es.Namespace, es.Name)
	}
	sort.Strings(provisioned)
	sort.Slice(failed, func(i, j int) bool { return failed[i].Namespace < failed[j].Namespace })
	ces.Status.ExternalSecretName = name
	ces.Status.ProvisionedNamespaces = provisioned
	ces.Status.FailedNamespaces = failed
	switch {
	case len(failed) == 0:
		conditions.MarkReady(ces, secretsv1.ReasonProvisioned, fmt.Sprintf("ExternalSecret %q is in %d namespace(s)", name, len(provisioned)))
		ces.Status.ObservedGeneration = ces.Generation
	default:
		reason := secretsv1.ReasonPartiallyProvisioned
		if len(provisioned) == 0 {
			reason = secretsv1.ReasonNotProvisioned
		}
		ns := make([]string, len(failed))
		for i, f := range failed {
			ns[i] = f.Namespace
		}
		msg := eventmsg.List(fmt.Sprintf("ExternalSecret %q could not be stamped into namespace(s) (see status.failedNamespaces): ", name), ns)
		if c := conditions.Get(ces, conditions.Ready); c == nil || c.Message != msg {
			r.recorder.Eventf(ces, nil, corev1.EventTypeWarning, reason, "Provision", "%s", msg)
		}
		conditions.MarkFailed(ces, reason, msg)
	}
	every := time.Minute
	if ces.Spec.RefreshInterval != nil && ces.Spec.RefreshInterval.Duration > 0 {
		every = ces.Spec.RefreshInterval.Duration
	}
	return ctrl.Result{RequeueAfter: kitreconcile.Jitter(every)}, nil
}

// stamp creates or updates the ExternalSecret in ns, refusing one that this
// ClusterExternalSecret does not control.
func (r *cesReconciler) stamp(ctx context.Context, ces *secretsv1.ClusterExternalSecret, owner ownership.Owner, ns, name string) error {
	es := &secretsv1.ExternalSecret{}
	err := r.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, es)
	switch {
	case apierrors.IsNotFound(err):
		es = &secretsv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		fill(es, ces, owner)
		if err := r.client.Create(ctx, es); err != nil {
			return fmt.Errorf("cannot create ExternalSecret %s/%s: %w", ns, name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("cannot read ExternalSecret %s/%s: %w", ns, name, err)
	}
	es.SetGroupVersionKind(secretsv1.GroupVersion.WithKind("ExternalSecret"))
	if _, err := ownership.Decide(es, owner); err != nil {
		return err
	}
	before := es.DeepCopy()
	fill(es, ces, owner)
	if equality.Semantic.DeepEqual(before.Spec, es.Spec) && equality.Semantic.DeepEqual(before.ObjectMeta, es.ObjectMeta) {
		return nil
	}
	if err := r.client.Update(ctx, es); err != nil {
		return fmt.Errorf("cannot update ExternalSecret %s/%s: %w", ns, name, err)
	}
	return nil
}

func fill(es *secretsv1.ExternalSecret, ces *secretsv1.ClusterExternalSecret, owner ownership.Owner) {
	es.Spec = *ces.Spec.ExternalSecretSpec.DeepCopy()
	l := es.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	for k, v := range ces.Spec.ExternalSecretMetadata.Labels {
		l[k] = v
	}
	es.SetLabels(l)
	a := es.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	for k, v := range ces.Spec.ExternalSecretMetadata.Annotations {
		a[k] = v
	}
	es.SetAnnotations(a)
	owner.SetMark(es)
}
