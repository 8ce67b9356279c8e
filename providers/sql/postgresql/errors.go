package postgresql

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/managed"
)

// permanent marks err as a user error (Stalled, reason Rejected) when the
// server refused the statement with an error it will give again for the same
// spec, so the resource is not retried forever: an invalid value such as an
// unknown encoding (SQLSTATE class 22), a feature the server does not support
// (0A), or a statement or name the server cannot parse (42601, 42602, 42622).
// Errors that a change elsewhere can cure (a missing role, a missing
// privilege, a lost connection) stay transient.
func permanent(err error) error {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || !permanentCode(pg.Code) {
		return err
	}
	return kitreconcile.Terminal(managed.ReasonRejected, err)
}

// taken marks err as managed.AlreadyExists when the server refused a create
// because the name is taken: a database (42P04 duplicate_database) or role
// (42710 duplicate_object) someone made since it was observed missing.
// Other errors pass through permanent.
func taken(err error) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && (pg.Code == "42P04" || pg.Code == "42710") {
		return managed.AlreadyExists(err)
	}
	return permanent(err)
}

func permanentCode(code string) bool {
	if len(code) != 5 {
		return false
	}
	switch code[:2] {
	case "22", "0A":
		return true
	}
	switch code {
	case "42601", "42602", "42622":
		return true
	}
	return false
}
