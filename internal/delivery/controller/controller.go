package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/delivery/analysis"
	"github.com/strata-dev/strata/internal/kit/egress"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	"github.com/strata-dev/strata/internal/kit/patch"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/kit/tenant"
)

// Options configure the analysis controller.
type Options struct {
	// DefaultServiceAccount is impersonated, in each run's namespace, by
	// runs without spec.serviceAccountName (the manager's
	// --default-service-account); empty means the manager's own rights.
	DefaultServiceAccount string
	// Workers is the number of runs reconciled at once.
	Workers int
	// HTTPClient takes Prometheus and web measurements; nil means a client
	// that does not follow redirects to other hosts' credentials and never
	// connects into Egress.
	HTTPClient *http.Client
	// Egress is the networks measurements may not connect to: a run's
	// metrics are its author's, and a web metric's value is shown in the
	// run's status (the manager's --egress-denied-networks).
	Egress egress.Policy
}

// Reconciler runs AnalysisRuns.
type Reconciler struct {
	client   client.Client
	recorder events.EventRecorder
	log      logr.Logger
	eval     *analysis.Evaluator
	http     *http.Client
	opts     Options

	clients *tenant.Clients // acting as the tenant
}

// Setup registers the AnalysisRun controller with mgr.
func Setup(mgr ctrl.Manager, o Options) error {
	ev, err := analysis.NewEvaluator()
	if err != nil {
		return err
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: o.Egress.Guard(http.DefaultTransport.(*http.Transport).Clone())}
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	r := &Reconciler{
		client:   mgr.GetClient(),
		recorder: mgr.GetEventRecorder("strata-analysis"),
		log:      mgr.GetLogger().WithName("analysisrun"),
		eval:     ev,
		http:     hc,
		opts:     o,
		clients:  tenant.NewClients(mgr.GetConfig(), mgr.GetScheme(), mgr.GetRESTMapper()),
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&deliveryv1.AnalysisRun{}).
		Owns(&batchv1.Job{}).
		WithOptions(controller.Options{RateLimiter: kitreconcile.RateLimiter(), MaxConcurrentReconciles: o.Workers}).
		Named("analysisrun").
		Complete(r)
}

// serviceAccountUser is the user a run acts as: its serviceAccountName, else
// the manager's default service account, in the run's namespace.
func serviceAccountUser(run *deliveryv1.AnalysisRun, def string) string {
	return tenant.User(run.Namespace, run.Spec.ServiceAccountName, def)
}

// tenantClient is a client acting as the run's service account, or the
// manager's API client (uncached, so Secrets are never cached) without one.
func (r *Reconciler) tenantClient(run *deliveryv1.AnalysisRun) (client.Client, error) {
	return r.clients.For(serviceAccountUser(run, r.opts.DefaultServiceAccount))
}

// Reconcile takes the measurements that are due and decides the verdict.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	run := &deliveryv1.AnalysisRun{}
	if err := r.client.Get(ctx, req.NamespacedName, run); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !run.DeletionTimestamp.IsZero() || run.Status.Completed() {
		return ctrl.Result{}, nil
	}
	log := r.log.WithValues("analysisRun", req.NamespacedName)
	h := patch.NewHelper(r.client, run)
	conditions.EnsureInitialized(run)
	defer func() {
		// Measurements are what later verdicts are counted from: a write
		// based on a stale read must not replace newer ones.
		if err := h.Status(ctx, run, patch.WithOptimisticLock()); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, err)
		}
	}()
	if run.Status.StartedAt == nil {
		now := metav1.Now()
		run.Status.StartedAt = &now
		run.Status.Phase = deliveryv1.PhaseRunning
	}
	tenant, err := r.tenantClient(run)
	if err != nil {
		return ctrl.Result{}, err
	}
	res, err := r.resolve(ctx, run, tenant)
	if err != nil {
		if !isInvalid(err) {
			return ctrl.Result{}, err
		}
		r.complete(ctx, run, tenant, deliveryv1.PhaseError, err.Error())
		r.recorder.Eventf(run, nil, corev1.EventTypeWarning, deliveryv1.EventInvalidSpec, "Resolve", "%s", eventmsg.Truncate(err.Error()))
		log.Info("analysis run cannot start", "error", err.Error())
		return ctrl.Result{}, nil
	}
	next, err := r.measureDue(ctx, run, tenant, res)
	if err != nil {
		return ctrl.Result{}, err
	}
	phases := make([]string, 0, len(res.metrics))
	decider := ""
	for _, m := range res.metrics {
		mr := resultOf(run, m.Name)
		phases = append(phases, mr.Phase)
		if decider == "" && mr.Phase != deliveryv1.PhaseRunning && mr.Phase != deliveryv1.PhaseSuccessful {
			decider = fmt.Sprintf("metric %s: %s", m.Name, mr.Message)
		}
	}
	phase := analysis.Worst(phases...)
	switch {
	case phase == deliveryv1.PhaseRunning && run.Spec.Terminate:
		r.complete(ctx, run, tenant, deliveryv1.PhaseSuccessful, "terminated before every metric was decided; no metric failed")
		conditions.Set(run, conditions.Ready, metav1.ConditionTrue, deliveryv1.ReasonTerminated, run.Status.Message)
		return ctrl.Result{}, nil
	case phase == deliveryv1.PhaseRunning:
		msg := "measuring " + fmt.Sprint(len(res.metrics)) + " metrics"
		run.Status.Phase = deliveryv1.PhaseRunning
		run.Status.Message = msg
		conditions.MarkProgressing(run, deliveryv1.ReasonRunning, msg)
		run.Status.ObservedGeneration = run.Generation
		wait := time.Until(next)
		if wait < 100*time.Millisecond {
			wait = 100 * time.Millisecond
		}
		return ctrl.Result{RequeueAfter: wait}, nil
	case phase == deliveryv1.PhaseSuccessful:
		r.complete(ctx, run, tenant, phase, fmt.Sprintf("all %d metrics successful", len(res.metrics)))
	default:
		r.complete(ctx, run, tenant, phase, decider)
	}
	return ctrl.Result{}, nil
}

// complete records the verdict, stops Jobs still running and reports it.
func (r *Reconciler) complete(ctx context.Context, run *deliveryv1.AnalysisRun, tenant client.Client, phase, msg string) {
	now := metav1.Now()
	run.Status.Phase, run.Status.Message, run.Status.CompletedAt = phase, msg, &now
	run.Status.ObservedGeneration = run.Generation
	for i := range run.Status.MetricResults {
		mr := &run.Status.MetricResults[i]
		if mr.Phase == deliveryv1.PhaseRunning {
			mr.Message = "not decided when the run ended"
		}
		if n := len(mr.Measurements); n > 0 && mr.Measurements[n-1].Phase == deliveryv1.PhaseRunning {
			r.stopJob(ctx, run, tenant, mr.Measurements[n-1].Query)
			mr.Measurements = mr.Measurements[:n-1]
		}
	}
	reason := map[string]string{
		deliveryv1.PhaseSuccessful:   deliveryv1.ReasonSuccessful,
		deliveryv1.PhaseFailed:       deliveryv1.ReasonFailed,
		deliveryv1.PhaseInconclusive: deliveryv1.ReasonInconclusive,
		deliveryv1.PhaseError:        deliveryv1.ReasonError,
	}[phase]
	if phase == deliveryv1.PhaseSuccessful {
		conditions.MarkReady(run, reason, msg)
	} else {
		conditions.MarkStalled(run, reason, msg)
	}
	typ := corev1.EventTypeNormal
	if phase != deliveryv1.PhaseSuccessful {
		typ = corev1.EventTypeWarning
	}
	r.recorder.Eventf(run, nil, typ, deliveryv1.EventAnalysisCompleted, "Analyze", "%s", eventmsg.Truncate(phase+": "+msg))
	runsCompleted.WithLabelValues(run.Namespace, phase).Inc()
}

func resultOf(run *deliveryv1.AnalysisRun, name string) *deliveryv1.MetricResult {
	for i := range run.Status.MetricResults {
		if run.Status.MetricResults[i].Name == name {
			return &run.Status.MetricResults[i]
		}
	}
	run.Status.MetricResults = append(run.Status.MetricResults, deliveryv1.MetricResult{Name: name, Phase: deliveryv1.PhaseRunning})
	return &run.Status.MetricResults[len(run.Status.MetricResults)-1]
}

// measureDue takes every measurement that is due (or polls a Job in
// flight) and returns when the next one is.
func (r *Reconciler) measureDue(ctx context.Context, run *deliveryv1.AnalysisRun, tenant client.Client, res *resolved) (time.Time, error) {
	next := time.Now().Add(time.Hour)
	for _, m := range res.metrics {
		mr := resultOf(run, m.Name)
		if mr.Phase != deliveryv1.PhaseRunning {
			continue
		}
		if run.Spec.Terminate {
			continue
		}
		inFlight := len(mr.Measurements) > 0 && mr.Measurements[len(mr.Measurements)-1].Phase == deliveryv1.PhaseRunning
		due := analysis.NextAt(m, mr, run.Status.StartedAt.Time)
		if !inFlight && time.Now().Before(due) {
			if due.Before(next) {
				next = due
			}
			continue
		}
		meas, err := r.measure(ctx, run, tenant, m, res.args, mr)
		if err != nil {
			return next, err
		}
		analysis.Record(mr, meas)
		if meas.Phase == deliveryv1.PhaseRunning {
			if t := time.Now().Add(time.Second); t.Before(next) {
				next = t
			}
			continue
		}
		measurementsTotal.WithLabelValues(run.Namespace, m.Name, providerName(m), meas.Phase).Inc()
		if meas.Phase != deliveryv1.PhaseSuccessful {
			r.recorder.Eventf(run, nil, corev1.EventTypeWarning, deliveryv1.EventMeasurementFailed, "Measure", "%s",
				eventmsg.Truncate(fmt.Sprintf("metric %s measurement %s: %s", m.Name, meas.Phase, meas.Message)))
		}
		v := analysis.Assess(analysis.LimitsOf(m), mr)
		mr.Phase, mr.Message = v.Phase, v.Message
		if v.Phase == deliveryv1.PhaseRunning {
			if due := analysis.NextAt(m, mr, run.Status.StartedAt.Time); due.Before(next) {
				next = due
			}
		}
	}
	return next, nil
}

func providerName(m deliveryv1.Metric) string {
	switch {
	case m.Provider.Prometheus != nil:
		return "prometheus"
	case m.Provider.Web != nil:
		return "web"
	case m.Provider.Job != nil:
		return "job"
	case m.Provider.Kubernetes != nil:
		return "kubernetes"
	}
	return "none"
}

// jobName is the name of the n-th measurement Job of a metric.
func jobName(run *deliveryv1.AnalysisRun, metric string, n int32) string {
	name := fmt.Sprintf("%s-%s-%d", run.Name, metric, n)
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return fmt.Sprintf("%s-%s", name[:52], hex.EncodeToString(sum[:])[:10])
}
