package controller

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
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
	"github.com/strata-dev/strata/internal/kit/ssa"
	"github.com/strata-dev/strata/internal/secrets/provider"
	"github.com/strata-dev/strata/internal/secrets/template"
)

// saltAnnotation holds a random salt, per Secret, mixed into its data hash,
// so the hash (also stamped on workloads, which more people can read than
// Secrets) cannot be used to guess a short value.
const saltAnnotation = "secrets.strata.dev/hash-salt"

// Retry bounds: a failed ExternalSecret is retried at most this far apart
// (or at its refreshInterval when shorter).
const esRetry = 30 * time.Second

// defaultRefresh is refreshInterval when unset (the CRD defaults it too).
const defaultRefresh = time.Hour

// stalledReasons are the user errors: only a change of the ExternalSecret,
// the store or the target Secret fixes them.
var stalledReasons = map[string]bool{
	secretsv1.ReasonSecretConflict:  true,
	secretsv1.ReasonStoreNotAllowed: true,
	secretsv1.ReasonTemplateInvalid: true,
	secretsv1.ReasonInvalidSpec:     true,
}

type esReconciler struct {
	client   client.Client
	clients  *Clients
	recorder events.EventRecorder
	now      func() time.Time
}

func setupExternalSecret(mgr ctrl.Manager, c client.Client, clients *Clients, workers int) error {
	r := &esReconciler{client: c, clients: clients, now: time.Now,
		recorder: mgr.GetEventRecorder("strata-externalsecret.secrets.strata.dev")}
	return ctrl.NewControllerManagedBy(mgr).Named("externalsecret.secrets.strata.dev").
		For(&secretsv1.ExternalSecret{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.forSecret)).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.forTemplate("ConfigMap"))).
		Watches(&secretsv1.SecretStore{}, handler.EnqueueRequestsFromMapFunc(r.forStore)).
		Watches(&secretsv1.ClusterSecretStore{}, handler.EnqueueRequestsFromMapFunc(r.forStore)).
		WithOptions(controller.Options{RateLimiter: kitreconcile.RateLimiter(), MaxConcurrentReconciles: workers}).
		Complete(r)
}

func requests(items []secretsv1.ExternalSecret) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(items))
	for _, es := range items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: es.Namespace, Name: es.Name}})
	}
	return out
}

// forSecret wakes the ExternalSecrets whose target is this Secret (drift,
// deletion, or a conflicting Secret that went away) or that use it as a
// template.
func (r *esReconciler) forSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var l secretsv1.ExternalSecretList
	if err := r.client.List(ctx, &l, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexTargetName: o.GetName()}); err != nil {
		return nil
	}
	return append(requests(l.Items), r.forTemplate("Secret")(ctx, o)...)
}

// forTemplate wakes the ExternalSecrets whose templateFrom names this
// ConfigMap or Secret (kind).
func (r *esReconciler) forTemplate(kind string) func(context.Context, client.Object) []reconcile.Request {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var l secretsv1.ExternalSecretList
		if err := r.client.List(ctx, &l, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexTemplateRef: kind + "/" + o.GetName()}); err != nil {
			return nil
		}
		return requests(l.Items)
	}
}

// forStore wakes the ExternalSecrets that use a store.
func (r *esReconciler) forStore(ctx context.Context, o client.Object) []reconcile.Request {
	var l secretsv1.ExternalSecretList
	opts := []client.ListOption{client.MatchingFields{indexStoreRef: storeRefKey(o.(storeObject).GetKind(), o.GetName())}}
	if o.GetNamespace() != "" {
		opts = append(opts, client.InNamespace(o.GetNamespace()))
	}
	if err := r.client.List(ctx, &l, opts...); err != nil {
		return nil
	}
	return requests(l.Items)
}

type esScope struct {
	es    *secretsv1.ExternalSecret
	log   logr.Logger
	owner ownership.Owner
	store string // "SecretStore team-a/vault", for messages
}

// Reconcile fetches the ExternalSecret, decides whether a refresh is due,
// then resolves the store, fetches the values, renders the template and
// writes the target Secret. One deferred patch writes the status, with
// optimistic locking.
func (r *esReconciler) Reconcile(ctx context.Context, req reconcile.Request) (res ctrl.Result, retErr error) {
	es := &secretsv1.ExternalSecret{}
	if err := r.client.Get(ctx, req.NamespacedName, es); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !es.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	h := patch.NewHelper(r.client, es)
	conditions.EnsureInitialized(es)
	defer func() {
		if equality.Semantic.DeepEqual(h.Base().(*secretsv1.ExternalSecret).Status, es.Status) {
			return
		}
		if err := h.Status(ctx, es, patch.WithOptimisticLock()); err != nil {
			retErr = errors.Join(retErr, client.IgnoreNotFound(err))
		}
	}()
	s := &esScope{
		es:  es,
		log: ctrl.LoggerFrom(ctx).WithValues("externalSecret", klog.KObj(es)),
		owner: ownership.Owner{APIVersion: secretsv1.GroupVersion.String(), Kind: "ExternalSecret",
			Namespace: es.Namespace, Name: es.Name, UID: es.UID, Mark: ownership.ControllerRef},
		store: es.StoreKind() + " " + storeName(es),
	}
	return r.reconcile(ctx, s)
}

func storeName(es *secretsv1.ExternalSecret) string {
	if es.StoreKind() == secretsv1.ClusterSecretStoreKind {
		return es.Spec.SecretStoreRef.Name
	}
	return es.Namespace + "/" + es.Spec.SecretStoreRef.Name
}

func creationPolicy(es *secretsv1.ExternalSecret) secretsv1.ExternalSecretCreationPolicy {
	if p := es.Spec.Target.CreationPolicy; p != "" {
		return p
	}
	return secretsv1.CreatePolicyOwner
}

func deletionPolicy(es *secretsv1.ExternalSecret) secretsv1.ExternalSecretDeletionPolicy {
	if p := es.Spec.Target.DeletionPolicy; p != "" {
		return p
	}
	return secretsv1.DeletionPolicyRetain
}

func refreshInterval(es *secretsv1.ExternalSecret) time.Duration {
	if es.Spec.RefreshInterval == nil {
		return defaultRefresh
	}
	return es.Spec.RefreshInterval.Duration
}

func retryInterval(es *secretsv1.ExternalSecret) time.Duration {
	if ri := refreshInterval(es); ri > 0 && ri < esRetry {
		return ri
	}
	return esRetry
}

func (r *esReconciler) reconcile(ctx context.Context, s *esScope) (ctrl.Result, error) {
	es := s.es
	target, err := r.target(ctx, es)
	if err != nil {
		return ctrl.Result{}, err
	}
	if due, wait := r.due(es, target); !due {
		if es.Status.ObservedGeneration != es.Generation {
			// CreatedOnce: the change is seen, and deliberately not applied.
			es.Status.ObservedGeneration = es.Generation
			msg := fmt.Sprintf("Secret %s/%s was synced once (refreshPolicy CreatedOnce); spec changes are not applied until the Secret is deleted or a refresh is requested with the %s annotation",
				es.Namespace, es.TargetName(), secretsv1.ReconcileRequestAnnotation)
			conditions.MarkReady(es, secretsv1.ReasonSecretSynced, msg)
		}
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	es.Status.LastHandledReconcileAt = es.Annotations[secretsv1.ReconcileRequestAnnotation]
	// A template that does not parse is refused before any request.
	if err := template.Parse(es.Spec.Target.Template); err != nil {
		return r.fail(s, kitreconcile.Terminal(secretsv1.ReasonTemplateInvalid, fmt.Errorf("ExternalSecret %s/%s: spec.target.%w", es.Namespace, es.Name, err)))
	}
	if err := validateRewrites(es); err != nil {
		return r.fail(s, err)
	}
	st, err := r.resolveStore(ctx, es)
	if err != nil {
		return r.fail(s, err)
	}
	s.store = describeStore(st)
	cl, err := r.clients.Get(ctx, st, false)
	if err != nil {
		return r.fail(s, kitreconcile.Reasoned(secretsv1.ReasonStoreNotReady, fmt.Errorf("cannot connect to %s: %w", s.store, err)))
	}
	values, missing, err := r.fetch(ctx, s, cl)
	if err != nil {
		if kitreconcile.ReasonOf(err) == secretsv1.ReasonSecretSyncedError {
			r.clients.Drop(st.GetKind(), st.GetNamespace(), st.GetName())
		}
		return r.fail(s, err)
	}
	if len(missing) > 0 {
		if deletionPolicy(es) == secretsv1.DeletionPolicyRetain {
			msg := fmt.Sprintf("%s has no %s", s.store, strings.Join(missing, ", "))
			if target != nil && creationPolicy(es) != secretsv1.CreatePolicyNone {
				msg += fmt.Sprintf("; Secret %s/%s keeps its last synced data (deletionPolicy Retain)", target.Namespace, target.Name)
			}
			return r.fail(s, kitreconcile.Reasoned(secretsv1.ReasonKeyNotFound, errors.New(msg)))
		}
		if len(values) == 0 {
			return r.removeAll(ctx, s, target, missing)
		}
	}
	sources, err := r.templateSources(ctx, es)
	if err != nil {
		return r.fail(s, err)
	}
	out, err := template.RenderAll(es.Spec.Target.Template, sources, values)
	if err != nil {
		return r.fail(s, kitreconcile.Terminal(secretsv1.ReasonTemplateInvalid, fmt.Errorf("ExternalSecret %s/%s: spec.target.%w", es.Namespace, es.Name, err)))
	}
	data := out.Data
	if err := r.write(ctx, s, target, out); err != nil {
		return r.fail(s, err)
	}
	msg := fmt.Sprintf("Secret %s/%s holds %d key(s) from %s", es.Namespace, es.TargetName(), len(data), s.store)
	if creationPolicy(es) == secretsv1.CreatePolicyNone {
		msg = fmt.Sprintf("%d value(s) read from %s; creationPolicy None writes no Secret", len(data), s.store)
	}
	if len(missing) > 0 {
		msg += fmt.Sprintf("; removed what %s no longer has: %s (deletionPolicy %s)", s.store, strings.Join(missing, ", "), deletionPolicy(es))
	}
	r.synced(es, data, msg)
	return ctrl.Result{RequeueAfter: r.nextRefresh(es)}, nil
}

func (r *esReconciler) synced(es *secretsv1.ExternalSecret, data map[string][]byte, msg string) {
	es.Status.RefreshTime = metav1.NewTime(r.now())
	es.Status.SyncedResourceVersion = syncedVersion(es)
	if creationPolicy(es) != secretsv1.CreatePolicyNone {
		es.Status.Binding = corev1.LocalObjectReference{Name: es.TargetName()}
	}
	es.Status.SyncedKeys = sortedKeys(data)
	es.Status.ObservedGeneration = es.Generation
	conditions.MarkReady(es, secretsv1.ReasonSecretSynced, msg)
}

func syncedVersion(es *secretsv1.ExternalSecret) string {
	b, _ := json.Marshal(es.Spec)
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%d-%s", es.Generation, hex.EncodeToString(sum[:])[:16])
}

func (r *esReconciler) nextRefresh(es *secretsv1.ExternalSecret) time.Duration {
	if es.Spec.RefreshPolicy == secretsv1.RefreshPolicyOnChange || es.Spec.RefreshPolicy == secretsv1.RefreshPolicyCreatedOnce {
		return 0
	}
	return kitreconcile.Jitter(refreshInterval(es))
}

// fail reports err on the Ready condition (with an event when it changes)
// and says when to try again. Provider errors are returned, so they back
// off; the others are retried at the retry interval.
func (r *esReconciler) fail(s *esScope, err error) (ctrl.Result, error) {
	es := s.es
	reason := kitreconcile.ReasonOf(err)
	if reason == "" {
		reason = secretsv1.ReasonSecretSyncedError
	}
	msg := eventmsg.Truncate(err.Error())
	prev := conditions.Get(es, conditions.Ready)
	if prev == nil || prev.Reason != reason || prev.Message != msg {
		r.recorder.Eventf(es, nil, corev1.EventTypeWarning, reason, "Sync", "%s", msg)
	}
	if stalledReasons[reason] {
		conditions.MarkStalled(es, reason, msg)
		// Observed: kstatus reads a Stalled object of this generation as
		// Failed, so what waits on it (a claim, a Sync) stops waiting.
		es.Status.ObservedGeneration = es.Generation
	} else {
		conditions.MarkFailed(es, reason, msg)
	}
	s.log.V(1).Info("sync failed", "reason", reason, "error", msg)
	if reason == secretsv1.ReasonSecretSyncedError {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: kitreconcile.Jitter(retryInterval(es))}, nil
}

func (r *esReconciler) target(ctx context.Context, es *secretsv1.ExternalSecret) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := r.client.Get(ctx, client.ObjectKey{Namespace: es.Namespace, Name: es.TargetName()}, s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read Secret %s/%s: %w", es.Namespace, es.TargetName(), err)
	}
	return s, nil
}

// due says whether the values must be fetched now, and otherwise how long
// until they must.
func (r *esReconciler) due(es *secretsv1.ExternalSecret, target *corev1.Secret) (bool, time.Duration) {
	if v := es.Annotations[secretsv1.ReconcileRequestAnnotation]; v != "" && v != es.Status.LastHandledReconcileAt {
		return true, 0
	}
	if !conditions.IsTrue(es, conditions.Ready) || es.Status.RefreshTime.IsZero() {
		return true, 0
	}
	// CreatedOnce (as in ESO) does not fetch again for a spec change once
	// it has synced; the manual refresh annotation still does.
	if es.Status.ObservedGeneration != es.Generation && es.Spec.RefreshPolicy != secretsv1.RefreshPolicyCreatedOnce {
		return true, 0
	}
	switch creationPolicy(es) {
	case secretsv1.CreatePolicyOwner, secretsv1.CreatePolicyOrphan:
		if target == nil {
			return true, 0
		}
		if target.Annotations[secretsv1.DataHashAnnotation] != dataHash(target.Annotations[saltAnnotation], target.Data) {
			return true, 0 // changed by someone else
		}
	}
	switch es.Spec.RefreshPolicy {
	case secretsv1.RefreshPolicyOnChange, secretsv1.RefreshPolicyCreatedOnce:
		return false, 0
	}
	interval := refreshInterval(es)
	if interval <= 0 {
		return false, 0
	}
	next := es.Status.RefreshTime.Add(interval)
	now := r.now()
	if !now.Before(next) {
		return true, 0
	}
	return false, kitreconcile.Jitter(next.Sub(now))
}

func describeStore(st storeObject) string {
	if st.GetNamespace() == "" {
		return st.GetKind() + " " + st.GetName()
	}
	return st.GetKind() + " " + st.GetNamespace() + "/" + st.GetName()
}

// resolveStore returns the store the ExternalSecret names, when it exists,
// allows the ExternalSecret's namespace and is Ready.
func (r *esReconciler) resolveStore(ctx context.Context, es *secretsv1.ExternalSecret) (storeObject, error) {
	var st storeObject
	key := client.ObjectKey{Name: es.Spec.SecretStoreRef.Name}
	if es.StoreKind() == secretsv1.ClusterSecretStoreKind {
		st = &secretsv1.ClusterSecretStore{}
	} else {
		st = &secretsv1.SecretStore{}
		key.Namespace = es.Namespace
	}
	if err := r.client.Get(ctx, key, st); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, kitreconcile.Reasoned(secretsv1.ReasonStoreNotFound, fmt.Errorf("%s %s (spec.secretStoreRef) not found", es.StoreKind(), storeName(es)))
		}
		return nil, fmt.Errorf("cannot read %s %s: %w", es.StoreKind(), storeName(es), err)
	}
	if css, ok := st.(*secretsv1.ClusterSecretStore); ok {
		allowed, err := r.namespaceAllowed(ctx, css, es.Namespace)
		if err != nil {
			return nil, err
		}
		if !allowed {
			return nil, kitreconcile.Terminal(secretsv1.ReasonStoreNotAllowed,
				fmt.Errorf("ClusterSecretStore %s does not allow namespace %q (its spec.conditions); ExternalSecret %s/%s may not use it", css.Name, es.Namespace, es.Namespace, es.Name))
		}
	}
	if st.GetStatus().ObservedGeneration != st.GetGeneration() || !conditions.IsTrue(st, conditions.Ready) {
		why := "it has not been validated yet"
		if c := conditions.Get(st, conditions.Ready); c != nil && c.Status == metav1.ConditionFalse && c.Reason != conditions.ReasonCreating {
			why = c.Reason + ": " + c.Message
		}
		return nil, kitreconcile.Reasoned(secretsv1.ReasonStoreNotReady, fmt.Errorf("%s is not ready: %s", describeStore(st), why))
	}
	return st, nil
}

// namespaceAllowed applies a ClusterSecretStore's conditions: none allows
// every namespace, otherwise one must match (by name, regexp or labels).
func (r *esReconciler) namespaceAllowed(ctx context.Context, css *secretsv1.ClusterSecretStore, ns string) (bool, error) {
	conds := css.Spec.Conditions
	if len(conds) == 0 {
		return true, nil
	}
	var labels map[string]string
	for _, c := range conds {
		for _, n := range c.Namespaces {
			if n == ns {
				return true, nil
			}
		}
		for _, re := range c.NamespaceRegexes {
			if m, err := regexp.MatchString("^(?:"+re+")$", ns); err == nil && m {
				return true, nil
			}
		}
		if c.NamespaceSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(c.NamespaceSelector)
			if err != nil {
				continue // an invalid selector matches nothing
			}
			if labels == nil {
				n := &corev1.Namespace{}
				if err := r.client.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil {
					return false, fmt.Errorf("cannot read namespace %q: %w", ns, err)
				}
				labels = n.Labels
				if labels == nil {
					labels = map[string]string{}
				}
			}
			if sel.Matches(labelSet(labels)) {
				return true, nil
			}
		}
	}
	return false, nil
}

type labelSet map[string]string

func (l labelSet) Has(k string) bool              { _, ok := l[k]; return ok }
func (l labelSet) Get(k string) string            { return l[k] }
func (l labelSet) Lookup(k string) (string, bool) { v, ok := l[k]; return v, ok }

func refString(key, property string) string {
	if property != "" {
		return fmt.Sprintf("key %q property %q", key, property)
	}
	return fmt.Sprintf("key %q", key)
}

// validKey turns a store key into a Secret key (find returns paths).
var invalidKeyChars = regexp.MustCompile(`[^-._a-zA-Z0-9]`)

// fetch reads every value the ExternalSecret names. Keys the store does not
// have are listed in missing (never an error); any other failure is.
func (r *esReconciler) fetch(ctx context.Context, s *esScope, cl provider.Client) (map[string][]byte, []string, error) {
	es := s.es
	values := map[string][]byte{}
	var missing []string
	for i, df := range es.Spec.DataFrom {
		switch {
		case df.Extract != nil:
			ref := provider.Ref{Key: df.Extract.Key, Property: df.Extract.Property, Version: df.Extract.Version}
			m, err := cl.GetSecretMap(ctx, ref)
			if errors.Is(err, provider.ErrNotFound) {
				missing = append(missing, refString(ref.Key, ref.Property))
				continue
			}
			if err != nil {
				return nil, nil, kitreconcile.Reasoned(secretsv1.ReasonSecretSyncedError, fmt.Errorf("cannot read spec.dataFrom[%d].extract %s from %s: %w", i, refString(ref.Key, ref.Property), s.store, err))
			}
			m, err = shapeFrom(i, "extract", df, df.Extract.DecodingStrategy, m)
			if err != nil {
				return nil, nil, err
			}
			for k, v := range m {
				values[k] = v
			}
		case df.Find != nil:
			find := provider.Find{Tags: df.Find.Tags}
			if df.Find.Path != nil {
				find.Path = *df.Find.Path
			}
			if df.Find.Name != nil {
				find.NameRegexp = df.Find.Name.RegExp
				if _, err := regexp.Compile(find.NameRegexp); err != nil {
					return nil, nil, kitreconcile.Terminal(secretsv1.ReasonInvalidSpec, fmt.Errorf("spec.dataFrom[%d].find.name.regexp does not compile: %w", i, err))
				}
			}
			m, err := cl.GetAllSecrets(ctx, find)
			if errors.Is(err, provider.ErrNotSupported) {
				return nil, nil, kitreconcile.Terminal(secretsv1.ReasonInvalidSpec, fmt.Errorf("spec.dataFrom[%d].find: %s: %w", i, s.store, err))
			}
			if err != nil {
				return nil, nil, kitreconcile.Reasoned(secretsv1.ReasonSecretSyncedError, fmt.Errorf("cannot search %s (spec.dataFrom[%d].find): %w", s.store, i, err))
			}
			if len(df.Rewrite) == 0 {
				conv := make(map[string][]byte, len(m))
				for k, v := range m {
					conv[invalidKeyChars.ReplaceAllString(k, "_")] = v
				}
				m = conv
			}
			m, err = shapeFrom(i, "find", df, df.Find.DecodingStrategy, m)
			if err != nil {
				return nil, nil, err
			}
			for k, v := range m {
				values[k] = v
			}
		}
	}
	for i, d := range es.Spec.Data {
		ref := provider.Ref{Key: d.RemoteRef.Key, Property: d.RemoteRef.Property, Version: d.RemoteRef.Version}
		v, err := cl.GetSecret(ctx, ref)
		if errors.Is(err, provider.ErrNotFound) {
			missing = append(missing, refString(ref.Key, ref.Property))
			continue
		}
		if err != nil {
			return nil, nil, kitreconcile.Reasoned(secretsv1.ReasonSecretSyncedError, fmt.Errorf("cannot read %s (secretKey %q) from %s: %w", refString(ref.Key, ref.Property), d.SecretKey, s.store, err))
		}
		if v, err = decode(d.RemoteRef.DecodingStrategy, v); err != nil {
			return nil, nil, kitreconcile.Terminal(secretsv1.ReasonInvalidSpec, fmt.Errorf("spec.data[%d] (secretKey %q): the value of %s in %s is not %s (remoteRef.decodingStrategy): %w",
				i, d.SecretKey, refString(ref.Key, ref.Property), s.store, d.RemoteRef.DecodingStrategy, err))
		}
		values[d.SecretKey] = v
	}
	return values, missing, nil
}

// shapeFrom rewrites the keys of dataFrom[i]'s result, checks that they can
// be Secret keys and decodes the values.
func shapeFrom(i int, what string, df secretsv1.ExternalSecretDataFromRemoteRef, strategy secretsv1.ExternalSecretDecodingStrategy, m map[string][]byte) (map[string][]byte, error) {
	m, err := rewriteKeys(df.Rewrite, m)
	if err != nil {
		return nil, kitreconcile.Terminal(secretsv1.ReasonInvalidSpec, fmt.Errorf("spec.dataFrom[%d].%w", i, err))
	}
	if bad := invalidKeys(m); len(bad) > 0 {
		return nil, kitreconcile.Terminal(secretsv1.ReasonInvalidSpec, fmt.Errorf("spec.dataFrom[%d] gives key(s) that cannot be Secret keys: %s (rewrite them with spec.dataFrom[%d].rewrite)", i, strings.Join(bad, ", "), i))
	}
	if err := decodeMap(strategy, m); err != nil {
		return nil, kitreconcile.Terminal(secretsv1.ReasonInvalidSpec, fmt.Errorf("spec.dataFrom[%d].%s.decodingStrategy: %w", i, what, err))
	}
	return m, nil
}

// mine says whether this ExternalSecret may write target: it created it
// (controller reference or its owner annotation), or the Secret's owner
// handed it over with strata.dev/adopt.
func (s *esScope) mine(target *corev1.Secret) error {
	if target.Annotations[secretsv1.OwnerAnnotation] == s.es.Namespace+"/"+s.es.Name {
		if ref := metav1.GetControllerOfNoCopy(target); ref == nil || ref.UID == s.es.UID {
			return nil
		}
	}
	target.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if _, err := ownership.Decide(target, s.owner); err != nil {
		var ce *ownership.ConflictError
		if errors.As(err, &ce) {
			return fmt.Errorf("Secret %s/%s already exists and was not created by ExternalSecret %s/%s (it is owned by %s); it is not modified (its owner may hand it over with the %s annotation)",
				target.Namespace, target.Name, s.es.Namespace, s.es.Name, ce.CurrentOwner, ownership.AnnotationAdopt)
		}
		return err
	}
	return nil
}

// validateRewrites refuses rewrites that do not compile, before any request.
func validateRewrites(es *secretsv1.ExternalSecret) error {
	for i, df := range es.Spec.DataFrom {
		for j, rw := range df.Rewrite {
			switch {
			case rw.Regexp != nil:
				if _, err := regexp.Compile(rw.Regexp.Source); err != nil {
					return kitreconcile.Terminal(secretsv1.ReasonInvalidSpec, fmt.Errorf("ExternalSecret %s/%s: spec.dataFrom[%d].rewrite[%d].regexp.source does not compile: %w", es.Namespace, es.Name, i, j, err))
				}
			case rw.Transform != nil:
				if err := template.ParseKey(rw.Transform.Template); err != nil {
					return kitreconcile.Terminal(secretsv1.ReasonInvalidSpec, fmt.Errorf("ExternalSecret %s/%s: spec.dataFrom[%d].rewrite[%d].%w", es.Namespace, es.Name, i, j, err))
				}
			}
		}
	}
	return nil
}

// templateSources reads the templates target.template.templateFrom names:
// ConfigMaps and Secrets of the ExternalSecret's own namespace (there is no
// namespace field), and literals.
func (r *esReconciler) templateSources(ctx context.Context, es *secretsv1.ExternalSecret) ([]template.Source, error) {
	t := es.Spec.Target.Template
	if t == nil || len(t.TemplateFrom) == 0 {
		return nil, nil
	}
	literals := template.Literals(t)
	out := make([]template.Source, 0, len(t.TemplateFrom))
	for i, tf := range t.TemplateFrom {
		if src, ok := literals[i]; ok {
			out = append(out, src)
			continue
		}
		var ref *secretsv1.TemplateRef
		var data map[string]string
		var kind string
		switch {
		case tf.ConfigMap != nil:
			ref, kind = tf.ConfigMap, "configMap"
			cm := &corev1.ConfigMap{}
			if err := r.client.Get(ctx, client.ObjectKey{Namespace: es.Namespace, Name: ref.Name}, cm); err != nil {
				return nil, templateRefError(es, i, kind, "ConfigMap", ref.Name, err)
			}
			data = cm.Data
		case tf.Secret != nil:
			ref, kind = tf.Secret, "secret"
			sec := &corev1.Secret{}
			if err := r.client.Get(ctx, client.ObjectKey{Namespace: es.Namespace, Name: ref.Name}, sec); err != nil {
				return nil, templateRefError(es, i, kind, "Secret", ref.Name, err)
			}
			data = map[string]string{}
			for k, v := range sec.Data {
				data[k] = string(v)
			}
		default:
			continue
		}
		src := template.Source{Where: fmt.Sprintf("template.templateFrom[%d].%s %s", i, kind, ref.Name), Target: tf.Target}
		for _, it := range ref.Items {
			text, ok := data[it.Key]
			if !ok {
				return nil, kitreconcile.Terminal(secretsv1.ReasonTemplateInvalid, fmt.Errorf("ExternalSecret %s/%s: spec.target.template.templateFrom[%d].%s: %s/%s has no key %q",
					es.Namespace, es.Name, i, kind, es.Namespace, ref.Name, it.Key))
			}
			scope := it.TemplateAs
			if scope == "" {
				scope = secretsv1.TemplateScopeValues
			}
			src.Items = append(src.Items, template.Item{Key: it.Key, Text: text, Scope: scope})
		}
		out = append(out, src)
	}
	return out, nil
}

func templateRefError(es *secretsv1.ExternalSecret, i int, field, kind, name string, err error) error {
	if apierrors.IsNotFound(err) {
		return kitreconcile.Terminal(secretsv1.ReasonTemplateInvalid, fmt.Errorf("ExternalSecret %s/%s: spec.target.template.templateFrom[%d].%s: %s %s/%s not found",
			es.Namespace, es.Name, i, field, kind, es.Namespace, name))
	}
	return fmt.Errorf("cannot read %s %s/%s: %w", kind, es.Namespace, name, err)
}

// write applies the target Secret as creationPolicy says.
func (r *esReconciler) write(ctx context.Context, s *esScope, target *corev1.Secret, out template.Output) error {
	es := s.es
	data := out.Data
	name := es.TargetName()
	switch creationPolicy(es) {
	case secretsv1.CreatePolicyNone:
		return nil
	case secretsv1.CreatePolicyMerge:
		if target == nil {
			return kitreconcile.Reasoned(secretsv1.ReasonSecretSyncedError, fmt.Errorf("Secret %s/%s does not exist; creationPolicy Merge only writes into an existing Secret", es.Namespace, name))
		}
		// Only into the Secret found: not one made again in between.
		ac := corev1ac.Secret(name, es.Namespace).WithData(data).WithUID(target.UID)
		if err := ssa.ApplyConfig(ctx, r.client, ac, ssa.Options{FieldManager: s.owner.FieldManager()}); err != nil {
			if apierrors.IsConflict(err) {
				return kitreconcile.Terminal(secretsv1.ReasonSecretConflict, fmt.Errorf("cannot merge into Secret %s/%s: another writer manages the same keys: %w", es.Namespace, name, err))
			}
			return kitreconcile.Reasoned(secretsv1.ReasonSecretSyncedError, fmt.Errorf("cannot write Secret %s/%s: %w", es.Namespace, name, err))
		}
		if old := target.Data; !sameData(old, data, sortedKeys(data)) {
			r.recorder.Eventf(es, target, corev1.EventTypeNormal, secretsv1.EventUpdated, "Write", "%s", eventmsg.List(fmt.Sprintf("merged into Secret %s/%s keys ", es.Namespace, name), sortedKeys(data)))
		}
		return nil
	}
	salt := ""
	if target != nil {
		if err := s.mine(target); err != nil {
			return kitreconcile.Terminal(secretsv1.ReasonSecretConflict, err)
		}
		salt = target.Annotations[saltAnnotation]
	}
	if salt == "" {
		salt = newSalt()
	}
	hash := dataHash(salt, data)
	if target != nil && target.Immutable != nil && *target.Immutable && target.Annotations[secretsv1.DataHashAnnotation] != hash {
		// An immutable Secret cannot change: replace it (it is ours).
		uid := target.UID
		if err := r.client.Delete(ctx, target, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return kitreconcile.Reasoned(secretsv1.ReasonSecretSyncedError, fmt.Errorf("cannot replace immutable Secret %s/%s: %w", es.Namespace, name, err))
		}
	}
	ac := corev1ac.Secret(name, es.Namespace).WithData(data)
	labels, annotations := map[string]string{}, map[string]string{}
	for k, v := range out.Labels {
		labels[k] = v
	}
	for k, v := range out.Annotations {
		annotations[k] = v
	}
	if t := es.Spec.Target.Template; t != nil {
		for k, v := range t.Metadata.Labels {
			labels[k] = v
		}
		for k, v := range t.Metadata.Annotations {
			annotations[k] = v
		}
		if t.Type != "" {
			ac.WithType(t.Type)
		}
	}
	// Set last: a template cannot forge who owns the Secret or its hash.
	labels[secretsv1.ManagedByLabel] = secretsv1.ManagedByValue
	annotations[secretsv1.OwnerAnnotation] = es.Namespace + "/" + es.Name
	annotations[secretsv1.DataHashAnnotation] = hash
	annotations[saltAnnotation] = salt
	ac.WithLabels(labels).WithAnnotations(annotations)
	if creationPolicy(es) == secretsv1.CreatePolicyOwner {
		ac.WithOwnerReferences(metav1ac.OwnerReference().WithAPIVersion(s.owner.APIVersion).WithKind(s.owner.Kind).
			WithName(es.Name).WithUID(es.UID).WithController(true).WithBlockOwnerDeletion(true))
	}
	if es.Spec.Target.Immutable {
		ac.WithImmutable(true)
	}
	if upToDate(target, es, hash, labels, annotations) {
		// A periodic refresh that found the same values writes nothing.
		return nil
	}
	if target != nil && !(target.Immutable != nil && *target.Immutable && target.Annotations[secretsv1.DataHashAnnotation] != hash) {
		// Only the Secret found to be ours: not one made again in between.
		ac.WithUID(target.UID)
	}
	if err := ssa.ApplyConfig(ctx, r.client, ac, ssa.Options{FieldManager: s.owner.FieldManager(), Policy: ssa.Force}); err != nil {
		return kitreconcile.Reasoned(secretsv1.ReasonSecretSyncedError, fmt.Errorf("cannot write Secret %s/%s: %w", es.Namespace, name, err))
	}
	switch {
	case target == nil:
		r.recorder.Eventf(es, nil, corev1.EventTypeNormal, secretsv1.EventCreated, "Write", "%s", eventmsg.List(fmt.Sprintf("created Secret %s/%s with keys ", es.Namespace, name), sortedKeys(data)))
	case target.Annotations[secretsv1.DataHashAnnotation] != hash:
		r.recorder.Eventf(es, nil, corev1.EventTypeNormal, secretsv1.EventUpdated, "Write", "%s", eventmsg.List(fmt.Sprintf("updated Secret %s/%s, keys ", es.Namespace, name), sortedKeys(data)))
	}
	return nil
}

// removeAll handles every remote key being gone under deletionPolicy Delete
// or Merge: Delete removes the Secret this ExternalSecret created (only the
// keys it wrote when the Secret is someone else's, creationPolicy Merge);
// Merge removes the keys it wrote and keeps the Secret.
func (r *esReconciler) removeAll(ctx context.Context, s *esScope, target *corev1.Secret, missing []string) (ctrl.Result, error) {
	es := s.es
	name := es.TargetName()
	gone := fmt.Sprintf("%s has none of the keys any more (%s)", s.store, strings.Join(missing, ", "))
	var msg string
	switch {
	case target == nil || creationPolicy(es) == secretsv1.CreatePolicyNone:
		msg = gone
	case deletionPolicy(es) == secretsv1.DeletionPolicyDelete && creationPolicy(es) != secretsv1.CreatePolicyMerge:
		if err := s.mine(target); err != nil {
			return r.fail(s, kitreconcile.Terminal(secretsv1.ReasonSecretConflict, err))
		}
		uid := target.UID
		if err := r.client.Delete(ctx, target, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return r.fail(s, kitreconcile.Reasoned(secretsv1.ReasonSecretSyncedError, fmt.Errorf("cannot delete Secret %s/%s: %w", es.Namespace, name, err)))
		}
		r.recorder.Eventf(es, nil, corev1.EventTypeNormal, secretsv1.EventDeleted, "Delete", "deleted Secret %s/%s: %s (deletionPolicy Delete)", es.Namespace, name, eventmsg.Truncate(gone))
		msg = fmt.Sprintf("%s; Secret %s/%s deleted (deletionPolicy Delete)", gone, es.Namespace, name)
	default:
		if creationPolicy(es) != secretsv1.CreatePolicyMerge {
			if err := s.mine(target); err != nil {
				return r.fail(s, kitreconcile.Terminal(secretsv1.ReasonSecretConflict, err))
			}
		}
		// Applying no data drops exactly the keys this field manager owns.
		ac := corev1ac.Secret(name, es.Namespace)
		if err := ssa.ApplyConfig(ctx, r.client, ac, ssa.Options{FieldManager: s.owner.FieldManager()}); err != nil {
			return r.fail(s, kitreconcile.Reasoned(secretsv1.ReasonSecretSyncedError, fmt.Errorf("cannot remove keys from Secret %s/%s: %w", es.Namespace, name, err)))
		}
		msg = fmt.Sprintf("%s; its keys were removed from Secret %s/%s (deletionPolicy %s)", gone, es.Namespace, name, deletionPolicy(es))
	}
	es.Status.RefreshTime = metav1.NewTime(r.now())
	es.Status.SyncedKeys = nil
	es.Status.ObservedGeneration = es.Generation
	prev := conditions.Get(es, conditions.Ready)
	if prev == nil || prev.Reason != secretsv1.ReasonSecretDeleted {
		r.recorder.Eventf(es, nil, corev1.EventTypeWarning, secretsv1.ReasonSecretDeleted, "Sync", "%s", eventmsg.Truncate(msg))
	}
	conditions.MarkFailed(es, secretsv1.ReasonSecretDeleted, eventmsg.Truncate(msg))
	return ctrl.Result{RequeueAfter: kitreconcile.Jitter(retryInterval(es))}, nil
}

func newSalt() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// dataHash is a salted hash of a Secret's data: it changes with any value,
// and says nothing about a value to whoever lacks the salt.
func dataHash(salt string, data map[string][]byte) string {
	h := sha256.New()
	h.Write([]byte(salt))
	for _, k := range sortedKeys(data) {
		fmt.Fprintf(h, "\x00%s\x00%d\x00", k, len(data[k]))
		h.Write(data[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func sameData(a, b map[string][]byte, keys []string) bool {
	for _, k := range keys {
		if string(a[k]) != string(b[k]) {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

// upToDate says whether the live target already holds what an apply would
// write: the spec is the one last synced (so a removed label is applied),
// and the data (by hash), labels, annotations, type, owner and
// immutability match.
func upToDate(target *corev1.Secret, es *secretsv1.ExternalSecret, hash string, labels, annotations map[string]string) bool {
	if target == nil || es.Status.SyncedResourceVersion != syncedVersion(es) || target.Annotations[secretsv1.DataHashAnnotation] != hash ||
		target.Annotations[secretsv1.DataHashAnnotation] != dataHash(target.Annotations[saltAnnotation], target.Data) {
		return false
	}
	for k, v := range labels {
		if target.Labels[k] != v {
			return false
		}
	}
	for k, v := range annotations {
		if target.Annotations[k] != v {
			return false
		}
	}
	if t := es.Spec.Target.Template; t != nil && t.Type != "" && t.Type != target.Type {
		return false
	}
	ref := metav1.GetControllerOfNoCopy(target)
	owned := ref != nil && ref.UID == es.UID
	if owned != (creationPolicy(es) == secretsv1.CreatePolicyOwner) {
		return false
	}
	immutable := target.Immutable != nil && *target.Immutable
	return immutable == es.Spec.Target.Immutable
}
