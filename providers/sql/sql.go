package sql

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/strata-dev/strata/internal/managed"
	"github.com/strata-dev/strata/providers/sql/postgresql"
)

// Setup registers the PostgreSQL and MySQL controllers.
func Setup(mgr ctrl.Manager, o managed.Options) error {
	return postgresql.Setup(mgr, o)
}
