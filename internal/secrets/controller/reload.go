package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/kit/ssa"
)

// ReloadFieldManager writes the secret-hash annotation on workloads' pod
// templates, and nothing else.
const ReloadFieldManager = "strata/secrets-reload"

// EventReloading is the event reason on a workload whose pod template got a
// new secret hash.
const EventReloading = "Reloading"

// workloadKind is a kind with a pod template that can be reloaded.
type workloadKind struct {
	name string
	new  func() client.Object
}

func (w workloadKind) list() client.ObjectList {
	switch w.new().(type) {
	case *appsv1.Deployment:
		return &appsv1.DeploymentList{}
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSetList{}
	default:
		return &appsv1.DaemonSetList{}
	}
}

func podTemplate(o client.Object) *corev1.PodTemplateSpec {
	switch w := o.(type) {
	case *appsv1.Deployment:
		return &w.Spec.Template
	case *appsv1.StatefulSet:
		return &w.Spec.Template
	case *appsv1.DaemonSet:
		return &w.Spec.Template
	}
	return nil
}

func items(l client.ObjectList) []client.Object {
	var out []client.Object
	switch x := l.(type) {
	case *appsv1.DeploymentList:
		for i := range x.Items {
			out = append(out, &x.Items[i])
		}
	case *appsv1.StatefulSetList:
		for i := range x.Items {
			out = append(out, &x.Items[i])
		}
	case *appsv1.DaemonSetList:
		for i := range x.Items {
			out = append(out, &x.Items[i])
		}
	}
	return out
}

// applyHash is the apply configuration that sets only the hash annotation.
func applyHash(o client.Object, hash string) runtime.ApplyConfiguration {
	tpl := corev1ac.PodTemplateSpec().WithAnnotations(map[string]string{secretsv1.SecretHashAnnotation: hash})
	switch o.(type) {
	case *appsv1.Deployment:
		return appsv1ac.Deployment(o.GetName(), o.GetNamespace()).WithSpec(appsv1ac.DeploymentSpec().WithTemplate(tpl))
	case *appsv1.StatefulSet:
		return appsv1ac.StatefulSet(o.GetName(), o.GetNamespace()).WithSpec(appsv1ac.StatefulSetSpec().WithTemplate(tpl))
	default:
		return appsv1ac.DaemonSet(o.GetName(), o.GetNamespace()).WithSpec(appsv1ac.DaemonSetSpec().WithTemplate(tpl))
	}
}

func reloading(o client.Object) bool {
	return o.GetAnnotations()[secretsv1.ReloadAnnotation] == "true"
}

// ReferencedSecrets lists the Secrets a pod spec reads (volumes, projected
// volumes, env and envFrom of every container), sorted.
func ReferencedSecrets(spec *corev1.PodSpec) []string {
	set := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			set[v.Secret.SecretName] = true
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					set[s.Secret.Name] = true
				}
			}
		}
	}
	cs := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range cs {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				set[e.ValueFrom.SecretKeyRef.Name] = true
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				set[e.SecretRef.Name] = true
			}
		}
	}
	delete(set, "")
	return sortedKeys(set)
}

type reloadReconciler struct {
	client   client.Client
	kind     workloadKind
	recorder events.EventRecorder
}

func setupReload(mgr ctrl.Manager, c client.Client, w workloadKind, workers int) error {
	r := &reloadReconciler{client: c, kind: w, recorder: mgr.GetEventRecorder("strata-secrets-reload")}
	return ctrl.NewControllerManagedBy(mgr).Named("reload-"+w.name+".secrets.strata.dev").
		For(w.new(), builder.WithPredicates(predicate.NewPredicateFuncs(reloading))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.forSecret),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
				return o.GetLabels()[secretsv1.ManagedByLabel] == secretsv1.ManagedByValue
			}))).
		WithOptions(controller.Options{RateLimiter: kitreconcile.RateLimiter(), MaxConcurrentReconciles: workers}).
		Complete(r)
}

// forSecret wakes the reloading workloads of the Secret's namespace that
// use it.
func (r *reloadReconciler) forSecret(ctx context.Context, s client.Object) []reconcile.Request {
	l := r.kind.list()
	if err := r.client.List(ctx, l, client.InNamespace(s.GetNamespace())); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, o := range items(l) {
		if !reloading(o) {
			continue
		}
		for _, n := range ReferencedSecrets(&podTemplate(o).Spec) {
			if n == s.GetName() {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}})
				break
			}
		}
	}
	return out
}

// Reconcile stamps the hash of the synced Secrets a reloading workload uses
// on its pod template, so a rotated value rolls its pods. Only Secrets an
// ExternalSecret wrote count, through their salted data hash: values are
// never read here.
func (r *reloadReconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	o := r.kind.new()
	if err := r.client.Get(ctx, req.NamespacedName, o); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !reloading(o) || !o.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, nil
	}
	tpl := podTemplate(o)
	var parts, names []string
	for _, n := range ReferencedSecrets(&tpl.Spec) {
		s := &corev1.Secret{}
		if err := r.client.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: n}, s); err != nil {
			if client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, fmt.Errorf("cannot read Secret %s/%s: %w", o.GetNamespace(), n, err)
			}
			continue
		}
		if s.Labels[secretsv1.ManagedByLabel] != secretsv1.ManagedByValue {
			continue
		}
		parts = append(parts, n+"="+s.Annotations[secretsv1.DataHashAnnotation])
		names = append(names, n)
	}
	cur := tpl.Annotations[secretsv1.SecretHashAnnotation]
	if len(parts) == 0 && cur == "" {
		return ctrl.Result{}, nil
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, ",")))
	hash := hex.EncodeToString(sum[:])[:32]
	if cur == hash {
		return ctrl.Result{}, nil
	}
	if err := ssa.ApplyConfig(ctx, r.client, applyHash(o, hash), ssa.Options{FieldManager: ReloadFieldManager, Policy: ssa.Force}); err != nil {
		return ctrl.Result{}, fmt.Errorf("cannot stamp the secret hash on %s %s/%s: %w", r.kind.name, o.GetNamespace(), o.GetName(), err)
	}
	sort.Strings(names)
	if cur != "" {
		r.recorder.Eventf(o, nil, corev1.EventTypeNormal, EventReloading, "Reload", "%s", eventmsg.List("pod template updated: synced Secret(s) changed: ", names))
	}
	ctrl.LoggerFrom(ctx).V(1).Info("stamped secret hash", "workload", req.NamespacedName, "secrets", names)
	return ctrl.Result{}, nil
}
