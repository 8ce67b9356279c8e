package rollout

import (
	"context"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/kit/podtemplate"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
)

// reconcileReplicaSets reads the ReplicaSets of the Deployment's selector
// as the tenant and sorts them into the Deployment's (stable and current)
// and the Rollout's (canary).
func (r *Reconciler) reconcileReplicaSets(ctx context.Context, s *scope) error {
	sel, err := metav1.LabelSelectorAsSelector(s.dep.Spec.Selector)
	if err != nil {
		return kitreconcile.Terminal(deliveryv1.ReasonTargetUnsupported, fmt.Errorf("Deployment %s/%s has an invalid selector: %w", s.dep.Namespace, s.dep.Name, err))
	}
	list := &appsv1.ReplicaSetList{}
	if err := s.tenant.List(ctx, list, client.InNamespace(s.ro.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return userError(err, "list ReplicaSets in "+s.ro.Namespace)
	}
	for i := range list.Items {
		rs := &list.Items[i]
		ref := metav1.GetControllerOfNoCopy(rs)
		switch {
		case ref != nil && ref.UID == s.dep.UID:
			s.depOwned = append(s.depOwned, rs)
		case s.owner.Controls(rs):
			s.ours = append(s.ours, rs)
		}
	}
	sort.Slice(s.depOwned, func(i, j int) bool { return newer(s.depOwned[i], s.depOwned[j]) })
	for _, rs := range s.depOwned {
		if s.current == nil && podtemplate.Same(&rs.Spec.Template, &s.dep.Spec.Template) {
			s.current = rs
		}
	}
	// The stable ReplicaSet is the Deployment's with the most replicas
	// (the newest among equals): the one serving while the Deployment is
	// paused.
	for _, rs := range s.depOwned {
		if ptr.Deref(rs.Spec.Replicas, 0) == 0 {
			continue
		}
		if s.stable == nil || ptr.Deref(rs.Spec.Replicas, 0) > ptr.Deref(s.stable.Spec.Replicas, 0) {
			s.stable = rs
		}
	}
	if s.stable == nil && s.current != nil {
		s.stable = s.current
	}
	for _, rs := range s.ours {
		if rs.Labels[deliveryv1.PodTemplateHashLabel] == s.hash && podtemplate.Same(&rs.Spec.Template, &s.dep.Spec.Template) {
			s.canary = rs
		}
	}
	s.ro.Status.StableReplicas = 0
	if s.stable != nil {
		s.ro.Status.StableReplicas = s.stable.Status.ReadyReplicas
	}
	return nil
}

// newer sorts ReplicaSets newest first.
func newer(a, b *appsv1.ReplicaSet) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return b.CreationTimestamp.Before(&a.CreationTimestamp)
	}
	return a.Name > b.Name
}

// stableHash is the pod-template-hash of the stable ReplicaSet's pods.
func (s *scope) stableHash() string {
	if s.stable == nil {
		return ""
	}
	return s.stable.Labels[deliveryv1.PodTemplateHashLabel]
}

// canaryName is the name of the Rollout's ReplicaSet for the Deployment's
// current template, as the Deployment controller names its own.
func (s *scope) canaryName() string {
	name := s.dep.Name
	if max := 253 - len(s.hash) - 1; len(name) > max {
		name = name[:max]
	}
	return name + "-" + s.hash
}

// ensureCanary creates (or scales) the Rollout's ReplicaSet of the
// Deployment's current template to replicas, as the tenant. Its pods carry
// the template's labels plus pod-template-hash, so spec.service selects
// them; its controller is the Rollout, so the Deployment controller does
// not adopt it.
func (r *Reconciler) ensureCanary(ctx context.Context, s *scope, replicas int32) error {
	if s.canary == nil {
		rs := &appsv1.ReplicaSet{}
		err := s.tenant.Get(ctx, client.ObjectKey{Namespace: s.ro.Namespace, Name: s.canaryName()}, rs)
		switch {
		case err == nil:
			// Named as ours but not ours (or of another template).
			return kitreconcile.Terminal(deliveryv1.ReasonResourceConflict,
				fmt.Errorf("ReplicaSet %s/%s exists and belongs to %s, not the Rollout; the Rollout does not modify it", rs.Namespace, rs.Name, ownership.CurrentOwner(rs)))
		case !apierrors.IsNotFound(err):
			return userError(err, "read ReplicaSet "+s.canaryName())
		}
		tmpl := s.dep.Spec.Template.DeepCopy()
		if tmpl.Labels == nil {
			tmpl.Labels = map[string]string{}
		}
		tmpl.Labels[deliveryv1.PodTemplateHashLabel] = s.hash
		sel := s.dep.Spec.Selector.DeepCopy()
		if sel.MatchLabels == nil {
			sel.MatchLabels = map[string]string{}
		}
		sel.MatchLabels[deliveryv1.PodTemplateHashLabel] = s.hash
		lbl := map[string]string{deliveryv1.RolloutNameLabel: s.ro.Name}
		for k, v := range tmpl.Labels {
			lbl[k] = v
		}
		rs = &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.ro.Namespace, Name: s.canaryName(), Labels: lbl,
				Annotations: map[string]string{deliveryv1.GitRevisionAnnotation: s.gitRevision}},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas), MinReadySeconds: s.dep.Spec.MinReadySeconds, Selector: sel, Template: *tmpl},
		}
		if s.gitRevision == "" {
			rs.Annotations = nil
		}
		s.owner.SetMark(rs)
		if err := s.tenant.Create(ctx, rs); err != nil {
			return userError(err, "create ReplicaSet "+rs.Name)
		}
		r.event(s, corev1.EventTypeNormal, deliveryv1.EventNewRevision, "created ReplicaSet %s for revision %s with %d replicas", rs.Name, revisionName(s.hash, s.gitRevision), replicas)
		s.canary = rs
		s.ours = append(s.ours, rs)
		return nil
	}
	return r.scale(ctx, s, s.canary, replicas)
}

// scale sets a ReplicaSet of the Rollout's to replicas. The tenant read it
// fresh from the API server; the write carries that resourceVersion, so a
// change in between (the ReplicaSet controller's status) fails it as stale
// and the reconcile starts again from a fresh read.
func (r *Reconciler) scale(ctx context.Context, s *scope, rs *appsv1.ReplicaSet, replicas int32) error {
	if ptr.Deref(rs.Spec.Replicas, 1) == replicas {
		return nil
	}
	base := rs.DeepCopy()
	rs.Spec.Replicas = ptr.To(replicas)
	if err := s.tenant.Patch(ctx, rs, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return userError(err, fmt.Sprintf("scale ReplicaSet %s to %d", rs.Name, replicas))
	}
	s.log.V(1).Info("scaled", "replicaSet", rs.Name, "replicas", replicas)
	return nil
}

// handOver gives the canary ReplicaSet to the Deployment (its controller
// reference). The next reconcile, woken by that change, finds the
// Deployment's template in a ReplicaSet of its own and unpauses it: the
// Deployment controller finds the ReplicaSet as its new one (same
// template) and finishes the rollout with its own maxSurge and
// maxUnavailable. Unpausing only then keeps the Deployment controller from
// creating a ReplicaSet of its own for the template before it has seen the
// handover.
func (r *Reconciler) handOver(ctx context.Context, s *scope) error {
	rs := s.canary
	base := rs.DeepCopy()
	t := true
	refs := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: s.dep.Name, UID: s.dep.UID, Controller: &t, BlockOwnerDeletion: &t}}
	for _, ref := range rs.OwnerReferences {
		if ref.UID != s.ro.UID {
			refs = append(refs, ref)
		}
	}
	rs.OwnerReferences = refs
	delete(rs.Labels, deliveryv1.RolloutNameLabel)
	if err := s.tenant.Patch(ctx, rs, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return userError(err, "hand ReplicaSet "+rs.Name+" to Deployment "+s.dep.Name)
	}
	return nil
}

// canaryReady reads the canary's replicas into status and reports whether
// want of them run, at most maxUnavailable not Ready.
func (s *scope) canaryReady(want, maxUnavailable int32) bool {
	s.ro.Status.CanaryReplicas = want
	s.ro.Status.ReadyCanaryReplicas = 0
	if s.canary != nil {
		s.ro.Status.ReadyCanaryReplicas = s.canary.Status.ReadyReplicas
	}
	return replicaSetReady(s.canary, want, maxUnavailable)
}

// revisionName is "hash (git rev)" for messages.
func revisionName(hash, git string) string {
	if git == "" {
		return hash
	}
	return fmt.Sprintf("%s (%s)", hash, git)
}

// reconcileCleanup deletes the Rollout's ReplicaSets of superseded
// revisions that have no pods, keeping the aborted one (scaled to zero, for
// inspection) and the canary.
func (r *Reconciler) reconcileCleanup(ctx context.Context, s *scope) error {
	for _, rs := range s.ours {
		if rs == s.canary {
			continue
		}
		if a := s.ro.Status.Aborted; a != nil && rs.Labels[deliveryv1.PodTemplateHashLabel] == a.Revision.PodTemplateHash {
			continue
		}
		if ptr.Deref(rs.Spec.Replicas, 0) != 0 {
			if err := r.scale(ctx, s, rs, 0); err != nil {
				return err
			}
			continue
		}
		if rs.Status.Replicas != 0 {
			continue
		}
		if err := s.tenant.Delete(ctx, rs, client.Preconditions{UID: &rs.UID}); err != nil && !apierrors.IsNotFound(err) {
			return userError(err, "delete ReplicaSet "+rs.Name)
		}
	}
	return nil
}
