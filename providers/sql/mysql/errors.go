package mysql

import (
	"errors"

	"github.com/go-sql-driver/mysql"

	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/managed"
)

// permanentErrors are MySQL error numbers the server gives again for the same
// statement, whatever else changes: only a spec change helps.
var permanentErrors = map[uint16]string{
	1064: "ER_PARSE_ERROR",
	1102: "ER_WRONG_DB_NAME",
	1115: "ER_UNKNOWN_CHARACTER_SET",
	1253: "ER_COLLATION_CHARSET_MISMATCH",
	1273: "ER_UNKNOWN_COLLATION",
	1470: "ER_WRONG_STRING_LENGTH",
}

// taken marks err as managed.AlreadyExists when the server refused a create
// because the name is taken: a database (1007 ER_DB_CREATE_EXISTS) or an
// account (1396 ER_CANNOT_USER, which CREATE USER gives for an existing
// account) someone made since it was observed missing. Other errors pass
// through permanent.
func taken(err error) error {
	var my *mysql.MySQLError
	if errors.As(err, &my) && (my.Number == 1007 || my.Number == 1396) {
		return managed.AlreadyExists(err)
	}
	return permanent(err)
}

// permanent marks err as a user error (Stalled, reason Rejected) when the
// server refused the statement with one of permanentErrors (an unknown
// character set or collation, say), so the resource is not retried forever.
// Errors that a change elsewhere can cure stay transient.
func permanent(err error) error {
	var my *mysql.MySQLError
	if !errors.As(err, &my) {
		return err
	}
	if _, ok := permanentErrors[my.Number]; !ok {
		return err
	}
	return kitreconcile.Terminal(managed.ReasonRejected, err)
}
