package manager

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/strata-dev/strata/internal/managed"
)

// provider adapts a provider's Setup to a Subsystem's, passing it the
// managed-resource runtime options from the manager's.
func provider(setup func(ctrl.Manager, managed.Options) error) func(ctrl.Manager, Options) error {
	return func(mgr ctrl.Manager, o Options) error {
		return setup(mgr, managed.Options{
			PollInterval:     o.PollInterval,
			Workers:          o.WorkersFor("managed"),
			MaxReconcileRate: o.MaxReconcileRate,
			ClientLimit:      o.KubeAPI,
		})
	}
}
