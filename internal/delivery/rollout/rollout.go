package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/kit/patch"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/kit/tenant"
)

// Finalizer lets the Rollout give the Deployment back (unpaused, without
// its annotation) and take its key off Service selectors when it is
// deleted.
const Finalizer = "delivery.strata.dev/rollout"

// defaultProgressDeadline is spec.progressDeadline's default.
const defaultProgressDeadline = 10 * time.Minute

// defaultScaleDownDelay is blueGreen.scaleDownDelay's default.
const defaultScaleDownDelay = 30 * time.Second

// indexTarget indexes Rollouts by the name of the Deployment they target.
const indexTarget = "spec.targetRef.name"

// indexService indexes Rollouts by the names of the Services they use.
const indexService = "spec.service"

// Options configure the Rollout controller.
type Options struct {
	// DefaultServiceAccount is impersonated, in each Rollout's namespace, by
	// Rollouts without spec.serviceAccountName; empty means the manager's
	// own rights.
	DefaultServiceAccount string
	// Workers is the number of Rollouts reconciled at once.
	Workers int

	// wrapTenant, when set, wraps every tenant client: tests use it to
	// stand another writer between a read and a write.
	wrapTenant func(client.Client) client.Client
}

// Reconciler runs Rollouts.
type Reconciler struct {
	client   client.Client
	recorder events.EventRecorder
	log      logr.Logger
	opts     Options
	memory   *patch.Memory
	now      func() time.Time

	clients *tenant.Clients // acting as the tenant
}

// Setup registers the Rollout controller with mgr.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	r := &Reconciler{
		client:   mgr.GetClient(),
		recorder: mgr.GetEventRecorder("strata-rollout"),
		log:      mgr.GetLogger().WithName("rollout"),
		opts:     o,
		memory:   patch.NewMemory(),
		now:      time.Now,
		clients:  tenant.NewClients(mgr.GetConfig(), mgr.GetScheme(), mgr.GetRESTMapper()),
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &deliveryv1.Rollout{}, indexTarget, func(o client.Object) []string {
		return []string{o.(*deliveryv1.Rollout).Spec.TargetRef.Name}
	}); err != nil {
		return fmt.Errorf("cannot index Rollouts by target: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &deliveryv1.Rollout{}, indexService, func(o client.Object) []string {
		ro := o.(*deliveryv1.Rollout)
		if p := previewServiceName(ro); p != "" {
			return []string{ro.Spec.Service, p}
		}
		return []string{ro.Spec.Service}
	}); err != nil {
		return fmt.Errorf("cannot index Rollouts by Service: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&deliveryv1.Rollout{}).
		Owns(&deliveryv1.AnalysisRun{}).
		Owns(&appsv1.ReplicaSet{}, builder.OnlyMetadata).
		Owns(&corev1.Service{}, builder.OnlyMetadata).
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.rolloutsBy(indexTarget)), builder.OnlyMetadata).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.rolloutsBy(indexService)), builder.OnlyMetadata).
		WithOptions(controller.Options{RateLimiter: kitreconcile.RateLimiter(), MaxConcurrentReconciles: o.Workers}).
		Named("rollout").
		Complete(r)
}

// rolloutsBy maps a Deployment or Service to the Rollouts of its namespace
// that name it (by index).
func (r *Reconciler) rolloutsBy(index string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.rolloutsNaming(ctx, index, o)
	}
}

func (r *Reconciler) rolloutsNaming(ctx context.Context, index string, o client.Object) []reconcile.Request {
	list := &deliveryv1.RolloutList{}
	if err := r.client.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: o.GetName()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, ro := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ro.Namespace, Name: ro.Name}})
	}
	return reqs
}

// tenantClient is a client acting as the Rollout's service account (or the
// manager's own, uncached, without one).
func (r *Reconciler) tenantClient(ro *deliveryv1.Rollout) (client.Client, error) {
	c, err := r.clients.For(tenant.User(ro.Namespace, ro.Spec.ServiceAccountName, r.opts.DefaultServiceAccount))
	if err != nil || r.opts.wrapTenant == nil {
		return c, err
	}
	return r.opts.wrapTenant(c), nil
}

// scope is what one reconcile of a Rollout works on.
type scope struct {
	ro     *deliveryv1.Rollout
	owner  ownership.Owner
	tenant client.Client
	log    logr.Logger
	now    time.Time

	dep      *appsv1.Deployment
	svc      *corev1.Service
	replicas int32
	// stable is the Deployment's ReplicaSet serving traffic (nil for a
	// Deployment that never ran).
	stable *appsv1.ReplicaSet
	// current is the Deployment's ReplicaSet of its current template, when
	// it has one (no new revision for the Rollout to roll out).
	current *appsv1.ReplicaSet
	// depOwned are the Deployment's ReplicaSets.
	depOwned []*appsv1.ReplicaSet
	// ours are the Rollout's ReplicaSets; canary is the one of the
	// Deployment's current template.
	ours   []*appsv1.ReplicaSet
	canary *appsv1.ReplicaSet
	// hash is the pod-template-hash of the Deployment's current template.
	hash string
	// gitRevision of the Deployment's current template.
	gitRevision string

	// requests made by annotation and not handled yet.
	promote, promoteFull, abort, retry bool
	abortAlert                         string
	// handled are the request tokens to record once the reconcile
	// succeeds.
	handled    deliveryv1.HandledRequests
	handledSet bool

	requeue time.Duration
}

// after asks for a reconcile within d (the earliest wins).
func (s *scope) after(d time.Duration) {
	if d < 100*time.Millisecond {
		d = 100 * time.Millisecond
	}
	if s.requeue == 0 || d < s.requeue {
		s.requeue = d
	}
}

// done is returned by a phase that decided the state of the Rollout for
// this reconcile: the phases after it do not run.
var errDone = errors.New("done")

type phase func(context.Context, *scope) error

// Reconcile runs one Rollout.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	ro := &deliveryv1.Rollout{}
	if err := r.client.Get(ctx, req.NamespacedName, ro); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	log := r.log.WithValues("rollout", req.NamespacedName)
	if r.memory.Behind(ro) {
		// The cache has not yet seen this controller's last status write:
		// acting on the state before it would undo what it decided (scale
		// up the canary of a revision it has since aborted, start a step
		// again). The watch event of that write reconciles the Rollout
		// again; the requeue is for a watch that lags longer.
		log.V(1).Info("the cache is behind the last status written; waiting for it", "resourceVersion", ro.ResourceVersion)
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	tenant, err := r.tenantClient(ro)
	if err != nil {
		return ctrl.Result{}, err
	}
	s := &scope{ro: ro, tenant: tenant, log: log, now: r.now(),
		owner: ownership.Owner{APIVersion: deliveryv1.GroupVersion.String(), Kind: "Rollout", Namespace: ro.Namespace, Name: ro.Name, UID: ro.UID}}
	if !ro.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, s)
	}
	if !controllerutil.ContainsFinalizer(ro, Finalizer) {
		base := ro.DeepCopy()
		controllerutil.AddFinalizer(ro, Finalizer)
		if err := r.client.Patch(ctx, ro, client.MergeFrom(base)); err != nil {
			return ctrl.Result{}, fmt.Errorf("cannot add finalizer: %w", err)
		}
	}
	h := patch.NewHelper(r.client, ro)
	conditions.EnsureInitialized(ro)
	stale := false
	defer func() {
		if stale {
			return
		}
		// status.aborted and the handled requests are what later
		// reconciles decide from: a write based on a stale read must not
		// replace them.
		if err := h.Status(ctx, ro, patch.WithOptimisticLock(), patch.WithMemory(r.memory)); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, err)
		}
	}()
	ro.Status.Strategy = strategyName(ro)
	phases := []phase{r.reconcileTarget, r.reconcileService, r.reconcileReplicaSets, r.reconcileRequests, r.reconcileStrategy, r.reconcileCleanup}
	for _, p := range phases {
		err := p(ctx, s)
		if errors.Is(err, errDone) {
			break
		}
		if kitreconcile.IsStale(err) {
			// A ReplicaSet, Service or route changed since the cache
			// read it. Nothing is reported: the status of this reconcile
			// would be half-done (a step started whose replicas were
			// not set), and the next one, from a fresh read, decides the
			// same again.
			stale = true
			log.V(1).Info("an object changed since it was read; starting again from a fresh read", "error", err.Error())
			return ctrl.Result{}, err
		}
		if err != nil {
			return r.fail(s, err)
		}
	}
	ro.Status.ObservedGeneration = ro.Generation
	if s.handledSet {
		ro.Status.HandledRequests = s.handled
	}
	return ctrl.Result{RequeueAfter: s.requeue}, nil
}

// fail records a phase's error: a user error stalls the Rollout, anything
// else is retried with backoff.
func (r *Reconciler) fail(s *scope, err error) (ctrl.Result, error) {
	reason := kitreconcile.ReasonOf(err)
	if reason == "" {
		reason = conditions.ReasonReconcileError
	}
	if kitreconcile.IsTerminal(err) {
		r.degrade(s, reason, err.Error(), true)
		s.ro.Status.ObservedGeneration = s.ro.Generation
		return ctrl.Result{}, err
	}
	conditions.MarkFailed(s.ro, reason, err.Error())
	return ctrl.Result{}, err
}

// degrade marks the Rollout not Ready for a cause named in msg; stalled
// when only the user can fix it. The phase stays Aborted when it is.
func (r *Reconciler) degrade(s *scope, reason, msg string, stalled bool) {
	ro := s.ro
	if ro.Status.Phase != deliveryv1.RolloutPhaseDegraded || ro.Status.Message != msg {
		r.recorder.Eventf(ro, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", eventmsg.Truncate(msg))
	}
	ro.Status.Phase, ro.Status.Message = deliveryv1.RolloutPhaseDegraded, msg
	if stalled {
		conditions.MarkStalled(ro, reason, msg)
	} else {
		conditions.MarkFailed(ro, reason, msg)
	}
	conditions.Remove(ro, deliveryv1.ConditionPaused)
}

func strategyName(ro *deliveryv1.Rollout) string {
	if ro.Spec.Strategy.BlueGreen != nil {
		return "BlueGreen"
	}
	return "Canary"
}

// userError turns a tenant-client error into a terminal error with a reason
// when the tenant may not do something, or returns it for a retry.
func userError(err error, what string) error {
	switch {
	case apierrors.IsForbidden(err):
		return kitreconcile.Terminal(deliveryv1.ReasonAccessDenied, fmt.Errorf("cannot %s: %w", what, err))
	case apierrors.IsInvalid(err):
		return kitreconcile.Terminal(conditions.ReasonReconcileError, fmt.Errorf("cannot %s: %w", what, err))
	}
	return fmt.Errorf("cannot %s: %w", what, err)
}

// event records an event on the Rollout.
func (r *Reconciler) event(s *scope, typ, reason, format string, a ...any) {
	r.recorder.Eventf(s.ro, nil, typ, reason, "Rollout", "%s", eventmsg.Truncate(fmt.Sprintf(format, a...)))
}

// finalize gives the Deployment back and releases Service selectors, then
// drops the finalizer. ReplicaSets and Services the Rollout created are
// garbage collected after it.
func (r *Reconciler) finalize(ctx context.Context, s *scope) error {
	ro := s.ro
	if !controllerutil.ContainsFinalizer(ro, Finalizer) {
		return nil
	}
	if ro.Spec.TargetRef.Kind == "Deployment" {
		if err := r.releaseDeployment(ctx, s); err != nil && !apierrors.IsForbidden(err) {
			return err
		}
	}
	for _, name := range []string{ro.Spec.Service, previewServiceName(ro)} {
		if name == "" || ro.Spec.Strategy.BlueGreen == nil {
			continue
		}
		if err := r.releaseSelector(ctx, s, name); err != nil && !apierrors.IsForbidden(err) {
			return err
		}
	}
	base := ro.DeepCopy()
	controllerutil.RemoveFinalizer(ro, Finalizer)
	if err := r.client.Patch(ctx, ro, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cannot remove finalizer: %w", err)
	}
	r.memory.Forget(ro.UID)
	return nil
}

// now is the scope's clock as a metav1.Time.
func (s *scope) metaNow() *metav1.Time { t := metav1.NewTime(s.now); return &t }
