package manager

import (
	ctrl "sigs.k8s.io/controller-runtime"

	secretscontroller "github.com/strata-dev/strata/internal/secrets/controller"
)

// setupSecrets adapts the external-secrets subsystem (stores,
// ExternalSecrets, ClusterExternalSecrets, workload reload) to the shared
// options.
func setupSecrets(mgr ctrl.Manager, o Options) error {
	egress, err := o.Egress()
	if err != nil {
		return err
	}
	return secretscontroller.Setup(mgr, secretscontroller.Options{
		Workers:     o.MaxConcurrentReconciles,
		ClientLimit: o.KubeAPI,
		Egress:      egress,
	})
}
