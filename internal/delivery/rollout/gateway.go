package rollout

import (
	"context"
	"errors"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
)

// routeGatewayAPI sets HTTPRoute backend weights.
func (r *Reconciler) routeGatewayAPI(_ context.Context, _ *scope, _ string, _ int32) error {
	return kitreconcile.Terminal(deliveryv1.ReasonRouteNotReferencingService, errors.New("trafficRouting.gatewayAPI is not implemented yet"))
}
