package manager

import (
	ctrl "sigs.k8s.io/controller-runtime"

	deliverycontroller "github.com/strata-dev/strata/internal/delivery/controller"
	"github.com/strata-dev/strata/internal/delivery/rollout"
)

// setupDelivery adapts the delivery subsystem (AnalysisRuns) to the shared
// options: runs act as --default-service-account in their namespace when
// they name no service account, as Syncs do.
func setupDelivery(mgr ctrl.Manager, o Options) error {
	egress, err := o.Egress()
	if err != nil {
		return err
	}
	if err := deliverycontroller.Setup(mgr, deliverycontroller.Options{
		DefaultServiceAccount: o.DefaultServiceAccount,
		Workers:               o.MaxConcurrentReconciles,
		Egress:                egress,
	}); err != nil {
		return err
	}
	// Rollouts act as the same account in their namespace.
	if err := rollout.Setup(mgr, rollout.Options{
		DefaultServiceAccount: o.DefaultServiceAccount,
		Workers:               o.MaxConcurrentReconciles,
	}); err != nil {
		return err
	}
	return setupPromotion(mgr, o)
}
