package rollout

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"

	"github.com/strata-dev/strata/internal/kit/podtemplate"
)

// reconcileTarget reads the target Deployment as the tenant. A target that
// is not a Deployment is refused; one that does not exist (yet) leaves the
// Rollout not Ready until it does (the Deployment watch wakes it).
func (r *Reconciler) reconcileTarget(ctx context.Context, s *scope) error {
	ro := s.ro
	ref := ro.Spec.TargetRef
	if ref.Kind != "Deployment" || (ref.APIVersion != "" && ref.APIVersion != "apps/v1") {
		return kitreconcile.Terminal(deliveryv1.ReasonTargetUnsupported,
			fmt.Errorf("targetRef %s %s/%s is not supported: a Rollout targets an apps/v1 Deployment (StatefulSets and DaemonSets are out of scope)", ref.Kind, ro.Namespace, ref.Name))
	}
	dep := &appsv1.Deployment{}
	if err := s.tenant.Get(ctx, types.NamespacedName{Namespace: ro.Namespace, Name: ref.Name}, dep); err != nil {
		if apierrors.IsNotFound(err) {
			r.degrade(s, deliveryv1.ReasonTargetNotFound, fmt.Sprintf("Deployment %s/%s not found; no traffic changed", ro.Namespace, ref.Name), false)
			return errDone
		}
		return userError(err, fmt.Sprintf("read Deployment %s/%s", ro.Namespace, ref.Name))
	}
	if other := dep.Annotations[deliveryv1.RolloutAnnotation]; other != "" && other != ro.Name {
		return kitreconcile.Terminal(deliveryv1.ReasonResourceConflict,
			fmt.Errorf("Deployment %s/%s is already rolled out by Rollout %s", ro.Namespace, dep.Name, other))
	}
	s.dep = dep
	s.replicas = desiredReplicas(dep)
	s.hash = podtemplate.Hash(&dep.Spec.Template)
	s.gitRevision = dep.Annotations[deliveryv1.GitRevisionAnnotation]
	return nil
}

// reconcileService checks that spec.service (and the preview Service)
// exist and select the Deployment's pods.
func (r *Reconciler) reconcileService(ctx context.Context, s *scope) error {
	names := []string{s.ro.Spec.Service}
	if p := previewServiceName(s.ro); p != "" {
		names = append(names, p)
	}
	for i, name := range names {
		svc := &corev1.Service{}
		if err := s.tenant.Get(ctx, types.NamespacedName{Namespace: s.ro.Namespace, Name: name}, svc); err != nil {
			if apierrors.IsNotFound(err) {
				r.degrade(s, deliveryv1.ReasonServiceNotFound, fmt.Sprintf("Service %s/%s not found; no traffic changed", s.ro.Namespace, name), false)
				return errDone
			}
			return userError(err, fmt.Sprintf("read Service %s/%s", s.ro.Namespace, name))
		}
		if !selectorMatches(svc.Spec.Selector, s.dep.Spec.Template.Labels) {
			r.degrade(s, deliveryv1.ReasonServiceSelectsNoPods,
				fmt.Sprintf("Service %s/%s does not select the pods of Deployment %s (selector %v, pod labels %v); no traffic changed",
					s.ro.Namespace, name, s.dep.Name, svc.Spec.Selector, s.dep.Spec.Template.Labels), false)
			return errDone
		}
		if i == 0 {
			s.svc = svc
		}
	}
	msg, err := r.checkRoutes(ctx, s)
	if err != nil {
		return err
	}
	if msg != "" {
		r.degrade(s, deliveryv1.ReasonRouteNotReferencingService, msg, false)
		s.after(routeResync)
		return errDone
	}
	return nil
}

func previewServiceName(ro *deliveryv1.Rollout) string {
	if bg := ro.Spec.Strategy.BlueGreen; bg != nil {
		return bg.PreviewService
	}
	return ""
}

// setPaused applies spec.paused and RolloutAnnotation on the Deployment with
// the Rollout's field manager, as the tenant; nothing else of the
// Deployment is the Rollout's.
func (r *Reconciler) setPaused(ctx context.Context, s *scope, paused bool) error {
	if s.dep.Spec.Paused == paused && s.dep.Annotations[deliveryv1.RolloutAnnotation] == s.ro.Name {
		return nil
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": s.dep.Name, "namespace": s.dep.Namespace,
			"annotations": map[string]any{deliveryv1.RolloutAnnotation: s.ro.Name}},
		"spec": map[string]any{"paused": paused},
	}}
	if err := s.tenant.Patch(ctx, u, client.Apply, client.FieldOwner(s.owner.FieldManager()), client.ForceOwnership); err != nil { //nolint:staticcheck // unstructured SSA
		return userError(err, fmt.Sprintf("set spec.paused=%v on Deployment %s/%s", paused, s.dep.Namespace, s.dep.Name))
	}
	s.dep.Spec.Paused = paused
	s.log.V(1).Info("deployment paused", "deployment", s.dep.Name, "paused", paused)
	return nil
}

// releaseDeployment gives up the Rollout's fields of the Deployment:
// spec.paused goes back to its default (false) unless another writer sets
// it, and the annotation goes away.
func (r *Reconciler) releaseDeployment(ctx context.Context, s *scope) error {
	dep := &appsv1.Deployment{}
	if err := s.tenant.Get(ctx, types.NamespacedName{Namespace: s.ro.Namespace, Name: s.ro.Spec.TargetRef.Name}, dep); err != nil {
		return client.IgnoreNotFound(err)
	}
	if dep.Annotations[deliveryv1.RolloutAnnotation] != s.ro.Name {
		return nil
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": dep.Name, "namespace": dep.Namespace},
	}}
	if err := s.tenant.Patch(ctx, u, client.Apply, client.FieldOwner(s.owner.FieldManager()), client.ForceOwnership); err != nil { //nolint:staticcheck // unstructured SSA
		return fmt.Errorf("cannot release Deployment %s/%s: %w", dep.Namespace, dep.Name, err)
	}
	return nil
}

// setSelectorHash sets the pod-template-hash key of a Service's selector,
// with the Rollout's field manager. A Service's selector is an atomic map
// for server-side apply (Kubernetes #97989): whoever applies it sets all of
// it. So the Rollout applies the live selector's other keys with its hash,
// never the hash alone, which would leave the Service selecting every pod of
// that hash and none of the user's keys. The writer of the Service (a Sync)
// keeps the hash in what it applies in turn (gitops inputs.KeepRolloutFields);
// a Service whose selector changes wakes the Rollout (its Service watch),
// which sets its key again if a writer took it out.
func (r *Reconciler) setSelectorHash(ctx context.Context, s *scope, name, hash string) (bool, error) {
	svc := &corev1.Service{}
	if err := s.tenant.Get(ctx, types.NamespacedName{Namespace: s.ro.Namespace, Name: name}, svc); err != nil {
		return false, userError(err, fmt.Sprintf("read Service %s/%s", s.ro.Namespace, name))
	}
	if svc.Spec.Selector[deliveryv1.PodTemplateHashLabel] == hash {
		return false, nil
	}
	sel := selectorWith(svc.Spec.Selector, hash)
	if err := r.applySelector(ctx, s, svc, sel); err != nil {
		return false, userError(err, fmt.Sprintf("set the selector of Service %s/%s", s.ro.Namespace, name))
	}
	return true, nil
}

// releaseSelector takes the Rollout's pod-template-hash key out of a
// Service's selector and leaves the user's keys. The Rollout's field manager
// keeps applying those keys: a selector nobody applies any more would be
// removed, and the Service would select no pods until its writer applied it
// again.
func (r *Reconciler) releaseSelector(ctx context.Context, s *scope, name string) error {
	svc := &corev1.Service{}
	if err := s.tenant.Get(ctx, types.NamespacedName{Namespace: s.ro.Namespace, Name: name}, svc); err != nil {
		return client.IgnoreNotFound(err)
	}
	if _, ok := svc.Spec.Selector[deliveryv1.PodTemplateHashLabel]; !ok {
		return nil
	}
	if err := r.applySelector(ctx, s, svc, selectorWith(svc.Spec.Selector, "")); err != nil {
		return fmt.Errorf("cannot release the selector of Service %s/%s: %w", s.ro.Namespace, name, err)
	}
	return nil
}

// selectorWith is sel with its pod-template-hash key set to hash, or
// without it when hash is empty; sel is not changed.
func selectorWith(sel map[string]string, hash string) map[string]any {
	out := map[string]any{}
	for k, v := range sel {
		if k != deliveryv1.PodTemplateHashLabel {
			out[k] = v
		}
	}
	if hash != "" {
		out[deliveryv1.PodTemplateHashLabel] = hash
	}
	return out
}

// applySelector applies sel as the whole selector of svc, as the Service
// was read: the apply carries its UID and resourceVersion, so a Service
// changed since (its writer applied another selector) fails with a conflict
// and the next reconcile starts from a fresh read, instead of putting back
// the keys that writer just removed.
func (r *Reconciler) applySelector(ctx context.Context, s *scope, svc *corev1.Service, sel map[string]any) error {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": svc.Name, "namespace": svc.Namespace,
			"uid": string(svc.UID), "resourceVersion": svc.ResourceVersion},
		"spec": map[string]any{"selector": sel},
	}}
	return s.tenant.Patch(ctx, u, client.Apply, client.FieldOwner(s.owner.FieldManager()), client.ForceOwnership) //nolint:staticcheck // unstructured SSA
}
