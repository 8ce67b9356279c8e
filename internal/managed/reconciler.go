package managed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	xv1alpha1 "github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/patch"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/kubeclient"
	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// Options tune every managed-resource controller.
type Options struct {
	// PollInterval is how often an existing external resource is observed
	// again for drift (jittered by up to 10%); the strata.dev/poll-interval
	// annotation overrides it per resource. Default 1m.
	PollInterval time.Duration
	// Workers is the number of concurrent reconciles per kind. Default 10.
	Workers int
	// MaxReconcileRate caps reconciles per second across every managed
	// kind in the process; 0 means no cap.
	MaxReconcileRate float64
	// ClientLimit rate-limits the API client every managed kind shares;
	// zero fields take DefaultClientLimit.
	ClientLimit kubeclient.Limit
}

func (o Options) withDefaults() Options {
	if o.PollInterval <= 0 {
		o.PollInterval = time.Minute
	}
	if o.Workers <= 0 {
		o.Workers = 10
	}
	o.ClientLimit = o.ClientLimit.Or(DefaultClientLimit)
	return o
}

var (
	limitersMu sync.Mutex
	limiters   = map[float64]*rate.Limiter{}
)

// globalLimiter returns the process-wide limiter for a rate, shared by every
// managed kind, or nil for no limit.
func globalLimiter(perSecond float64) *rate.Limiter {
	if perSecond <= 0 {
		return nil
	}
	limitersMu.Lock()
	defer limitersMu.Unlock()
	l, ok := limiters[perSecond]
	if !ok {
		burst := int(perSecond)
		if burst < 1 {
			burst = 1
		}
		l = rate.NewLimiter(rate.Limit(perSecond), burst)
		limiters[perSecond] = l
	}
	return l
}

// DefaultClientLimit rate-limits the managed-resource controllers' requests
// to the API server (one client shared by every managed kind) unless
// --kube-api-qps/--kube-api-burst say otherwise. A resource costs about four
// requests to create, so client-go's default (5 QPS) would make a thousand
// resources take many minutes.
var DefaultClientLimit = kubeclient.Limit{QPS: 200, Burst: 400}

var clients sync.Map // ctrl.Manager -> client.Client

// Client returns the client every managed controller of mgr shares, for
// providers to read and write with: reads from the manager's cache except
// Secrets, which are read live (connection and credential Secrets are a few
// of the cluster's; a cache would hold every Secret of the cluster), and
// requests limited to o.ClientLimit (the first kind set up decides; every
// kind gets the same Options from the manager).
func Client(mgr ctrl.Manager, o Options) (client.Client, error) {
	return managerClient(mgr, o.withDefaults().ClientLimit)
}

func managerClient(mgr ctrl.Manager, l kubeclient.Limit) (client.Client, error) {
	if c, ok := clients.Load(mgr); ok {
		return c.(client.Client), nil
	}
	c, _, err := kubeclient.New(mgr, l, &client.CacheOptions{Reader: mgr.GetCache(), DisableFor: []client.Object{&corev1.Secret{}}})
	if err != nil {
		return nil, fmt.Errorf("cannot build the managed-resource client: %w", err)
	}
	actual, _ := clients.LoadOrStore(mgr, c)
	return actual.(client.Client), nil
}

// Kind describes one managed kind to the shared reconciler.
type Kind struct {
	// New returns an empty object of the kind.
	New func() Managed
	// Connector connects to the external system.
	Connector Connector
	// ProviderConfig, when set, returns an empty ProviderConfig of the
	// provider: the runtime reads the one a resource names to hold its
	// allowedClaimNamespaces (ProviderConfigUsage) before connecting.
	ProviderConfig func() ProviderConfig
	// Resolve, when set, resolves references (roleRef, roleSelector...) into
	// spec.forProvider before anything else happens. It returns changed=true
	// when it wrote a field, and a *ReferenceError while a referenced object
	// is missing or not Ready.
	Resolve func(ctx context.Context, c client.Reader, mg Managed) (changed bool, err error)
}

// Reconciler is the shared managed-resource reconciler for one kind.
type Reconciler struct {
	client   client.Client
	kind     Kind
	name     string // e.g. Database.postgresql.sql.strata.dev
	opts     Options
	limiter  *rate.Limiter
	recorder events.EventRecorder
}

// Setup registers the shared reconciler for kind k with mgr.
func Setup(mgr ctrl.Manager, o Options, k Kind) error {
	o = o.withDefaults()
	obj := k.New()
	gvk, err := apiutil.GVKForObject(obj, mgr.GetScheme())
	if err != nil {
		return fmt.Errorf("cannot find the kind of %T: %w", obj, err)
	}
	name := gvk.Kind + "." + gvk.Group
	c, err := managerClient(mgr, o.ClientLimit)
	if err != nil {
		return err
	}
	r := &Reconciler{
		client:   c,
		kind:     k,
		name:     name,
		opts:     o,
		limiter:  globalLimiter(o.MaxReconcileRate),
		recorder: mgr.GetEventRecorder("strata-" + strings.ToLower(gvk.Kind) + "." + gvk.Group),
	}
	if err := indexProviderConfig(context.Background(), mgr, obj); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(strings.ToLower(name)).
		For(obj, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, userAnnotationChanged{}, predicate.LabelChangedPredicate{}))).
		// Failures back off exponentially but never past the poll interval,
		// so a resource recovers within a poll of its server coming back.
		WithOptions(controller.Options{MaxConcurrentReconciles: o.Workers,
			RateLimiter: kitreconcile.RateLimiterUpTo(o.PollInterval)}).
		Complete(r)
}

// scope is what one reconcile works on.
type scope struct {
	log logr.Logger
	mg  Managed
	// status remembers mg as fetched and writes its status once, at the
	// end of the reconcile.
	status *patch.Helper
	gone   bool // the finalizer was removed; there is nothing to patch
}

// Reconcile fetches the resource, handles deletion, then runs the phases:
// finalizer, references, connect, observe, then create, update or nothing.
// One deferred patch writes the status.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (res ctrl.Result, retErr error) {
	if r.limiter != nil {
		if err := r.limiter.Wait(ctx); err != nil {
			return ctrl.Result{}, err
		}
	}
	metricReconciles.WithLabelValues(r.name).Inc()
	mg := r.kind.New()
	if err := r.client.Get(ctx, req.NamespacedName, mg); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	s := &scope{
		log:    ctrl.LoggerFrom(ctx).WithValues("kind", r.name, "resource", klog.KObj(mg), "externalName", ExternalName(mg)),
		mg:     mg,
		status: patch.NewHelper(r.client, mg),
	}
	conditions.EnsureInitialized(mg)
	defer func() {
		if retErr != nil {
			metricErrors.WithLabelValues(r.name).Inc()
		}
		if err := r.patchStatus(ctx, s); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	if !mg.GetDeletionTimestamp().IsZero() {
		return r.reconcileDelete(ctx, s)
	}
	return r.reconcileNormal(ctx, s)
}

func (r *Reconciler) patchStatus(ctx context.Context, s *scope) error {
	if s.gone {
		return nil
	}
	return client.IgnoreNotFound(s.status.Status(ctx, s.mg))
}

// updateMeta writes mg's metadata and spec, keeping the in-memory status.
func (r *Reconciler) updateMeta(ctx context.Context, s *scope) error {
	cp := s.mg.DeepCopyObject().(Managed)
	if err := r.client.Update(ctx, cp); err != nil {
		return fmt.Errorf("cannot update %s %q: %w", r.name, s.mg.GetName(), err)
	}
	s.mg.SetResourceVersion(cp.GetResourceVersion())
	s.mg.SetGeneration(cp.GetGeneration())
	s.status.Updated(cp)
	return nil
}

func (r *Reconciler) reconcileNormal(ctx context.Context, s *scope) (ctrl.Result, error) {
	mg, spec := s.mg, s.mg.ManagedSpec()
	// The finalizer is written with the create intent, or right after the
	// first observation of an existing resource: never later than the first
	// moment there is something external to clean up.
	if r.kind.Resolve != nil {
		changed, err := r.kind.Resolve(ctx, r.client, mg)
		var refErr *ReferenceError
		if errors.As(err, &refErr) {
			r.syncFailed(s, ReasonReferenceNotReady, EventCannotResolve, err)
			conditions.MarkProgressing(mg, conditions.ReasonDependencyNotReady, err.Error())
			return ctrl.Result{RequeueAfter: kitreconcile.Jitter(2 * time.Second)}, nil
		}
		if err != nil {
			return r.fail(s, EventCannotResolve, fmt.Errorf("cannot resolve references: %w", err))
		}
		if changed {
			if err := r.updateMeta(ctx, s); err != nil {
				return ctrl.Result{}, err
			}
		}
	}
	if err := r.checkUsage(ctx, mg); err != nil {
		if kitreconcile.ReasonOf(err) == ReasonProviderConfigNotAllowed {
			r.syncFailed(s, ReasonProviderConfigNotAllowed, EventCannotConnect, err)
			conditions.MarkStalled(mg, ReasonProviderConfigNotAllowed, err.Error())
			return ctrl.Result{RequeueAfter: kitreconcile.Jitter(pollInterval(mg, r.opts.PollInterval))}, nil
		}
		return r.fail(s, EventCannotConnect, err)
	}
	ext, err := r.connect(ctx, s)
	if err != nil {
		return r.fail(s, EventCannotConnect, err)
	}
	defer r.disconnect(ctx, s, ext)

	pre := mg.DeepCopyObject().(Managed)
	obs, err := ext.Observe(ctx, mg)
	countCall(r.name, "observe", err)
	if err != nil {
		return r.fail(s, EventCannotObserve, fmt.Errorf("cannot observe %s: %w", ExternalName(mg), err))
	}
	if obs.Exists && !mayManage(mg) {
		return r.refuseExisting(s, pre)
	}
	if obs.LateInitialized && !spec.ManagementPolicies.Allows(managedv1.ManagementLateInitialize) {
		// Observe filled unset fields; without LateInitialize the spec
		// stays the user's.
		if err := restoreSpec(mg, pre); err != nil {
			return r.fail(s, EventCannotObserve, err)
		}
		obs.LateInitialized = false
	}
	if obs.Exists && (!controllerutil.ContainsFinalizer(mg, Finalizer) || mg.GetAnnotations()[AnnotationExternalName] == "") {
		// An existing resource found by name (imported, or adopted): record
		// its name and protect it like a created one.
		controllerutil.AddFinalizer(mg, Finalizer)
		setAnnotation(mg, AnnotationExternalName, ExternalName(mg))
		if err := r.updateMeta(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
	}
	if obs.Exists && createInterrupted(mg) {
		// A create was interrupted (say the manager was killed) after the
		// external call: the resource is ours, so adopt it.
		// The status written at the end of this reconcile records it.
		now := metav1.Now()
		mg.ManagedStatus().CreatedAt = &now
		r.event(mg, corev1.EventTypeNormal, EventAdoptedAfterCrash, "Adopt",
			fmt.Sprintf("found external resource %q after an interrupted create", ExternalName(mg)))
	}
	if !obs.Exists {
		if !spec.ManagementPolicies.Allows(managedv1.ManagementCreate) {
			err := fmt.Errorf("external resource %q does not exist and managementPolicies do not allow Create", ExternalName(mg))
			r.syncFailed(s, conditions.ReasonReconcileError, EventCannotObserve, err)
			conditions.MarkFailed(mg, conditions.ReasonUnavailable, err.Error())
			return ctrl.Result{RequeueAfter: kitreconcile.Jitter(pollInterval(mg, r.opts.PollInterval))}, nil
		}
		if obs, err = r.create(ctx, s, ext); err != nil {
			if IsAlreadyExists(err) && mg.GetAnnotations()[AnnotationCreatePending] == "" {
				// What is there is someone else's (create withdrew the
				// intent), whatever this resource created under the
				// name before it went away.
				pre.ManagedStatus().CreatedAt = nil
				return r.refuseExisting(s, pre)
			}
			return r.fail(s, EventCannotCreate, err)
		}
		if !obs.Exists {
			r.synced(s)
			conditions.MarkProgressing(mg, conditions.ReasonCreating, fmt.Sprintf("waiting for external resource %q to be created", ExternalName(mg)))
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
	}
	if obs.LateInitialized {
		if err := r.updateMeta(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
		r.event(mg, corev1.EventTypeNormal, EventLateInitialized, "LateInitialize", "filled unset spec.forProvider fields from the external resource")
	}
	if err := PublishConnectionDetails(ctx, r.client, mg, obs.ConnectionDetails); err != nil {
		return r.fail(s, EventCannotPublish, err)
	}
	drifted := false
	if !obs.UpToDate {
		if spec.ManagementPolicies.Allows(managedv1.ManagementUpdate) {
			u, err := ext.Update(ctx, mg)
			countCall(r.name, "update", err)
			if err != nil {
				return r.fail(s, EventCannotUpdate, fmt.Errorf("cannot update %s: %w", ExternalName(mg), err))
			}
			r.event(mg, corev1.EventTypeNormal, EventUpdated, "Update", updateNote(ExternalName(mg), obs.Drift))
			if err := PublishConnectionDetails(ctx, r.client, mg, u.ConnectionDetails); err != nil {
				return r.fail(s, EventCannotPublish, err)
			}
			// Observe again so status.atProvider shows the result now, not
			// at the next poll.
			if again, err := ext.Observe(ctx, mg); err == nil && again.Exists {
				obs.NotReady = again.NotReady
			}
		} else {
			drifted = true
		}
	}
	r.setReady(s, obs)
	if drifted {
		msg := fmt.Sprintf("external resource %q differs from the spec and managementPolicies do not allow Update", ExternalName(mg))
		if obs.Drift != "" {
			msg += ": " + obs.Drift
		}
		if c := conditions.Get(mg, conditions.Synced); c == nil || c.Message != msg {
			r.event(mg, corev1.EventTypeWarning, EventDrift, "Observe", msg)
		}
		conditions.Set(mg, conditions.Synced, metav1.ConditionTrue, ReasonDriftDetected, msg)
	} else {
		r.synced(s)
	}
	mg.ManagedStatus().ObservedGeneration = mg.GetGeneration()
	after := pollInterval(mg, r.opts.PollInterval)
	if obs.NotReady != "" && after > notReadyPoll {
		after = notReadyPoll
	}
	return ctrl.Result{RequeueAfter: kitreconcile.Jitter(after)}, nil
}

// notReadyPoll is how often a resource that exists but is not yet Ready is
// observed again.
const notReadyPoll = 2 * time.Second

func updateNote(name, drift string) string {
	if drift == "" {
		return fmt.Sprintf("updated external resource %q", name)
	}
	return fmt.Sprintf("updated external resource %q: %s", name, drift)
}

// create records the intent to create, calls Create, records its success and
// observes again.
func (r *Reconciler) create(ctx context.Context, s *scope, ext External) (Observation, error) {
	mg := s.mg
	// A create of this resource's own may have gone through after all (the
	// manager stopped, or the call failed, before its success was recorded).
	earlier := createInterrupted(mg)
	// Record intent (and pin the external name) before the external call:
	// if the manager dies during Create, the next reconcile finds the
	// pending annotation and adopts whatever Observe finds under this name
	// instead of creating a second one.
	controllerutil.AddFinalizer(mg, Finalizer)
	setAnnotation(mg, AnnotationExternalName, ExternalName(mg))
	setAnnotation(mg, AnnotationCreatePending, time.Now().UTC().Format(time.RFC3339))
	if a := mg.GetAnnotations(); a[AnnotationCreateSucceeded] != "" {
		delete(a, AnnotationCreateSucceeded)
		mg.SetAnnotations(a)
	}
	if err := r.updateMeta(ctx, s); err != nil {
		return Observation{}, err
	}
	cre, err := ext.Create(ctx, mg)
	countCall(r.name, "create", err)
	if IsAlreadyExists(err) && !earlier {
		// Someone made a resource of this name since it was observed
		// missing: withdraw the intent, which would otherwise make it
		// look like this resource's own (mayManage). After an earlier
		// attempt the resource may be that attempt's: the error is
		// retried, and the next observation adopts it as an
		// interrupted create.
		a := mg.GetAnnotations()
		delete(a, AnnotationCreatePending)
		mg.SetAnnotations(a)
		if uerr := r.updateMeta(ctx, s); uerr != nil {
			return Observation{}, uerr
		}
		return Observation{}, err
	}
	if err != nil {
		return Observation{}, fmt.Errorf("cannot create %s: %w", ExternalName(mg), err)
	}
	// The success is recorded in the status this reconcile writes at its
	// end. Only a name the external system chose must be written to the
	// metadata at once: without it the resource could not be found again.
	now := metav1.Now()
	mg.ManagedStatus().CreatedAt = &now
	if cre.ExternalName != "" && cre.ExternalName != ExternalName(mg) {
		setAnnotation(mg, AnnotationExternalName, cre.ExternalName)
		setAnnotation(mg, AnnotationCreateSucceeded, now.UTC().Format(time.RFC3339))
		if err := r.updateMeta(ctx, s); err != nil {
			return Observation{}, err
		}
	}
	s.log.Info("created external resource")
	r.event(mg, corev1.EventTypeNormal, EventCreated, "Create", fmt.Sprintf("created external resource %q", ExternalName(mg)))
	if err := PublishConnectionDetails(ctx, r.client, mg, cre.ConnectionDetails); err != nil {
		return Observation{}, err
	}
	obs, err := ext.Observe(ctx, mg)
	countCall(r.name, "observe", err)
	if err != nil {
		return Observation{}, fmt.Errorf("cannot observe %s: %w", ExternalName(mg), err)
	}
	return obs, nil
}

// createInterrupted reports whether mg's last create intent has no recorded
// success: neither the succeeded annotation nor a status.createdAt at or
// after the intent. The manager stopped between the external call and the
// status write.
func createInterrupted(mg Managed) bool {
	ann := mg.GetAnnotations()
	if ann[AnnotationCreatePending] == "" || ann[AnnotationCreateSucceeded] != "" {
		return false
	}
	pending, err := time.Parse(time.RFC3339, ann[AnnotationCreatePending])
	created := mg.ManagedStatus().CreatedAt
	return err != nil || created == nil || created.Time.Before(pending)
}

func (r *Reconciler) reconcileDelete(ctx context.Context, s *scope) (ctrl.Result, error) {
	mg, spec := s.mg, s.mg.ManagedSpec()
	if !controllerutil.ContainsFinalizer(mg, Finalizer) {
		s.gone = true
		return ctrl.Result{}, nil
	}
	conditions.MarkProgressing(mg, conditions.ReasonDeleting, fmt.Sprintf("deleting external resource %q", ExternalName(mg)))
	if deletionPolicy(mg) == managedv1.DeletionOrphan || !spec.ManagementPolicies.Allows(managedv1.ManagementDelete) {
		return r.finish(ctx, s)
	}
	if !mayManage(mg) {
		// It holds a finalizer without having created, imported or been
		// handed what its name points at (an earlier version of Strata
		// took an existing resource over silently): leave it.
		r.event(mg, corev1.EventTypeNormal, EventKept, "Delete", fmt.Sprintf("left external resource %q as it is: this resource did not create it and was not handed it (%s)", ExternalName(mg), AnnotationAdoptExternal))
		return r.finish(ctx, s)
	}
	ext, err := r.connect(ctx, s)
	if err != nil {
		return r.fail(s, EventCannotConnect, err)
	}
	defer r.disconnect(ctx, s, ext)
	obs, err := ext.Observe(ctx, mg)
	countCall(r.name, "observe", err)
	if kitreconcile.IsTerminal(err) {
		// The spec (say, an invalid external name) never allowed a create:
		// there is nothing to delete.
		return r.finish(ctx, s)
	}
	if err != nil {
		return r.fail(s, EventCannotObserve, fmt.Errorf("cannot observe %s: %w", ExternalName(mg), err))
	}
	if obs.Exists {
		err := ext.Delete(ctx, mg)
		countCall(r.name, "delete", err)
		if err != nil {
			return r.fail(s, EventCannotDelete, fmt.Errorf("cannot delete %s: %w", ExternalName(mg), err))
		}
		s.log.Info("deleted external resource")
		r.event(mg, corev1.EventTypeNormal, EventDeleted, "Delete", fmt.Sprintf("deleted external resource %q", ExternalName(mg)))
		if obs, err = ext.Observe(ctx, mg); err != nil {
			return r.fail(s, EventCannotObserve, fmt.Errorf("cannot observe %s: %w", ExternalName(mg), err))
		}
		if obs.Exists {
			r.synced(s)
			conditions.MarkProgressing(mg, conditions.ReasonDeleting, fmt.Sprintf("waiting for external resource %q to be deleted", ExternalName(mg)))
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
	}
	return r.finish(ctx, s)
}

// finish removes the connection Secret and the finalizer.
func (r *Reconciler) finish(ctx context.Context, s *scope) (ctrl.Result, error) {
	if err := deleteConnectionSecret(ctx, r.client, s.mg); err != nil {
		return r.fail(s, EventCannotPublish, err)
	}
	controllerutil.RemoveFinalizer(s.mg, Finalizer)
	if err := r.updateMeta(ctx, s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	s.gone = true
	return ctrl.Result{}, nil
}

// checkUsage refuses a resource composed for a claim whose namespace its
// ProviderConfig's allowedClaimNamespaces leave out, with an error of reason
// ProviderConfigNotAllowed. A ProviderConfig that does not exist is left to
// Connect to report.
func (r *Reconciler) checkUsage(ctx context.Context, mg Managed) error {
	ns := mg.GetLabels()[xv1alpha1.LabelClaimNamespace]
	if ns == "" || r.kind.ProviderConfig == nil {
		return nil
	}
	pc := r.kind.ProviderConfig()
	if err := r.client.Get(ctx, client.ObjectKey{Name: ProviderConfigName(mg)}, pc); err != nil {
		return client.IgnoreNotFound(err)
	}
	if allowed := pc.ProviderConfigUsage().AllowedClaimNamespaces; !claimNamespaceAllowed(allowed, ns) {
		return kitreconcile.Terminal(ReasonProviderConfigNotAllowed, fmt.Errorf("ProviderConfig %q may not be used by claims in namespace %s (its allowedClaimNamespaces are %s); nothing was sent to the external system",
			pc.GetName(), ns, strings.Join(allowed, ", ")))
	}
	return nil
}

// claimNamespaceAllowed reports whether a ProviderConfig whose
// allowedClaimNamespaces are allowed may be used by a claim in ns: unset
// allows every namespace, "*" too.
func claimNamespaceAllowed(allowed []string, ns string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		if a == "*" || a == ns {
			return true
		}
	}
	return false
}

func (r *Reconciler) connect(ctx context.Context, s *scope) (External, error) {
	ext, err := r.kind.Connector.Connect(ctx, s.mg)
	countCall(r.name, "connect", err)
	return ext, err
}

func (r *Reconciler) disconnect(ctx context.Context, s *scope, ext External) {
	if d, ok := ext.(Disconnecter); ok {
		if err := d.Disconnect(ctx); err != nil {
			s.log.V(1).Info("cannot disconnect", "error", err.Error())
		}
	}
}

// setReady sets Ready from an observation of an existing resource.
func (r *Reconciler) setReady(s *scope, obs Observation) {
	mg := s.mg
	if obs.NotReady != "" {
		conditions.MarkProgressing(mg, conditions.ReasonCreating, obs.NotReady)
		return
	}
	// Time to Ready counts the first Ready=True: the resource was still
	// being created, or no reconcile had succeeded before this one (a first
	// attempt may have failed).
	prev := conditions.Get(mg, conditions.Ready)
	first := prev == nil || prev.Reason == conditions.ReasonCreating || s.status.Base().(Managed).ManagedStatus().ObservedGeneration == 0
	if (prev == nil || prev.Status != metav1.ConditionTrue) && first {
		metricTimeToReady.WithLabelValues(r.name).Observe(time.Since(mg.GetCreationTimestamp().Time).Seconds())
	}
	conditions.MarkReady(mg, conditions.ReasonAvailable, fmt.Sprintf("external resource %q is available", ExternalName(mg)))
}

func (r *Reconciler) synced(s *scope) {
	conditions.Set(s.mg, conditions.Synced, metav1.ConditionTrue, conditions.ReasonReconcileSuccess, "")
}

// syncFailed sets Synced=False and emits a warning event when the message
// changes, so a failure that repeats every retry makes one event.
func (r *Reconciler) syncFailed(s *scope, reason, eventReason string, err error) {
	msg := err.Error()
	if c := conditions.Get(s.mg, conditions.Synced); c == nil || c.Status != metav1.ConditionFalse || c.Message != msg {
		r.event(s.mg, corev1.EventTypeWarning, eventReason, "Reconcile", msg)
	}
	conditions.Set(s.mg, conditions.Synced, metav1.ConditionFalse, reason, msg)
}

// fail records an error: Synced=False, Ready=False (Unavailable, or Stalled
// with the error's reason for a user error made with kit/reconcile.Terminal,
// or Deleting while deleting), and returns it: controller-runtime backs off
// on a transient error and does not retry a terminal one.
func (r *Reconciler) fail(s *scope, eventReason string, err error) (ctrl.Result, error) {
	mg := s.mg
	s.log.V(1).Info("reconcile failed", "error", err.Error())
	r.syncFailed(s, conditions.ReasonReconcileError, eventReason, err)
	switch {
	case kitreconcile.IsTerminal(err):
		reason := kitreconcile.ReasonOf(err)
		if reason == "" {
			reason = conditions.ReasonReconcileError
		}
		conditions.MarkStalled(mg, reason, err.Error())
	case !mg.GetDeletionTimestamp().IsZero():
		conditions.MarkProgressing(mg, conditions.ReasonDeleting, err.Error())
	default:
		conditions.MarkFailed(mg, conditions.ReasonUnavailable, err.Error())
	}
	return ctrl.Result{}, err
}

func (r *Reconciler) event(mg Managed, typ, reason, action, note string) {
	r.recorder.Eventf(mg, nil, typ, reason, action, "%s", note)
}

// userAnnotationChanged passes updates whose annotations changed other than
// by the runtime's own bookkeeping (create intent, success, and the first
// recording of the external name), so the runtime's writes do not trigger a
// second reconcile of every resource.
type userAnnotationChanged struct{ predicate.Funcs }

func (userAnnotationChanged) Update(e event.UpdateEvent) bool {
	if e.ObjectOld == nil || e.ObjectNew == nil {
		return true
	}
	oldA, newA := e.ObjectOld.GetAnnotations(), e.ObjectNew.GetAnnotations()
	keys := map[string]bool{}
	for k := range oldA {
		keys[k] = true
	}
	for k := range newA {
		keys[k] = true
	}
	for k := range keys {
		if oldA[k] == newA[k] {
			continue
		}
		switch {
		case k == AnnotationCreatePending || k == AnnotationCreateSucceeded:
		case k == AnnotationExternalName && oldA[k] == "":
		default:
			return true
		}
	}
	return false
}

// restoreSpec puts pre's spec back into mg, leaving mg's status alone.
func restoreSpec(mg, pre Managed) error { return restore(mg, pre, "spec") }

// restore puts pre's top-level fields back into mg, leaving the others
// (metadata, which a write may have moved on since) alone.
func restore(mg, pre Managed, fields ...string) error {
	from, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pre)
	if err != nil {
		return fmt.Errorf("cannot restore %v: %w", fields, err)
	}
	to, err := runtime.DefaultUnstructuredConverter.ToUnstructured(mg)
	if err != nil {
		return fmt.Errorf("cannot restore %v: %w", fields, err)
	}
	for _, f := range fields {
		to[f] = from[f]
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(to, mg); err != nil {
		return fmt.Errorf("cannot restore %v: %w", fields, err)
	}
	return nil
}

// refuseExisting leaves an external resource that mg may not manage
// (mayManage) as it was found: it is not updated, its observed state is not
// copied into mg (neither late-initialized fields nor status.atProvider),
// no finalizer protects it on mg's behalf and mg's deletion leaves it. mg
// reports the conflict (Synced=False and Stalled, reason ResourceConflict,
// one Warning event) and looks again at its poll interval, so it creates
// its own resource once the name is free; an annotation handing the
// resource over, or a spec naming another, reconciles it at once.
func (r *Reconciler) refuseExisting(s *scope, pre Managed) (ctrl.Result, error) {
	mg := s.mg
	if err := restore(mg, pre, "spec", "status"); err != nil {
		return r.fail(s, EventCannotObserve, err)
	}
	err := fmt.Errorf("%s %s: external resource %q already exists and this resource did not create it; it is left as it is, and deleting this resource will not delete it (to manage it, annotate this resource %s: \"true\"; to only observe it, set managementPolicies: [\"Observe\"])",
		r.name, mg.GetName(), ExternalName(mg), AnnotationAdoptExternal)
	r.syncFailed(s, ReasonResourceConflict, EventConflict, err)
	conditions.MarkStalled(mg, ReasonResourceConflict, err.Error())
	return ctrl.Result{RequeueAfter: kitreconcile.Jitter(pollInterval(mg, r.opts.PollInterval))}, nil
}
