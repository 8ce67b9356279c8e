package rollout

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/kit/ownership"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
)

// httpRouteGVK is the Gateway API HTTPRoute, read as unstructured so
// Strata does not depend on the Gateway API module.
var httpRouteGVK = schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"}

// routeResync is how often a Rollout with Gateway API routing checks its
// routes (HTTPRoutes are not watched: their CRDs may not be installed).
const routeResync = 30 * time.Second

// Suffixes of the Services a Rollout with Gateway API routing manages.
const (
	stableSuffix = "-stable"
	canarySuffix = "-canary"
)

func gatewayRouting(ro *deliveryv1.Rollout) *deliveryv1.GatewayAPIRouting {
	if c := ro.Spec.Strategy.Canary; c != nil && c.TrafficRouting != nil {
		return c.TrafficRouting.GatewayAPI
	}
	return nil
}

// checkRoutes reads every HTTPRoute of trafficRouting.gatewayAPI as the
// tenant and reports the first that does not exist or has no backendRef to
// the Service (or to the Services the Rollout manages for it).
func (r *Reconciler) checkRoutes(ctx context.Context, s *scope) (string, error) {
	gw := gatewayRouting(s.ro)
	if gw == nil {
		return "", nil
	}
	for _, name := range gw.HTTPRoutes {
		route, err := r.getRoute(ctx, s, name)
		if err != nil {
			if kerrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				return fmt.Sprintf("HTTPRoute %s/%s not found; no traffic changed", s.ro.Namespace, name), nil
			}
			return "", userError(err, fmt.Sprintf("read HTTPRoute %s/%s", s.ro.Namespace, name))
		}
		if _, ok := rewriteRules(route, s.ro.Spec.Service, 0); !ok {
			return fmt.Sprintf("HTTPRoute %s/%s has no backendRef to Service %s; no traffic changed", s.ro.Namespace, name, s.ro.Spec.Service), nil
		}
	}
	s.after(routeResync)
	return "", nil
}

func (r *Reconciler) getRoute(ctx context.Context, s *scope, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(httpRouteGVK)
	err := s.tenant.Get(ctx, client.ObjectKey{Namespace: s.ro.Namespace, Name: name}, u)
	return u, err
}

// routeGatewayAPI points the `-stable` and `-canary` Services at their
// revisions and sets the HTTPRoutes' weights: weight percent to the canary.
func (r *Reconciler) routeGatewayAPI(ctx context.Context, s *scope, stableHash string, weight int32) error {
	gw := gatewayRouting(s.ro)
	if err := r.ensureRouteService(ctx, s, s.ro.Spec.Service+stableSuffix, stableHash); err != nil {
		return err
	}
	if err := r.ensureRouteService(ctx, s, s.ro.Spec.Service+canarySuffix, s.hash); err != nil {
		return err
	}
	for _, name := range gw.HTTPRoutes {
		route, err := r.getRoute(ctx, s, name)
		if err != nil {
			return kitreconcile.Reasoned(deliveryv1.ReasonRouteNotReferencingService, fmt.Errorf("cannot read HTTPRoute %s/%s: %w", s.ro.Namespace, name, err))
		}
		rules, ok := rewriteRules(route, s.ro.Spec.Service, weight)
		if !ok {
			return kitreconcile.Reasoned(deliveryv1.ReasonRouteNotReferencingService,
				fmt.Errorf("HTTPRoute %s/%s has no backendRef to Service %s", s.ro.Namespace, name, s.ro.Spec.Service))
		}
		old, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
		if equality.Semantic.DeepEqual(old, rules) {
			continue
		}
		if err := unstructured.SetNestedSlice(route.Object, rules, "spec", "rules"); err != nil {
			return err
		}
		// An update carrying the resourceVersion read: a route changed
		// meanwhile is read again on the retry.
		if err := s.tenant.Update(ctx, route, client.FieldOwner(s.owner.FieldManager())); err != nil {
			return userError(err, fmt.Sprintf("set the weights of HTTPRoute %s/%s", s.ro.Namespace, name))
		}
		s.log.V(1).Info("route weights set", "httpRoute", name, "canaryWeight", weight)
	}
	return nil
}

// rewriteRules returns the route's rules with every backendRef to svc (or
// to its -stable/-canary Services) replaced by the two weighted refs, and
// whether any rule referenced svc.
func rewriteRules(route *unstructured.Unstructured, svc string, weight int32) ([]any, bool) {
	rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
	found := false
	for i, rule := range rules {
		rm, ok := rule.(map[string]any)
		if !ok {
			continue
		}
		refs, _ := rm["backendRefs"].([]any)
		var kept []any
		var first map[string]any
		for _, ref := range refs {
			m, ok := ref.(map[string]any)
			if !ok || !isServiceRef(m, svc) {
				kept = append(kept, ref)
				continue
			}
			if first == nil {
				first = m
			}
		}
		if first == nil {
			continue
		}
		found = true
		mk := func(name string, w int32) map[string]any {
			ref := map[string]any{}
			for k, v := range first {
				ref[k] = v
			}
			ref["name"], ref["weight"] = name, int64(w)
			return ref
		}
		kept = append(kept, mk(svc+stableSuffix, 100-weight), mk(svc+canarySuffix, weight))
		rm["backendRefs"] = kept
		rules[i] = rm
	}
	return rules, found
}

func isServiceRef(m map[string]any, svc string) bool {
	if g, _ := m["group"].(string); g != "" {
		return false
	}
	if k, _ := m["kind"].(string); k != "" && k != "Service" {
		return false
	}
	if ns, _ := m["namespace"].(string); ns != "" {
		return false
	}
	name, _ := m["name"].(string)
	return name == svc || name == svc+stableSuffix || name == svc+canarySuffix
}

// ensureRouteService creates or updates a Service the Rollout owns that
// selects one revision's pods: spec.service's selector and ports plus
// pod-template-hash.
func (r *Reconciler) ensureRouteService(ctx context.Context, s *scope, name, hash string) error {
	sel := map[string]string{deliveryv1.PodTemplateHashLabel: hash}
	for k, v := range s.svc.Spec.Selector {
		if k != deliveryv1.PodTemplateHashLabel {
			sel[k] = v
		}
	}
	var ports []corev1.ServicePort
	for _, p := range s.svc.Spec.Ports {
		ports = append(ports, corev1.ServicePort{Name: p.Name, Protocol: p.Protocol, Port: p.Port, TargetPort: p.TargetPort, AppProtocol: p.AppProtocol})
	}
	live := &corev1.Service{}
	err := s.tenant.Get(ctx, client.ObjectKey{Namespace: s.ro.Namespace, Name: name}, live)
	switch {
	case kerrors.IsNotFound(err):
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.ro.Namespace, Name: name, Labels: map[string]string{deliveryv1.RolloutNameLabel: s.ro.Name}},
			Spec:       corev1.ServiceSpec{Selector: sel, Ports: ports},
		}
		s.owner.SetMark(svc)
		if err := s.tenant.Create(ctx, svc); err != nil {
			return userError(err, "create Service "+name)
		}
		return nil
	case err != nil:
		return userError(err, "read Service "+name)
	case !s.owner.Controls(live):
		return kitreconcile.Terminal(deliveryv1.ReasonResourceConflict,
			fmt.Errorf("Service %s/%s exists and belongs to %s, not the Rollout; the Rollout does not modify it: rename or delete it", live.Namespace, live.Name, ownership.CurrentOwner(live)))
	}
	if equality.Semantic.DeepEqual(live.Spec.Selector, sel) && len(live.Spec.Ports) == len(ports) {
		return nil
	}
	base := live.DeepCopy()
	live.Spec.Selector = sel
	live.Spec.Ports = ports
	if err := s.tenant.Patch(ctx, live, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return userError(err, "update Service "+name)
	}
	return nil
}
