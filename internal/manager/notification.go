package manager

import (
	ctrl "sigs.k8s.io/controller-runtime"

	notificationcontroller "github.com/strata-dev/strata/internal/notification/controller"
)

// setupNotification adapts the notification subsystem (Provider, Alert,
// Receiver) to the shared options.
func setupNotification(mgr ctrl.Manager, o Options) error {
	egress, err := o.Egress()
	if err != nil {
		return err
	}
	return notificationcontroller.Setup(mgr, notificationcontroller.Options{Workers: o.MaxConcurrentReconciles, Egress: egress})
}
