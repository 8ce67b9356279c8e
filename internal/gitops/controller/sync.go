package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/apply"
	"github.com/strata-dev/strata/internal/gitops/build"
	"github.com/strata-dev/strata/internal/gitops/inputs"
	"github.com/strata-dev/strata/internal/gitops/source"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	"github.com/strata-dev/strata/internal/kit/health"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/kit/patch"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
)

// Labels Strata puts on every object a Sync applies; prune deletes only
// objects that still carry them.
const (
	LabelSyncName      = ownership.LabelSyncName
	LabelSyncNamespace = ownership.LabelSyncNamespace
)

const (
	indexSource    = ".spec.sourceRef"
	indexDependsOn = ".spec.dependsOn"
	historyLimit   = 10
	// dependencyPoll is how often a Sync waiting for a non-Sync dependency
	// looks again (Sync dependencies are watched).
	dependencyPoll = 5 * time.Second
)

// SyncReconciler builds, applies, prunes and health-checks Syncs.
type SyncReconciler struct {
	// refetch asks the GitRepository controller to fetch a repository
	// whose artifact the store lost.
	refetch  chan<- event.GenericEvent
	client   client.Client
	reader   client.Reader
	cfg      *rest.Config
	mapper   meta.RESTMapper
	store    *source.Store
	recorder events.EventRecorder
	log      logr.Logger
	opts     Options
	cel      *readyWhen

	mu      sync.Mutex
	clients map[string]client.Client
	known   map[types.NamespacedName]map[string]string
}

func setupSync(mgr ctrl.Manager, c client.Client, cfg *rest.Config, store *source.Store, refetch chan<- event.GenericEvent, o Options) error {
	r := &SyncReconciler{
		refetch:  refetch,
		client:   c,
		reader:   mgr.GetAPIReader(),
		cfg:      cfg,
		mapper:   mgr.GetRESTMapper(),
		store:    store,
		recorder: mgr.GetEventRecorder("strata-sync"),
		log:      mgr.GetLogger().WithName("sync"),
		opts:     o,
		cel:      newReadyWhen(),
		clients:  map[string]client.Client{},
		known:    map[types.NamespacedName]map[string]string{},
	}
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &gitopsv1.Sync{}, indexSource, func(o client.Object) []string {
		s := o.(*gitopsv1.Sync)
		return []string{sourceKey(s)}
	}); err != nil {
		return fmt.Errorf("cannot index Syncs by source: %w", err)
	}
	if err := idx.IndexField(ctx, &gitopsv1.Sync{}, indexDependsOn, func(o client.Object) []string {
		s := o.(*gitopsv1.Sync)
		var out []string
		for _, d := range s.Spec.DependsOn {
			if isSyncDependency(d) {
				out = append(out, depNamespace(s, d)+"/"+d.Name)
			}
		}
		return out
	}); err != nil {
		return fmt.Errorf("cannot index Syncs by dependency: %w", err)
	}
	if err := idx.IndexField(ctx, &gitopsv1.Sync{}, indexInventory, inventoryKeys); err != nil {
		return fmt.Errorf("cannot index Syncs by inventory: %w", err)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&gitopsv1.Sync{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&gitopsv1.GitRepository{}, handler.EnqueueRequestsFromMapFunc(r.syncsForSource), builder.WithPredicates(revisionChanged{})).
		Watches(&gitopsv1.Sync{}, handler.EnqueueRequestsFromMapFunc(r.dependents), builder.WithPredicates(readyChanged{})).
		Owns(&deliveryv1.AnalysisRun{}, builder.WithPredicates(runPhaseChanged{}))
	// A Rollout that aborts (or becomes Ready) wakes the Syncs that applied
	// its Deployment, so an abort is reported at once, not at the next
	// interval. Without the Rollout kind (an older install) Syncs poll.
	if _, err := mgr.GetRESTMapper().RESTMapping(rolloutGVK.GroupKind(), rolloutGVK.Version); err == nil {
		ro := &unstructured.Unstructured{}
		ro.SetGroupVersionKind(rolloutGVK)
		b = b.Watches(ro, handler.EnqueueRequestsFromMapFunc(r.rolloutSyncs), builder.WithPredicates(rolloutVerdictChanged{}))
	}
	return b.WithOptions(controller.Options{RateLimiter: kitreconcile.RateLimiter(), MaxConcurrentReconciles: o.Workers}).
		Named("sync").
		Complete(r)
}

func sourceKey(s *gitopsv1.Sync) string { return inputs.SourceRef(s).String() }

func isSyncDependency(d gitopsv1.Dependency) bool {
	return d.Kind == "" || (d.Kind == "Sync" && (d.APIVersion == "" || strings.HasPrefix(d.APIVersion, gitopsv1.GroupVersion.Group+"/")))
}

func depNamespace(s *gitopsv1.Sync, d gitopsv1.Dependency) string {
	if d.Namespace != "" {
		return d.Namespace
	}
	return s.Namespace
}

func (r *SyncReconciler) syncsForSource(ctx context.Context, o client.Object) []reconcile.Request {
	return r.listBy(ctx, indexSource, o.GetNamespace()+"/"+o.GetName())
}

func (r *SyncReconciler) dependents(ctx context.Context, o client.Object) []reconcile.Request {
	return r.listBy(ctx, indexDependsOn, o.GetNamespace()+"/"+o.GetName())
}

func (r *SyncReconciler) listBy(ctx context.Context, index, key string) []reconcile.Request {
	list := &gitopsv1.SyncList{}
	if err := r.client.List(ctx, list, client.MatchingFields{index: key}); err != nil {
		r.log.Error(err, "cannot list Syncs", "index", index, "key", key)
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, s := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
	}
	return out
}

// revisionChanged passes GitRepository updates that change the artifact.
type revisionChanged struct{ predicate.Funcs }

func (revisionChanged) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*gitopsv1.GitRepository)
	n, ok2 := e.ObjectNew.(*gitopsv1.GitRepository)
	if !ok1 || !ok2 || n.Status.Artifact == nil {
		return false
	}
	return o.Status.Artifact == nil || o.Status.Artifact.Digest != n.Status.Artifact.Digest || o.Status.Artifact.Revision != n.Status.Artifact.Revision
}

// readyChanged passes Sync updates that change its Ready condition.
type readyChanged struct{ predicate.Funcs }

func (readyChanged) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*gitopsv1.Sync)
	n, ok2 := e.ObjectNew.(*gitopsv1.Sync)
	if !ok1 || !ok2 {
		return false
	}
	a, b := conditions.Get(o, conditions.Ready), conditions.Get(n, conditions.Ready)
	return (a == nil) != (b == nil) || (a != nil && (a.Status != b.Status || a.ObservedGeneration != b.ObservedGeneration)) ||
		o.Status.LastAppliedRevision != n.Status.LastAppliedRevision
}

// syncScope is what one reconcile of a Sync works with.
type syncScope struct {
	sync     *gitopsv1.Sync
	log      logr.Logger
	began    time.Time
	repo     *gitopsv1.GitRepository
	revision string // the source's current revision
	applier  *apply.Applier
	// reader reads on the Sync's behalf (dependencies, substitutions,
	// health): as its service account when it has one.
	reader client.Reader
	// impersonating is set when reader and applier act as a service account.
	impersonating bool
	// triggered is set when the manual trigger annotation changed.
	triggered bool
	// status writes the Sync's status from the object as last read or
	// written (see recordInventory and writeStatus).
	status *patch.Helper
	// stale is set when a write found the Sync changed since it was read:
	// nothing more is written and the reconcile starts again from a fresh
	// read.
	stale error
	// rollouts are the Deployments of the applied revision that Rollouts
	// roll out (nil when this reconcile applied nothing).
	rollouts *rolloutTargets
	// announced is set when this reconcile recorded an Applied event.
	announced bool
}

// Reconcile runs one Sync through its phases.
func (r *SyncReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	s := &gitopsv1.Sync{}
	if err := r.client.Get(ctx, req.NamespacedName, s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	sc := &syncScope{sync: s, log: r.log.WithValues("sync", req.NamespacedName), began: time.Now()}
	if !s.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, sc)
	}
	if !controllerutil.ContainsFinalizer(s, Finalizer) {
		patch := client.MergeFrom(s.DeepCopy())
		controllerutil.AddFinalizer(s, Finalizer)
		if err := r.client.Patch(ctx, s, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("cannot add finalizer: %w", err)
		}
	}
	if s.Spec.Suspend {
		sc.log.V(1).Info("suspended")
		return ctrl.Result{}, nil
	}
	sc.status = patch.NewHelper(r.client, s)
	conditions.EnsureInitialized(s)
	defer func() {
		if sc.stale != nil {
			result, retErr = ctrl.Result{}, sc.stale
			return
		}
		if err := r.writeStatus(ctx, sc); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, err)
		}
	}()
	if v, ok := s.Annotations[gitopsv1.ReconcileRequestAnnotation]; ok {
		sc.triggered = v != s.Status.LastHandledReconcileAt
		s.Status.LastHandledReconcileAt = v
	}

	phases := []func(context.Context, *syncScope) (ctrl.Result, bool){
		r.reconcileReferences,
		r.reconcileClient,
		r.reconcileDependencies,
		r.reconcileSource,
		r.cancelVerification,
		r.reconcileAlertRollback,
		r.reconcileApply,
		r.reconcileVerify,
	}
	for _, phase := range phases {
		if res, done := phase(ctx, sc); done {
			return res, nil
		}
	}
	return ctrl.Result{RequeueAfter: jitter(s.Spec.Interval.Duration)}, nil
}

func (r *SyncReconciler) retry(s *gitopsv1.Sync) ctrl.Result {
	if s.Spec.RetryInterval != nil && s.Spec.RetryInterval.Duration > 0 {
		return ctrl.Result{RequeueAfter: s.Spec.RetryInterval.Duration}
	}
	return ctrl.Result{RequeueAfter: retryAfter(s.Spec.Interval.Duration)}
}

// reconcileDependencies stops the reconcile until every dependsOn entry is
// ready. A readyWhen that does not compile (or hits the cost limit) stalls
// the Sync; one that cannot be evaluated (a field that is not there) is
// reported, naming the expression, and retried.
func (r *SyncReconciler) reconcileDependencies(ctx context.Context, sc *syncScope) (ctrl.Result, bool) {
	s := sc.sync
	for i, d := range s.Spec.DependsOn {
		if d.ReadyWhen == "" {
			continue
		}
		if _, err := r.cel.compile(d.ReadyWhen); err != nil {
			r.refused(sc, gitopsv1.ReasonReadyWhenInvalid, fmt.Errorf("dependsOn[%d]: %w", i, err), true)
			return ctrl.Result{}, true
		}
	}
	for _, d := range s.Spec.DependsOn {
		ok, msg, err := r.dependencyReady(ctx, sc, d)
		if err != nil {
			var rw *readyWhenError
			if errors.As(err, &rw) {
				// A typo or a runaway expression: only a spec change fixes a
				// stalled one; one that cannot be evaluated yet is retried.
				r.refused(sc, gitopsv1.ReasonReadyWhenInvalid, err, rw.Stalled)
				if rw.Stalled {
					return ctrl.Result{}, true
				}
				return ctrl.Result{RequeueAfter: dependencyPoll}, true
			}
			r.refused(sc, gitopsv1.ReasonDependencyFailed, err, false)
			return r.retry(s), true
		}
		if !ok {
			conditions.MarkProgressing(s, gitopsv1.ReasonDependencyNotReady, msg)
			if isSyncDependency(d) {
				return r.retry(s), true
			}
			return ctrl.Result{RequeueAfter: dependencyPoll}, true
		}
	}
	return ctrl.Result{}, false
}

// dependencyReady reads a dependsOn target as the Sync (its service
// account) and says whether it is ready. A read the account may not make, or
// a readyWhen that cannot be evaluated, is an error naming the object, never
// "not ready".
func (r *SyncReconciler) dependencyReady(ctx context.Context, sc *syncScope, d gitopsv1.Dependency) (bool, string, error) {
	s := sc.sync
	ns := depNamespace(s, d)
	var u *unstructured.Unstructured
	what := ""
	if isSyncDependency(d) {
		what = "Sync " + ns + "/" + d.Name
		dep := &gitopsv1.Sync{}
		reader := client.Reader(r.client) // the manager's cache of Syncs
		if sc.impersonating {
			reader = sc.reader
		}
		if err := reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: d.Name}, dep); err != nil {
			if apierrors.IsNotFound(err) {
				return false, "dependency " + what + " not found", nil
			}
			return false, "", fmt.Errorf("cannot read dependency %s: %w", what, err)
		}
		if d.ReadyWhen == "" {
			if !conditions.IsTrue(dep, conditions.Ready) || dep.Status.ObservedGeneration != dep.Generation {
				return false, "dependency " + what + " is not ready", nil
			}
			return true, "", nil
		}
		m, err := runtimeToUnstructured(dep)
		if err != nil {
			return false, "", err
		}
		u = m
	} else {
		what = d.Kind + " " + ns + "/" + d.Name
		u = &unstructured.Unstructured{}
		u.SetAPIVersion(d.APIVersion)
		u.SetKind(d.Kind)
		if err := sc.reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: d.Name}, u); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				return false, "dependency " + what + " not found", nil
			}
			return false, "", fmt.Errorf("cannot read dependency %s: %w", what, err)
		}
	}
	if d.ReadyWhen != "" {
		ok, err := r.cel.eval(d.ReadyWhen, u.Object)
		if err != nil {
			return false, "", fmt.Errorf("dependency %s: %w", what, err)
		}
		if !ok {
			return false, fmt.Sprintf("dependency %s: readyWhen %q is false", what, d.ReadyWhen), nil
		}
		return true, "", nil
	}
	if h := health.Compute(u); h.Status != health.Current {
		return false, fmt.Sprintf("dependency %s is not ready: %s", what, h.Message), nil
	}
	return true, "", nil
}

// reconcileReferences refuses, under --no-cross-namespace-refs, a Sync
// whose sourceRef or dependsOn names another namespace. Only a spec change
// fixes it, so the Sync is stalled.
func (r *SyncReconciler) reconcileReferences(_ context.Context, sc *syncScope) (ctrl.Result, bool) {
	if !r.opts.NoCrossNamespaceRefs {
		return ctrl.Result{}, false
	}
	s := sc.sync
	var refs []string
	if ns := s.Spec.SourceRef.Namespace; ns != "" && ns != s.Namespace {
		refs = append(refs, "sourceRef GitRepository "+ns+"/"+s.Spec.SourceRef.Name)
	}
	for _, d := range s.Spec.DependsOn {
		if d.Namespace != "" && d.Namespace != s.Namespace {
			kind := d.Kind
			if kind == "" {
				kind = "Sync"
			}
			refs = append(refs, "dependsOn "+kind+" "+d.Namespace+"/"+d.Name)
		}
	}
	if len(refs) == 0 {
		return ctrl.Result{}, false
	}
	err := fmt.Errorf("cross-namespace references are not allowed on this cluster (--no-cross-namespace-refs): %s", strings.Join(refs, ", "))
	r.refused(sc, gitopsv1.ReasonCrossNamespaceRefNotAllowed, err, true)
	return ctrl.Result{}, true
}

// refused reports a Sync that cannot get to building a revision. stalled
// marks what only a spec change can fix.
func (r *SyncReconciler) refused(sc *syncScope, reason string, err error, stalled bool) {
	s := sc.sync
	msg := err.Error()
	if prev := conditions.Get(s, conditions.Ready); prev == nil || prev.Message != msg {
		r.recorder.Eventf(s, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", eventmsg.Truncate(msg))
		sc.log.Info("reconcile refused", "reason", reason, "error", msg)
	}
	if stalled {
		conditions.MarkStalled(s, reason, msg)
		s.Status.ObservedGeneration = s.Generation
		return
	}
	conditions.MarkFailed(s, reason, msg)
}

// reconcileSource finds the GitRepository's artifact.
func (r *SyncReconciler) reconcileSource(ctx context.Context, sc *syncScope) (ctrl.Result, bool) {
	s := sc.sync
	repo := &gitopsv1.GitRepository{}
	key := sourceKey(s)
	ns, name, _ := strings.Cut(key, "/")
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, repo); err != nil {
		conditions.MarkFailed(s, gitopsv1.ReasonArtifactFailed, fmt.Sprintf("GitRepository %s: %v", key, client.IgnoreNotFound(err)))
		if apierrors.IsNotFound(err) {
			conditions.MarkFailed(s, gitopsv1.ReasonArtifactFailed, "GitRepository "+key+" not found")
		}
		return r.retry(s), true
	}
	if repo.Status.Artifact == nil {
		conditions.MarkFailed(s, gitopsv1.ReasonArtifactFailed, "GitRepository "+key+" has no artifact yet")
		return r.retry(s), true
	}
	if !r.store.Has(repo.Status.Artifact.Digest) {
		// The status names an artifact this manager's store lost (a
		// new state folder, a clean-up): the GitRepository is fetched
		// again now, not at its next interval.
		conditions.MarkFailed(s, gitopsv1.ReasonArtifactFailed, fmt.Sprintf("the artifact of GitRepository %s (revision %s) is not in this manager's store; fetching it again", key, repo.Status.Artifact.Revision))
		select {
		case r.refetch <- event.GenericEvent{Object: repo}:
		default: // many are asking already; the retry asks again
		}
		return ctrl.Result{RequeueAfter: 2 * time.Second}, true
	}
	sc.repo = repo
	sc.revision = repo.Status.Artifact.Revision
	return ctrl.Result{}, false
}

// reconcileClient picks the client to apply with: the manager's, or one
// that impersonates spec.serviceAccountName.
func (r *SyncReconciler) reconcileClient(_ context.Context, sc *syncScope) (ctrl.Result, bool) {
	s := sc.sync
	c, err := r.clientFor(s)
	if err != nil {
		conditions.MarkFailed(s, gitopsv1.ReasonApplyFailed, err.Error())
		return r.retry(s), true
	}
	key := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	r.mu.Lock()
	known := r.known[key]
	if known == nil {
		known = map[string]string{}
		r.known[key] = known
	}
	r.mu.Unlock()
	sc.applier = &apply.Applier{
		Client:  c,
		Owner:   inputs.Owner(s),
		Workers: 16,
		Known:   known,
	}
	// Without a service account, reads go to the API server, not the
	// manager's cache (which would otherwise start caching every Secret).
	sc.reader, sc.impersonating = r.reader, c != r.client
	if sc.impersonating {
		sc.reader = c
	}
	return ctrl.Result{}, false
}

func (r *SyncReconciler) clientFor(s *gitopsv1.Sync) (client.Client, error) {
	user := inputs.ServiceAccountUser(s, r.opts.DefaultServiceAccount)
	if user == "" {
		return r.client, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[user]; ok {
		return c, nil
	}
	c, err := client.New(inputs.Impersonating(r.cfg, user), client.Options{Scheme: r.client.Scheme(), Mapper: r.mapper})
	if err != nil {
		return nil, fmt.Errorf("cannot build a client for %s: %w", user, err)
	}
	r.clients[user] = c
	return c, nil
}

// target is the revision this reconcile applies: the source's, or the last
// healthy one while a rolled-back revision is still the source's.
func (r *SyncReconciler) target(sc *syncScope) (revision, digest string, holding bool) {
	s := sc.sync
	a := sc.repo.Status.Artifact
	if good := rollbackTarget(s); s.Status.RolledBackRevision != "" && s.Status.RolledBackRevision == a.Revision && good != "" {
		if d, ok := r.store.Lookup(repoKey(sc.repo.Namespace, sc.repo.Name), good); ok {
			return good, d, true
		}
	}
	if s.Status.RolledBackRevision != a.Revision {
		s.Status.RolledBackRevision = ""
	}
	return a.Revision, a.Digest, false
}

// reconcileApply builds, applies, prunes and checks health.
func (r *SyncReconciler) reconcileApply(ctx context.Context, sc *syncScope) (ctrl.Result, bool) {
	s := sc.sync
	revision, digest, holding := r.target(sc)
	if !holding {
		if s.Status.LastAttemptedRevision != revision {
			s.Status.HealthCheckStartedAt = nil
		}
		s.Status.LastAttemptedRevision = revision
	}
	if s.Status.LastAppliedRevision != revision {
		conditions.MarkProgressing(s, gitopsv1.ReasonProgressing, "applying revision "+revision)
	}
	// While a health check of the applied revision is running, a poll only
	// looks at health: nothing changed that needs another apply.
	if h := conditions.Get(s, gitopsv1.Healthy); !holding && !sc.triggered && h != nil && h.Status == metav1.ConditionUnknown &&
		h.ObservedGeneration == s.Generation && s.Status.LastAppliedRevision == revision && s.Status.HealthCheckStartedAt != nil {
		return r.reconcileHealth(ctx, sc, revision, inputs.Inventory(s.Status.Inventory))
	}
	entries, err := r.applyRevision(ctx, sc, revision, digest)
	if err != nil {
		return r.retry(s), true
	}
	if holding {
		reason, msg := holdReason(s, revision)
		conditions.Set(s, conditions.Ready, metav1.ConditionFalse, reason, msg)
		conditions.Remove(s, conditions.Reconciling)
		conditions.Set(s, conditions.Stalled, metav1.ConditionTrue, reason, msg)
		return ctrl.Result{RequeueAfter: jitter(s.Spec.Interval.Duration)}, true
	}
	return r.reconcileHealth(ctx, sc, revision, entries)
}

// applyRevision builds revision and applies it, pruning what left the
// inventory. A failure leaves Ready=False with a reason naming the file or
// object and prunes nothing.
func (r *SyncReconciler) applyRevision(ctx context.Context, sc *syncScope, revision, digest string) ([]apply.Entry, error) {
	s := sc.sync
	dir, err := r.store.Path(digest)
	if err != nil {
		conditions.MarkFailed(s, gitopsv1.ReasonArtifactFailed, err.Error())
		return nil, err
	}
	opts, err := r.buildOptions(ctx, sc)
	if err != nil {
		r.failed(sc, revision, gitopsv1.ReasonBuildFailed, err, true)
		return nil, err
	}
	objs, err := build.Build(dir, s.Spec.Path, opts)
	if err != nil {
		r.failed(sc, revision, gitopsv1.ReasonBuildFailed, fmt.Errorf("build of %s failed: %w", revision, err), true)
		return nil, err
	}
	if err := apply.Normalize(r.mapper, objs, s.Namespace, s.Spec.TargetNamespace); err != nil {
		r.failed(sc, revision, gitopsv1.ReasonApplyFailed, err, false)
		return nil, err
	}
	sc.rollouts = newRolloutTargets(objs)
	sc.applier.Prepare = sc.rollouts.prepare(revision)
	timeout := 5 * time.Minute
	if s.Spec.Timeout != nil && s.Spec.Timeout.Duration > 0 {
		timeout = s.Spec.Timeout.Duration
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	old := inputs.Inventory(s.Status.Inventory)
	current := make([]apply.Entry, 0, len(objs))
	for _, o := range objs {
		current = append(current, apply.EntryOf(o))
	}
	if len(apply.Diff(current, old)) > 0 {
		if err := r.recordInventory(ctx, sc, revision, union(old, current)); err != nil {
			return nil, err
		}
	}
	changes, err := sc.applier.Apply(actx, objs)
	if err != nil {
		// The inventory keeps every object of the revision (one whose
		// apply failed may still have been written) so a later revision
		// can prune them; nothing is pruned now. Prune deletes only what
		// the Sync owns, so an object refused as a conflict stays safe.
		s.Status.Inventory = toInventory(union(old, current))
		reason := gitopsv1.ReasonApplyFailed
		if ownership.IsConflict(err) {
			reason = gitopsv1.ReasonResourceConflict
		}
		r.failed(sc, revision, reason, fmt.Errorf("apply of %s failed: %w", revision, err), false)
		return nil, err
	}
	r.recordChanges(sc, revision, changes, old)

	if s.Spec.Prune != gitopsv1.PruneDisabled {
		stale := apply.Diff(old, current)
		if len(current) == 0 && len(stale) > 0 && s.Spec.Prune != gitopsv1.PruneAllowEmpty {
			err := fmt.Errorf("revision %s builds to no objects; refusing to prune the %d applied objects (set prune: allowEmpty to allow it)", revision, len(stale))
			r.failed(sc, revision, gitopsv1.ReasonPruneFailed, err, true)
			return nil, err
		}
		if len(stale) > 0 {
			pruned, err := sc.applier.Prune(actx, stale)
			var deleted []string
			for _, p := range pruned {
				if p.Deleted {
					deleted = append(deleted, p.Entry.String())
				} else {
					sc.log.V(1).Info("kept object that left the inventory", "object", p.Entry.String(), "reason", p.Reason)
				}
			}
			if len(deleted) > 0 {
				r.recorder.Eventf(s, nil, corev1.EventTypeNormal, gitopsv1.EventPruned, "Prune", "%s", eventmsg.List("pruned ", deleted))
			}
			if err != nil {
				s.Status.Inventory = toInventory(union(current, stale))
				r.failed(sc, revision, gitopsv1.ReasonPruneFailed, fmt.Errorf("prune failed: %w", err), false)
				return nil, err
			}
		}
	} else {
		current = union(current, apply.Diff(old, current))
	}
	s.Status.Inventory = toInventory(current)
	s.Status.LastAppliedRevision = revision
	conditions.Remove(s, conditions.Stalled)
	return current, nil
}

// recordInventory writes entries (the inventory as read and every object
// about to be applied) as the Sync's inventory before anything is applied,
// so a crash at any later point leaves every object this Sync may have
// written findable, and prunable, by the next reconcile. The write carries
// the resourceVersion of the Sync as read: a reconcile that read a stale
// inventory stops here, before it applies or prunes anything, and starts
// again from a fresh read.
func (r *SyncReconciler) recordInventory(ctx context.Context, sc *syncScope, revision string, entries []apply.Entry) error {
	s := sc.sync
	prev := s.Status.Inventory
	s.Status.Inventory = toInventory(entries)
	if err := sc.status.Status(ctx, s, patch.WithOptimisticLock()); err != nil {
		s.Status.Inventory = prev
		if kitreconcile.IsStale(err) {
			sc.log.V(1).Info("Sync changed since it was read; starting again from a fresh read")
			sc.stale = err
			return err
		}
		r.failed(sc, revision, gitopsv1.ReasonApplyFailed, fmt.Errorf("cannot record the inventory of %s before applying it: %w", revision, err), false)
		return err
	}
	return nil
}

// writeStatus writes the status once at the end of a reconcile. A write
// that changes what other steps rely on (the inventory, which prune reads;
// the verification verdict and the rollback records, which a Stage reads)
// carries the resourceVersion of the Sync as read (or as recordInventory
// last wrote it). A reconcile that started from a stale read can then never
// replace newer records, nor, since a merge patch sends only the fields
// that changed from its stale base, mix its fields with newer ones (a
// verification of revision B marked Successful by A's phase): it fails with
// a Conflict and the reconcile starts again from a fresh read.
func (r *SyncReconciler) writeStatus(ctx context.Context, sc *syncScope) error {
	var opts []patch.Option
	if base := sc.status.Base().(*gitopsv1.Sync); reliedOnChanged(&base.Status, &sc.sync.Status) {
		opts = append(opts, patch.WithOptimisticLock())
	}
	return sc.status.Status(ctx, sc.sync, opts...)
}

// reliedOnChanged says whether a status write changes a record another
// step relies on.
func reliedOnChanged(a, b *gitopsv1.SyncStatus) bool {
	return !equality.Semantic.DeepEqual(a.Inventory, b.Inventory) ||
		!equality.Semantic.DeepEqual(a.Verification, b.Verification) ||
		!equality.Semantic.DeepEqual(a.AlertRollback, b.AlertRollback) ||
		a.LastVerifiedRevision != b.LastVerifiedRevision ||
		a.RolledBackRevision != b.RolledBackRevision ||
		a.LastAppliedRevision != b.LastAppliedRevision
}

// reconcileHealth checks the applied objects (wait) or the health checks
// once; while any is in progress it requeues until the timeout. A Failed
// object fails the check at once.
func (r *SyncReconciler) reconcileHealth(ctx context.Context, sc *syncScope, revision string, entries []apply.Entry) (ctrl.Result, bool) {
	s := sc.sync
	var checks []apply.Entry
	if s.Spec.Wait {
		checks = entries
	} else {
		for _, h := range s.Spec.HealthChecks {
			ns := h.Namespace
			if ns == "" {
				ns = s.Namespace
			}
			checks = append(checks, apply.Entry{APIVersion: h.APIVersion, Kind: h.Kind, Namespace: ns, Name: h.Name})
		}
	}
	if sc.rollouts == nil {
		t, err := inventoryRolloutTargets(ctx, sc)
		if err != nil {
			conditions.MarkFailed(s, gitopsv1.ReasonHealthCheckFailed, err.Error())
			return r.retry(s), true
		}
		sc.rollouts = t
	}
	rc := &rolloutCheck{}
	if err := rc.extra(ctx, sc, checks); err != nil {
		conditions.MarkFailed(s, gitopsv1.ReasonHealthCheckFailed, err.Error())
		return r.retry(s), true
	}
	if len(checks) == 0 {
		if len(rc.aborts) > 0 {
			return r.rolloutAborted(sc, revision, rc.aborts)
		}
		conditions.Remove(s, gitopsv1.Healthy)
		r.succeeded(sc, revision)
		return ctrl.Result{}, false
	}
	if s.Status.HealthCheckStartedAt == nil {
		now := metav1.Now()
		s.Status.HealthCheckStartedAt = &now
	}
	results, err := apply.HealthWith(ctx, sc.reader, checks, rc.override(sc))
	if err != nil {
		conditions.MarkFailed(s, gitopsv1.ReasonHealthCheckFailed, err.Error())
		return r.retry(s), true
	}
	if len(rc.aborts) > 0 {
		return r.rolloutAborted(sc, revision, rc.aborts)
	}
	// A Deployment that a Rollout rolls out, and the Rollout itself, have no
	// Sync timeout: the Rollout's steps may pause for long, and its
	// progressDeadline aborts a step that does not become ready.
	var failedMsgs, pending []string
	timed := false
	for _, e := range checks {
		res := results[e]
		switch res.Status {
		case health.Current:
		case health.Failed:
			failedMsgs = append(failedMsgs, e.String()+": "+res.Message)
		default:
			pending = append(pending, e.String()+": "+res.Message)
			timed = timed || !(rc.decided[e.Key()] || isRolloutEntry(e))
		}
	}
	sort.Strings(failedMsgs)
	sort.Strings(pending)
	timeout := 5 * time.Minute
	if s.Spec.Timeout != nil && s.Spec.Timeout.Duration > 0 {
		timeout = s.Spec.Timeout.Duration
	}
	switch {
	case len(failedMsgs) > 0:
		return r.healthFailed(ctx, sc, revision, "failed: "+strings.Join(failedMsgs, "; "))
	case len(pending) > 0 && timed && time.Since(s.Status.HealthCheckStartedAt.Time) >= timeout:
		return r.healthFailed(ctx, sc, revision, fmt.Sprintf("not healthy within %s: %s", timeout, strings.Join(pending, "; ")))
	case len(pending) > 0:
		msg := "waiting for " + strings.Join(pending, "; ")
		conditions.Set(s, gitopsv1.Healthy, metav1.ConditionUnknown, gitopsv1.ReasonProgressing, msg)
		conditions.MarkProgressing(s, gitopsv1.ReasonProgressing, "revision "+revision+" applied; "+msg)
		return ctrl.Result{RequeueAfter: r.opts.HealthPollInterval}, true
	}
	conditions.Set(s, gitopsv1.Healthy, metav1.ConditionTrue, gitopsv1.ReasonReconciliationSucceeded, fmt.Sprintf("%d objects healthy", len(checks)))
	s.Status.LastHealthyRevision = revision
	r.succeeded(sc, revision)
	return ctrl.Result{}, false
}

// healthFailed reports a failed health check and, when asked, rolls back
// to the last healthy revision.
func (r *SyncReconciler) healthFailed(ctx context.Context, sc *syncScope, revision, detail string) (ctrl.Result, bool) {
	s := sc.sync
	msg := fmt.Sprintf("health check of revision %s %s", revision, detail)
	conditions.Set(s, gitopsv1.Healthy, metav1.ConditionFalse, gitopsv1.ReasonHealthCheckFailed, msg)
	good := rollbackTarget(s)
	if s.Spec.Rollback != nil && s.Spec.Rollback.OnHealthFailure && good != "" && good != revision {
		if digest, ok := r.store.Lookup(repoKey(sc.repo.Namespace, sc.repo.Name), good); ok {
			if _, err := r.applyRevision(ctx, sc, good, digest); err == nil {
				s.Status.RolledBackRevision = revision
				rb := fmt.Sprintf("revision %s failed its health check; rolled back to %s", revision, good)
				conditions.Set(s, conditions.Ready, metav1.ConditionFalse, gitopsv1.ReasonRolledBack, rb)
				conditions.Remove(s, conditions.Reconciling)
				conditions.Set(s, conditions.Stalled, metav1.ConditionTrue, gitopsv1.ReasonRolledBack, rb)
				r.recorder.Eventf(s, nil, corev1.EventTypeWarning, gitopsv1.EventRolledBack, "Rollback", "%s (%s)", rb, detail)
				r.addHistory(sc, revision, gitopsv1.ReasonRolledBack)
				return ctrl.Result{RequeueAfter: jitter(s.Spec.Interval.Duration)}, true
			}
			return r.retry(s), true
		}
		sc.log.Info("cannot roll back: the last healthy revision is no longer in the store", "revision", good)
	}
	r.failed(sc, revision, gitopsv1.ReasonHealthCheckFailed, errors.New(msg), true)
	return r.retry(s), true
}

func (r *SyncReconciler) succeeded(sc *syncScope, revision string) {
	s := sc.sync
	r.recordRecovery(sc, revision)
	conditions.MarkReady(s, gitopsv1.ReasonReconciliationSucceeded, "applied revision "+revision)
	s.Status.ObservedGeneration = s.Generation
	r.addHistory(sc, revision, gitopsv1.ReasonReconciliationSucceeded)
}

// failed reports a failed attempt. stalled marks failures only a new commit
// or spec change can fix.
func (r *SyncReconciler) failed(sc *syncScope, revision, reason string, err error, stalled bool) {
	s := sc.sync
	msg := err.Error()
	if prev := conditions.Get(s, conditions.Ready); prev == nil || prev.Message != msg {
		r.recorder.Eventf(s, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", eventmsg.Truncate(msg))
		sc.log.Info("reconcile failed", "reason", reason, "error", msg)
	}
	if stalled {
		conditions.MarkStalled(s, reason, msg)
		// This generation has been fully processed: only the user can move
		// it on. Saying so lets kstatus (kubectl wait, Flux, Argo CD) read
		// the Sync as Failed instead of forever in progress.
		s.Status.ObservedGeneration = s.Generation
	} else {
		conditions.MarkFailed(s, reason, msg)
	}
	r.addHistory(sc, revision, reason)
}

func (r *SyncReconciler) addHistory(sc *syncScope, revision, result string) {
	s := sc.sync
	if len(s.Status.History) > 0 && s.Status.History[0].Revision == revision && s.Status.History[0].Result == result {
		return
	}
	h := gitopsv1.HistoryEntry{Revision: revision, Result: result, Duration: metav1.Duration{Duration: time.Since(sc.began).Round(time.Millisecond)}, Time: metav1.Now()}
	s.Status.History = append([]gitopsv1.HistoryEntry{h}, s.Status.History...)
	if len(s.Status.History) > historyLimit {
		s.Status.History = s.Status.History[:historyLimit]
	}
}

func (r *SyncReconciler) recordChanges(sc *syncScope, revision string, changes []apply.Change, old []apply.Entry) {
	inOld := map[string]bool{}
	for _, e := range old {
		inOld[e.Key()] = true
	}
	var created, configured []string
	for _, c := range changes {
		switch {
		case !inOld[c.Entry.Key()]:
			created = append(created, c.Entry.String())
		case c.Action == apply.Configured:
			configured = append(configured, c.Entry.String())
		}
	}
	if len(created)+len(configured) == 0 {
		return
	}
	var parts []string
	if len(created) > 0 {
		parts = append(parts, "created "+summary(created))
	}
	if len(configured) > 0 {
		parts = append(parts, "configured "+summary(configured))
	}
	r.recorder.Eventf(sc.sync, nil, corev1.EventTypeNormal, gitopsv1.EventApplied, "Apply", "%s", eventmsg.Truncate("revision "+revision+": "+strings.Join(parts, "; ")))
	sc.announced = true
}

func summary(names []string) string {
	if len(names) > 5 {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:5], ", "), len(names)-5)
	}
	return strings.Join(names, ", ")
}

// buildOptions reads the Sync's substitutions and decryption keys as the
// Sync (its service account when it has one), with the manager's remote-base
// policy.
func (r *SyncReconciler) buildOptions(ctx context.Context, sc *syncScope) (build.Options, error) {
	opts, err := inputs.BuildOptions(ctx, sc.reader, sc.sync)
	opts.RemoteBases, opts.RemoteBaseTimeout = r.opts.RemoteBases, r.opts.RemoteBaseTimeout
	return opts, err
}

// finalize prunes the inventory (unless prune is disabled) and lets the
// Sync go.
func (r *SyncReconciler) finalize(ctx context.Context, sc *syncScope) error {
	s := sc.sync
	if s.Spec.Prune != gitopsv1.PruneDisabled && !s.Spec.Suspend && len(s.Status.Inventory) > 0 {
		c, err := r.clientFor(s)
		if err != nil {
			return err
		}
		a := &apply.Applier{Client: c, Owner: inputs.Owner(s)}
		if _, err := a.Prune(ctx, apply.Diff(inputs.Inventory(s.Status.Inventory), nil)); err != nil {
			return fmt.Errorf("cannot prune on delete: %w", err)
		}
	}
	r.mu.Lock()
	delete(r.known, types.NamespacedName{Namespace: s.Namespace, Name: s.Name})
	r.mu.Unlock()
	if controllerutil.ContainsFinalizer(s, Finalizer) {
		// The Sync goes only if the inventory just pruned was its latest:
		// when the read was stale the removal conflicts and the next
		// attempt prunes from a fresh read.
		p := client.MergeFromWithOptions(s.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.RemoveFinalizer(s, Finalizer)
		if err := r.client.Patch(ctx, s, p); err != nil {
			return fmt.Errorf("cannot remove finalizer: %w", err)
		}
	}
	return nil
}

func toInventory(entries []apply.Entry) []gitopsv1.InventoryEntry {
	out := make([]gitopsv1.InventoryEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, gitopsv1.InventoryEntry{APIVersion: e.APIVersion, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out
}

func union(a, b []apply.Entry) []apply.Entry {
	seen := map[string]bool{}
	var out []apply.Entry
	for _, list := range [][]apply.Entry{a, b} {
		for _, e := range list {
			if !seen[e.Key()] {
				seen[e.Key()] = true
				out = append(out, e)
			}
		}
	}
	return out
}
