package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/delivery/analysis"
)

// invalidError is a run that cannot start until its spec (or a template,
// Secret or ConfigMap it names) changes.
type invalidError struct{ err error }

func (e *invalidError) Error() string { return e.err.Error() }
func (e *invalidError) Unwrap() error { return e.err }

func invalid(format string, a ...any) error { return &invalidError{fmt.Errorf(format, a...)} }

// resolved is a run's metrics and arguments.
type resolved struct {
	metrics []deliveryv1.Metric
	args    analysis.Args
}

// resolve gathers the run's templates' metrics and its own, and reads every
// argument: templates from the manager's cache (a run names only templates
// of its namespace or cluster templates), Secrets, ConfigMaps and the
// subject with tenant (the run's service account).
func (r *Reconciler) resolve(ctx context.Context, run *deliveryv1.AnalysisRun, tenant client.Reader) (*resolved, error) {
	var metrics []deliveryv1.Metric
	var decl []deliveryv1.Argument
	for _, ref := range run.Spec.Templates {
		var spec deliveryv1.AnalysisTemplateSpec
		if ref.ClusterScope {
			t := &deliveryv1.ClusterAnalysisTemplate{}
			if err := r.client.Get(ctx, types.NamespacedName{Name: ref.Name}, t); err != nil {
				return nil, invalid("ClusterAnalysisTemplate %s: %w", ref.Name, err)
			}
			spec = t.Spec
		} else {
			t := &deliveryv1.AnalysisTemplate{}
			if err := r.client.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: ref.Name}, t); err != nil {
				return nil, invalid("AnalysisTemplate %s: %w", ref.Name, err)
			}
			spec = t.Spec
		}
		metrics = append(metrics, spec.Metrics...)
		decl = append(decl, spec.Args...)
	}
	metrics = append(metrics, run.Spec.Metrics...)
	seen := map[string]bool{}
	for _, m := range metrics {
		if seen[m.Name] {
			return nil, invalid("metric %s is defined twice (in two templates, or a template and the run)", m.Name)
		}
		seen[m.Name] = true
		if err := r.eval.Check(m); err != nil {
			return nil, invalid("%w", err)
		}
	}
	// The run's args win over the templates'.
	byName := map[string]deliveryv1.Argument{}
	var order []string
	for _, a := range append(decl, run.Spec.Args...) {
		if _, ok := byName[a.Name]; !ok {
			order = append(order, a.Name)
		}
		prev, had := byName[a.Name]
		if had && a.Value == nil && a.ValueFrom == nil {
			a = prev // a declaration without value does not erase one
		}
		byName[a.Name] = a
	}
	args := analysis.Args{Values: map[string]string{}, Secret: map[string]bool{}}
	for _, name := range order {
		a := byName[name]
		v, secret, err := r.argValue(ctx, run, tenant, a)
		if err != nil {
			return nil, err
		}
		args.Values[name] = v
		args.Secret[name] = secret
	}
	for _, m := range metrics {
		for _, ref := range argRefs(m) {
			if _, ok := args.Values[ref]; !ok {
				return nil, invalid("metric %s uses argument %s, which is not defined", m.Name, ref)
			}
		}
	}
	return &resolved{metrics: metrics, args: args}, nil
}

// argRefs lists the arguments a metric's provider refers to.
func argRefs(m deliveryv1.Metric) []string {
	var s []string
	p := m.Provider
	if p.Prometheus != nil {
		s = append(s, p.Prometheus.Query)
		for _, h := range p.Prometheus.Headers {
			s = append(s, h.Value)
		}
	}
	if p.Web != nil {
		s = append(s, p.Web.URL, p.Web.Body)
		for _, h := range p.Web.Headers {
			s = append(s, h.Value)
		}
	}
	if p.Job != nil {
		if b, err := json.Marshal(p.Job.Spec); err == nil {
			s = append(s, string(b))
		}
	}
	var out []string
	for _, x := range s {
		out = append(out, analysis.Refs(x)...)
	}
	return out
}

// argValue reads one argument. A read the run's service account may not
// make is an error naming the argument and the object, never the value.
func (r *Reconciler) argValue(ctx context.Context, run *deliveryv1.AnalysisRun, tenant client.Reader, a deliveryv1.Argument) (string, bool, error) {
	switch {
	case a.Value != nil:
		return *a.Value, false, nil
	case a.ValueFrom == nil:
		return "", false, invalid("argument %s has no value: the run must give it", a.Name)
	case a.ValueFrom.SecretKeyRef != nil:
		ref := a.ValueFrom.SecretKeyRef
		s := &corev1.Secret{}
		if err := tenant.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: ref.Name}, s); err != nil {
			return "", true, invalid("argument %s: cannot read Secret %s/%s: %w", a.Name, run.Namespace, ref.Name, err)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			return "", true, invalid("argument %s: Secret %s/%s has no key %q", a.Name, run.Namespace, ref.Name, ref.Key)
		}
		return string(v), true, nil
	case a.ValueFrom.ConfigMapKeyRef != nil:
		ref := a.ValueFrom.ConfigMapKeyRef
		cm := &corev1.ConfigMap{}
		if err := tenant.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: ref.Name}, cm); err != nil {
			return "", false, invalid("argument %s: cannot read ConfigMap %s/%s: %w", a.Name, run.Namespace, ref.Name, err)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			return "", false, invalid("argument %s: ConfigMap %s/%s has no key %q", a.Name, run.Namespace, ref.Name, ref.Key)
		}
		return v, false, nil
	case a.ValueFrom.FieldRef != nil:
		sub := run.Spec.Subject
		if sub == nil {
			return "", false, invalid("argument %s reads a field of the subject, but the run has no spec.subject", a.Name)
		}
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(sub.APIVersion)
		u.SetKind(sub.Kind)
		if err := tenant.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: sub.Name}, u); err != nil {
			return "", false, invalid("argument %s: cannot read %s %s/%s: %w", a.Name, sub.Kind, run.Namespace, sub.Name, err)
		}
		path := a.ValueFrom.FieldRef.FieldPath
		if !strings.HasPrefix(strings.TrimSpace(path), "{") {
			path = "{" + path + "}"
		}
		jp := jsonpath.New(a.Name)
		if err := jp.Parse(path); err != nil {
			return "", false, invalid("argument %s: invalid fieldPath %q: %w", a.Name, a.ValueFrom.FieldRef.FieldPath, err)
		}
		var b strings.Builder
		if err := jp.Execute(&b, u.Object); err != nil {
			return "", false, invalid("argument %s: fieldPath %q: %w", a.Name, a.ValueFrom.FieldRef.FieldPath, err)
		}
		return b.String(), false, nil
	}
	return "", false, invalid("argument %s: valueFrom names nothing", a.Name)
}

func isInvalid(err error) bool {
	var ie *invalidError
	return errors.As(err, &ie)
}
