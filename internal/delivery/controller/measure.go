package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/delivery/analysis"
	"github.com/strata-dev/strata/internal/kit/health"
)

// Labels on the Jobs a run creates.
const (
	LabelRun    = "delivery.strata.dev/analysis-run"
	LabelMetric = "delivery.strata.dev/metric"
)

// measure takes one measurement of m (or polls the Job in flight). Errors
// of the measured system are Error measurements, never a pass; only
// failures to talk to the API server are returned.
func (r *Reconciler) measure(ctx context.Context, run *deliveryv1.AnalysisRun, tenant client.Client, m deliveryv1.Metric, args analysis.Args, mr *deliveryv1.MetricResult) (deliveryv1.Measurement, error) {
	start := analysis.Now()
	meas := deliveryv1.Measurement{StartedAt: start}
	finish := func(value any, noData bool, err error) (deliveryv1.Measurement, error) {
		now := analysis.Now()
		meas.FinishedAt = &now
		if err != nil {
			meas.Phase, meas.Message = deliveryv1.PhaseError, err.Error()
			return meas, nil
		}
		if !noData {
			meas.Value = analysis.FormatValue(value)
		}
		v := r.eval.Evaluate(m, value, noData)
		meas.Phase, meas.Message = v.Phase, v.Message
		return meas, nil
	}
	began := time.Now()
	observe := func(p string) { measurementSeconds.WithLabelValues(p).Observe(time.Since(began).Seconds()) }
	switch {
	case m.Provider.Prometheus != nil:
		p := m.Provider.Prometheus
		q, shown, err := args.Substitute(p.Query, analysis.PromQL)
		meas.Query = shown
		if err != nil {
			return finish(nil, false, err)
		}
		req, err := r.httpRequest(ctx, run, tenant, args, p.Headers, p.Authentication, p.Timeout)
		if err != nil {
			return finish(nil, false, err)
		}
		v, noData, err := analysis.Prometheus(ctx, r.http, p.Address, q, req)
		observe("prometheus")
		return finish(v, noData, err)
	case m.Provider.Web != nil:
		w := m.Provider.Web
		u, shown, err := args.Substitute(w.URL, analysis.URL)
		meas.Query = shown
		if err != nil {
			return finish(nil, false, err)
		}
		req, err := r.httpRequest(ctx, run, tenant, args, w.Headers, nil, w.Timeout)
		if err != nil {
			return finish(nil, false, err)
		}
		req.URL, req.Method = u, w.Method
		if req.Body, _, err = args.Substitute(w.Body, analysis.Raw); err != nil {
			return finish(nil, false, err)
		}
		v, noData, err := analysis.Web(ctx, r.http, req, w.JSONPath)
		observe("web")
		return finish(v, noData, err)
	case m.Provider.Kubernetes != nil:
		k := m.Provider.Kubernetes
		meas.Query = fmt.Sprintf("%s %s in %s", k.APIVersion, k.Kind, run.Namespace)
		objs, err := r.liveObjects(ctx, run, tenant, k)
		observe("kubernetes")
		if err != nil {
			return finish(nil, false, err)
		}
		if len(objs) == 0 {
			return finish(nil, true, nil)
		}
		v, err := r.eval.Objects(k.Condition, objs)
		if err != nil {
			return finish(nil, false, fmt.Errorf("condition %q: %w", k.Condition, err))
		}
		return finish(v, false, nil)
	case m.Provider.Job != nil:
		return r.measureJob(ctx, run, tenant, m, args, mr, meas)
	}
	return finish(nil, false, fmt.Errorf("metric %s has no provider", m.Name))
}

// httpRequest builds headers (arguments substituted) and reads the
// credentials Secret as the run's service account.
func (r *Reconciler) httpRequest(ctx context.Context, run *deliveryv1.AnalysisRun, tenant client.Reader, args analysis.Args, headers []deliveryv1.Header, auth *deliveryv1.Authentication, timeout *metav1.Duration) (analysis.Request, error) {
	req := analysis.Request{Headers: map[string]string{}}
	if timeout != nil {
		req.Timeout = timeout.Duration
	}
	for _, h := range headers {
		v, _, err := args.Substitute(h.Value, analysis.Raw)
		if err != nil {
			return req, fmt.Errorf("header %s: %w", h.Name, err)
		}
		req.Headers[h.Name] = v
	}
	if auth != nil {
		s := &corev1.Secret{}
		if err := tenant.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: auth.SecretRef.Name}, s); err != nil {
			return req, fmt.Errorf("cannot read authentication Secret %s: %w", auth.SecretRef.Name, err)
		}
		req.BearerToken = string(s.Data["token"])
		req.Username, req.Password = string(s.Data["username"]), string(s.Data["password"])
		if req.BearerToken == "" && req.Username == "" {
			return req, fmt.Errorf("authentication Secret %s has neither token nor username", auth.SecretRef.Name)
		}
	}
	return req, nil
}

// liveObjects reads the objects a kubernetes metric names, as the run's
// service account, in the run's namespace.
func (r *Reconciler) liveObjects(ctx context.Context, run *deliveryv1.AnalysisRun, tenant client.Reader, k *deliveryv1.KubernetesMetric) ([]any, error) {
	if k.Name != "" {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(k.APIVersion)
		u.SetKind(k.Kind)
		if err := tenant.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: k.Name}, u); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("cannot read %s %s: %w", k.Kind, k.Name, err)
		}
		return []any{u.Object}, nil
	}
	l := &unstructured.UnstructuredList{}
	l.SetAPIVersion(k.APIVersion)
	l.SetKind(k.Kind + "List")
	opts := []client.ListOption{client.InNamespace(run.Namespace)}
	if k.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(k.Selector)
		if err != nil {
			return nil, fmt.Errorf("invalid selector: %w", err)
		}
		opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
	} else {
		opts = append(opts, client.MatchingLabelsSelector{Selector: labels.Everything()})
	}
	if err := tenant.List(ctx, l, opts...); err != nil {
		return nil, fmt.Errorf("cannot list %s: %w", k.Kind, err)
	}
	out := make([]any, 0, len(l.Items))
	for _, it := range l.Items {
		out = append(out, it.Object)
	}
	return out, nil
}

// measureJob creates the measurement's Job as the run's service account, or
// reads the one in flight: Complete is Successful, Failed is Failed.
func (r *Reconciler) measureJob(ctx context.Context, run *deliveryv1.AnalysisRun, tenant client.Client, m deliveryv1.Metric, args analysis.Args, mr *deliveryv1.MetricResult, meas deliveryv1.Measurement) (deliveryv1.Measurement, error) {
	n := len(mr.Measurements)
	if n > 0 && mr.Measurements[n-1].Phase == deliveryv1.PhaseRunning {
		meas = mr.Measurements[n-1]
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("batch/v1")
		u.SetKind("Job")
		if err := tenant.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: meas.Query}, u); err != nil {
			if !apierrors.IsNotFound(err) {
				return meas, err
			}
			now := analysis.Now()
			meas.FinishedAt, meas.Phase, meas.Message = &now, deliveryv1.PhaseError, "Job "+meas.Query+" was deleted before it finished"
			return meas, nil
		}
		h := health.Compute(u)
		now := analysis.Now()
		switch h.Status {
		case health.Current:
			meas.FinishedAt, meas.Phase, meas.Message = &now, deliveryv1.PhaseSuccessful, ""
			meas.Value = "true"
		case health.Failed:
			meas.FinishedAt, meas.Phase, meas.Message = &now, deliveryv1.PhaseFailed, "Job "+meas.Query+" failed: "+h.Message
			meas.Value = "false"
		}
		return meas, nil
	}
	name := jobName(run, m.Name, mr.Count+1)
	meas.Query = name
	meas.Phase = deliveryv1.PhaseRunning
	raw, err := json.Marshal(m.Provider.Job.Spec)
	if err != nil {
		return meas, err
	}
	sub, _, err := args.Substitute(string(raw), analysis.JSON)
	if err != nil {
		now := analysis.Now()
		meas.FinishedAt, meas.Phase, meas.Message = &now, deliveryv1.PhaseError, err.Error()
		return meas, nil
	}
	job := &batchv1.Job{}
	if err := json.Unmarshal([]byte(sub), &job.Spec); err != nil {
		now := analysis.Now()
		meas.FinishedAt, meas.Phase, meas.Message = &now, deliveryv1.PhaseError, fmt.Sprintf("job spec after substitution: %v", err)
		return meas, nil
	}
	job.Name, job.Namespace = name, run.Namespace
	job.Labels = map[string]string{}
	for k, v := range m.Provider.Job.Labels {
		job.Labels[k] = v
	}
	job.Labels[LabelRun], job.Labels[LabelMetric] = run.Name, m.Name
	if job.Spec.BackoffLimit == nil {
		job.Spec.BackoffLimit = ptr.To[int32](0)
	}
	if err := controllerutil.SetControllerReference(run, job, r.client.Scheme()); err != nil {
		return meas, err
	}
	err = tenant.Create(ctx, job)
	if apierrors.IsAlreadyExists(err) {
		// Only a Job this run created may stand for its measurement.
		existing := &batchv1.Job{}
		if err = tenant.Get(ctx, client.ObjectKeyFromObject(job), existing); err == nil && !metav1.IsControlledBy(existing, run) {
			err = fmt.Errorf("a Job of that name exists and was not created by this run")
		}
	}
	if err != nil {
		now := analysis.Now()
		meas.FinishedAt, meas.Phase, meas.Message = &now, deliveryv1.PhaseError, fmt.Sprintf("cannot create Job %s: %v", name, err)
	}
	return meas, nil
}

// stopJob deletes a Job still in flight when the run ends.
func (r *Reconciler) stopJob(ctx context.Context, run *deliveryv1.AnalysisRun, tenant client.Client, name string) {
	job := &batchv1.Job{}
	job.Name, job.Namespace = name, run.Namespace
	if err := tenant.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		r.log.Info("cannot delete Job of a finished run", "job", name, "error", err.Error())
	}
}
