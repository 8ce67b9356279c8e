package rollout

import (
	"context"
)

// routeTraffic sets the traffic split between the stable revision and the
// canary (weight percent to the canary) where trafficRouting says; without
// trafficRouting the split is the replica ratio and there is nothing to set.
func (r *Reconciler) routeTraffic(ctx context.Context, s *scope, stableHash string, weight int32) error {
	c := s.ro.Spec.Strategy.Canary
	if c == nil || c.TrafficRouting == nil || c.TrafficRouting.GatewayAPI == nil {
		return nil
	}
	return r.routeGatewayAPI(ctx, s, stableHash, weight)
}
