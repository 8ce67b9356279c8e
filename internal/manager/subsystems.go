package manager

import (
	ctrl "sigs.k8s.io/controller-runtime"

	compositioncontroller "github.com/strata-dev/strata/internal/composition/controller"
	"github.com/strata-dev/strata/providers/nop"
	"github.com/strata-dev/strata/providers/s3"
	"github.com/strata-dev/strata/providers/sql"
)

// subsystems is every part of Strata that runs in the manager, in the order
// it is set up. A new capability adds one entry here and nowhere else.
var subsystems = []Subsystem{
	{Name: "provider-nop", Setup: provider(nop.Setup)},
	{Name: "gitops", Setup: setupGitops},
	{Name: "provider-sql", Setup: provider(sql.Setup)},
	{Name: "provider-s3", Setup: provider(s3.Setup)},
	{Name: "composition", Setup: func(mgr ctrl.Manager, o Options) error {
		return compositioncontroller.Setup(mgr, o.PollInterval, o.MaxConcurrentReconciles, o.KubeAPI)
	}},
	{Name: "secrets", Setup: setupSecrets},
}
