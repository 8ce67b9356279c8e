package pushsecret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	"github.com/strata-dev/strata/internal/kit/patch"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/secrets/provider"
)

// Finalizer holds a PushSecret with deletionPolicy Delete until what it
// wrote is removed from its stores.
const Finalizer = "secrets.strata.dev/pushsecret"

// ReconcileRequestAnnotation asks for a push now.
const ReconcileRequestAnnotation = "strata.dev/reconcile-requested-at"

// Event reasons.
const (
	EventSynced   = "Synced"
	EventErrored  = "Errored"
	EventDeleted  = "Deleted"
	EventNotOwner = "NotOwner"
)

// DefaultRefreshInterval is used when spec.refreshInterval is not set.
const DefaultRefreshInterval = time.Hour

// indexSourceSecret indexes PushSecrets by their source Secret's name.
const indexSourceSecret = "secrets.strata.dev/pushsecret-source"

// Stores gives the client of a store a PushSecret names. The caller
// applies the store's rules (a SecretStore of the PushSecret's namespace; a
// ClusterSecretStore only when it allows that namespace; Ready). An error
// may carry a reason (kit/reconcile Reasoned or Terminal).
type Stores interface {
	Client(ctx context.Context, namespace string, ref secretsv1.PushSecretStoreRef) (provider.Client, error)
}

// Reconciler pushes PushSecrets.
type Reconciler struct {
	client   client.Client
	stores   Stores
	recorder events.EventRecorder
	log      logr.Logger
}

// Setup registers the PushSecret controller with mgr.
func Setup(mgr ctrl.Manager, c client.Client, stores Stores, workers int) error {
	if workers == 0 {
		workers = 4
	}
	r := &Reconciler{client: c, stores: stores,
		recorder: mgr.GetEventRecorder("strata-pushsecret.secrets.strata.dev"),
		log:      mgr.GetLogger().WithName("pushsecret")}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &secretsv1.PushSecret{}, indexSourceSecret, func(o client.Object) []string {
		return []string{o.(*secretsv1.PushSecret).Spec.Selector.Secret.Name}
	}); err != nil {
		return fmt.Errorf("cannot index PushSecrets by source Secret: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).Named("pushsecret.secrets.strata.dev").
		For(&secretsv1.PushSecret{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.forSecret)).
		WithOptions(controller.Options{RateLimiter: kitreconcile.RateLimiter(), MaxConcurrentReconciles: workers}).
		Complete(r)
}

// forSecret wakes the PushSecrets that read a Secret.
func (r *Reconciler) forSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var l secretsv1.PushSecretList
	if err := r.client.List(ctx, &l, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexSourceSecret: o.GetName()}); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(l.Items))
	for _, ps := range l.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ps.Namespace, Name: ps.Name}})
	}
	return out
}

// Owner is how a PushSecret is recorded as the writer of a value.
func Owner(ps *secretsv1.PushSecret) string { return "pushsecret/" + ps.Namespace + "/" + ps.Name }

func storeKey(ref secretsv1.PushSecretStoreRef) string {
	kind := ref.Kind
	if kind == "" {
		kind = secretsv1.SecretStoreKind
	}
	return kind + "/" + ref.Name
}

func parseStoreKey(k string) secretsv1.PushSecretStoreRef {
	for i := 0; i < len(k); i++ {
		if k[i] == '/' {
			return secretsv1.PushSecretStoreRef{Kind: k[:i], Name: k[i+1:]}
		}
	}
	return secretsv1.PushSecretStoreRef{Name: k}
}

func refKey(r secretsv1.PushSecretRemoteRef) string {
	if r.Property == "" {
		return r.RemoteKey
	}
	return r.RemoteKey + "#" + r.Property
}

func pushRef(r secretsv1.PushSecretRemoteRef) provider.PushRef {
	return provider.PushRef{Key: r.RemoteKey, Property: r.Property}
}

func describeRef(r secretsv1.PushSecretRemoteRef) string {
	if r.Property == "" {
		return fmt.Sprintf("key %q", r.RemoteKey)
	}
	return fmt.Sprintf("key %q property %q", r.RemoteKey, r.Property)
}

// Reconcile pushes one PushSecret: finalizer, source Secret, each store,
// then the values that left the spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	ps := &secretsv1.PushSecret{}
	if err := r.client.Get(ctx, req.NamespacedName, ps); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ps.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, ps)
	}
	del := ps.Spec.DeletionPolicy == secretsv1.PushSecretDeletionPolicyDelete
	if del != controllerutil.ContainsFinalizer(ps, Finalizer) {
		p := client.MergeFrom(ps.DeepCopy())
		if del {
			controllerutil.AddFinalizer(ps, Finalizer)
		} else {
			controllerutil.RemoveFinalizer(ps, Finalizer)
		}
		if err := r.client.Patch(ctx, ps, p); err != nil {
			return ctrl.Result{}, fmt.Errorf("cannot update the finalizer of PushSecret %s/%s: %w", ps.Namespace, ps.Name, err)
		}
	}

	h := patch.NewHelper(r.client, ps)
	conditions.EnsureInitialized(ps)
	defer func() {
		// The record of what was written (status.syncedPushSecrets) is
		// what deletion relies on: written with optimistic locking.
		if err := h.Status(ctx, ps, patch.WithOptimisticLock()); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, err)
		}
	}()
	if v, ok := ps.Annotations[ReconcileRequestAnnotation]; ok {
		ps.Status.LastHandledReconcileAt = v
	}
	wasReady := conditions.IsTrue(ps, conditions.Ready)

	values, srcVersion, err := r.source(ctx, ps)
	if err != nil {
		return r.fail(ps, err)
	}
	changed, err := r.push(ctx, ps, values)
	if err != nil {
		return r.fail(ps, err)
	}
	msg := fmt.Sprintf("pushed %d value(s) of Secret %s to %d store(s)", len(ps.Spec.Data), ps.Spec.Selector.Secret.Name, len(ps.Spec.SecretStoreRefs))
	conditions.MarkReady(ps, secretsv1.ReasonPushSynced, msg)
	if !wasReady || changed || srcVersion != ps.Status.SyncedResourceVersion || ps.Status.ObservedGeneration != ps.Generation {
		r.recorder.Eventf(ps, nil, corev1.EventTypeNormal, EventSynced, "Push", "%s", eventmsg.Truncate(msg))
	}
	ps.Status.ObservedGeneration = ps.Generation
	ps.Status.SyncedResourceVersion = srcVersion
	ps.Status.RefreshTime.Time = time.Now().Truncate(time.Second)
	return ctrl.Result{RequeueAfter: kitreconcile.Jitter(refreshInterval(ps))}, nil
}

func refreshInterval(ps *secretsv1.PushSecret) time.Duration {
	if ps.Spec.RefreshInterval != nil && ps.Spec.RefreshInterval.Duration > 0 {
		return ps.Spec.RefreshInterval.Duration
	}
	return DefaultRefreshInterval
}

// fail reports err on Ready (SecretNotFound, or Errored), with Stalled for
// what only the user can fix, and an event.
func (r *Reconciler) fail(ps *secretsv1.PushSecret, err error) (ctrl.Result, error) {
	reason := secretsv1.ReasonPushErrored
	if kitreconcile.ReasonOf(err) == secretsv1.ReasonPushSecretNotFound {
		reason = secretsv1.ReasonPushSecretNotFound
	}
	msg := eventmsg.Truncate(err.Error())
	if before := conditions.Get(ps, conditions.Ready); before == nil || before.Message != msg {
		r.recorder.Eventf(ps, nil, corev1.EventTypeWarning, EventErrored, "Push", "%s", msg)
	}
	if kitreconcile.IsTerminal(err) {
		conditions.MarkStalled(ps, reason, msg)
		ps.Status.ObservedGeneration = ps.Generation
		return ctrl.Result{}, err
	}
	conditions.MarkFailed(ps, reason, msg)
	if reason == secretsv1.ReasonPushSecretNotFound {
		// The Secret watch wakes the PushSecret when it appears.
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, err
}

// source reads the values to push, by spec.data index.
func (r *Reconciler) source(ctx context.Context, ps *secretsv1.PushSecret) ([][]byte, string, error) {
	name := ps.Spec.Selector.Secret.Name
	s := &corev1.Secret{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: ps.Namespace, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", kitreconcile.Reasoned(secretsv1.ReasonPushSecretNotFound,
				fmt.Errorf("Secret %s/%s (spec.selector.secret.name) not found", ps.Namespace, name))
		}
		return nil, "", fmt.Errorf("cannot read Secret %s/%s: %w", ps.Namespace, name, err)
	}
	out := make([][]byte, len(ps.Spec.Data))
	for i, d := range ps.Spec.Data {
		k := d.Match.SecretKey
		if k == "" {
			m := make(map[string]string, len(s.Data))
			for k, v := range s.Data {
				m[k] = string(v)
			}
			b, err := json.Marshal(m)
			if err != nil {
				return nil, "", err
			}
			out[i] = b
			continue
		}
		v, ok := s.Data[k]
		if !ok {
			return nil, "", kitreconcile.Reasoned(secretsv1.ReasonPushSecretNotFound,
				fmt.Errorf("Secret %s/%s has no key %q (spec.data[%d].match.secretKey)", ps.Namespace, name, k, i))
		}
		out[i] = v
	}
	return out, s.ResourceVersion, nil
}

// push writes every value to every store and, with deletionPolicy Delete,
// removes what left the spec. status.syncedPushSecrets is updated after
// each write, so a failure half way keeps the record of what was written.
func (r *Reconciler) push(ctx context.Context, ps *secretsv1.PushSecret, values [][]byte) (changed bool, err error) {
	if ps.Status.SyncedPushSecrets == nil {
		ps.Status.SyncedPushSecrets = map[string]map[string]secretsv1.PushSecretData{}
	}
	synced := ps.Status.SyncedPushSecrets
	owner := Owner(ps)
	want := map[string]map[string]bool{}
	for _, sref := range ps.Spec.SecretStoreRefs {
		sk := storeKey(sref)
		want[sk] = map[string]bool{}
		cl, err := r.stores.Client(ctx, ps.Namespace, sref)
		if err != nil {
			return changed, err
		}
		for i, d := range ps.Spec.Data {
			rk := refKey(d.Match.RemoteRef)
			want[sk][rk] = true
			_, adopt := synced[sk][rk]
			if err := pushOne(ctx, cl, pushRef(d.Match.RemoteRef), values[i], owner, adopt); err != nil {
				err = fmt.Errorf("%s %s: cannot push spec.data[%d] to %s: %w", sref.Kind, sref.Name, i, describeRef(d.Match.RemoteRef), err)
				if errors.Is(err, provider.ErrNotOwner) {
					return changed, kitreconcile.Terminal(secretsv1.ReasonPushErrored, err)
				}
				return changed, err
			}
			if synced[sk] == nil {
				synced[sk] = map[string]secretsv1.PushSecretData{}
			}
			if !adopt {
				changed = true
			}
			synced[sk][rk] = d
		}
	}
	// Values that left the spec (or whose store did).
	var gone []string
	for sk, refs := range synced {
		for rk := range refs {
			if !want[sk][rk] {
				gone = append(gone, sk+"\x00"+rk)
			}
		}
	}
	sort.Strings(gone)
	if len(gone) == 0 {
		return changed, nil
	}
	if ps.Spec.DeletionPolicy != secretsv1.PushSecretDeletionPolicyDelete {
		for _, g := range gone {
			sk, rk := split(g)
			delete(synced[sk], rk)
			if len(synced[sk]) == 0 {
				delete(synced, sk)
			}
		}
		return true, nil
	}
	return true, r.deleteRefs(ctx, ps, gone)
}

func split(g string) (string, string) {
	for i := 0; i < len(g); i++ {
		if g[i] == 0 {
			return g[:i], g[i+1:]
		}
	}
	return g, ""
}

// deleteRefs removes the values listed (store key NUL ref key) from their
// stores and from the record. A value another writer now owns is left in
// place and forgotten, with an event.
func (r *Reconciler) deleteRefs(ctx context.Context, ps *secretsv1.PushSecret, refs []string) error {
	synced := ps.Status.SyncedPushSecrets
	owner := Owner(ps)
	clients := map[string]provider.Client{}
	var deleted []string
	defer func() {
		if len(deleted) > 0 {
			r.recorder.Eventf(ps, nil, corev1.EventTypeNormal, EventDeleted, "Delete", "%s", eventmsg.List("deleted from the store: ", deleted))
		}
	}()
	for _, g := range refs {
		sk, rk := split(g)
		d := synced[sk][rk]
		sref := parseStoreKey(sk)
		cl, ok := clients[sk]
		if !ok {
			var err error
			if cl, err = r.stores.Client(ctx, ps.Namespace, sref); err != nil {
				return fmt.Errorf("cannot delete %s from %s: %w", describeRef(d.Match.RemoteRef), sk, err)
			}
			clients[sk] = cl
		}
		err := deleteOne(ctx, cl, pushRef(d.Match.RemoteRef), owner)
		switch {
		case errors.Is(err, provider.ErrNotOwner):
			r.recorder.Eventf(ps, nil, corev1.EventTypeWarning, EventNotOwner, "Delete", "%s", eventmsg.Truncate(
				fmt.Sprintf("%s: %s left in place: %v", sk, describeRef(d.Match.RemoteRef), err)))
		case err != nil:
			return fmt.Errorf("cannot delete %s from %s: %w", describeRef(d.Match.RemoteRef), sk, err)
		default:
			deleted = append(deleted, sk+" "+describeRef(d.Match.RemoteRef))
		}
		delete(synced[sk], rk)
		if len(synced[sk]) == 0 {
			delete(synced, sk)
		}
	}
	return nil
}

// pushOne writes through provider.OwnedWriter when the store records
// writers; otherwise it refuses to overwrite a value that exists unless
// this PushSecret wrote it before (adopt).
func pushOne(ctx context.Context, cl provider.Client, ref provider.PushRef, value []byte, owner string, adopt bool) error {
	if ow, ok := cl.(provider.OwnedWriter); ok {
		err := ow.PushSecretAs(ctx, ref, value, owner, adopt)
		if !errors.Is(err, provider.ErrNotSupported) {
			return err
		}
	}
	if !adopt {
		_, err := cl.GetSecret(ctx, provider.Ref{Key: ref.Key, Property: ref.Property})
		switch {
		case err == nil:
			return fmt.Errorf("it already exists and was not written by %s: %w", owner, provider.ErrNotOwner)
		case !errors.Is(err, provider.ErrNotFound):
			return err
		}
	}
	return cl.PushSecret(ctx, ref, value)
}

// deleteOne removes a value this PushSecret wrote (it is in its record).
func deleteOne(ctx context.Context, cl provider.Client, ref provider.PushRef, owner string) error {
	if ow, ok := cl.(provider.OwnedWriter); ok {
		err := ow.DeleteSecretAs(ctx, ref, owner, true)
		if !errors.Is(err, provider.ErrNotSupported) {
			return err
		}
	}
	return cl.DeleteSecret(ctx, ref)
}

// finalize removes what the PushSecret wrote (deletionPolicy Delete), then
// its finalizer. A store error keeps the finalizer, so nothing is left
// behind silently; the condition says why.
func (r *Reconciler) finalize(ctx context.Context, ps *secretsv1.PushSecret) error {
	if !controllerutil.ContainsFinalizer(ps, Finalizer) {
		return nil
	}
	if ps.Spec.DeletionPolicy == secretsv1.PushSecretDeletionPolicyDelete && len(ps.Status.SyncedPushSecrets) > 0 {
		h := patch.NewHelper(r.client, ps)
		var all []string
		for sk, refs := range ps.Status.SyncedPushSecrets {
			for rk := range refs {
				all = append(all, sk+"\x00"+rk)
			}
		}
		sort.Strings(all)
		err := r.deleteRefs(ctx, ps, all)
		if err != nil {
			conditions.MarkFailed(ps, secretsv1.ReasonPushErrored, eventmsg.Truncate(err.Error()))
			r.recorder.Eventf(ps, nil, corev1.EventTypeWarning, EventErrored, "Delete", "%s", eventmsg.Truncate(err.Error()))
		} else {
			conditions.Set(ps, conditions.Ready, "False", conditions.ReasonDeleting, "pushed values deleted from the stores")
		}
		if perr := h.Status(ctx, ps, patch.WithOptimisticLock()); perr != nil {
			return errors.Join(err, perr)
		}
		if err != nil {
			return err
		}
	}
	p := client.MergeFrom(ps.DeepCopy())
	controllerutil.RemoveFinalizer(ps, Finalizer)
	if err := r.client.Patch(ctx, ps, p); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cannot remove the finalizer of PushSecret %s/%s: %w", ps.Namespace, ps.Name, err)
	}
	return nil
}
