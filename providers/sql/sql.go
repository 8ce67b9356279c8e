package sql

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/strata-dev/strata/internal/managed"
	"github.com/strata-dev/strata/providers/sql/mysql"
	"github.com/strata-dev/strata/providers/sql/postgresql"
)

// Setup registers the PostgreSQL and MySQL controllers.
func Setup(mgr ctrl.Manager, o managed.Options) error {
	if err := postgresql.Setup(mgr, o); err != nil {
		return err
	}
	return mysql.Setup(mgr, o)
}
