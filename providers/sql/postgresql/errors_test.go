package postgresql

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	ctrlreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/managed"
)

func TestPermanent(t *testing.T) {
	cases := map[string]struct {
		err       error
		permanent bool
	}{
		"unknown encoding":        {&pgconn.PgError{Code: "22023", Message: `"X" is not a valid encoding name`}, true},
		"feature not supported":   {&pgconn.PgError{Code: "0A000"}, true},
		"syntax error":            {&pgconn.PgError{Code: "42601"}, true},
		"name too long":           {&pgconn.PgError{Code: "42622"}, true},
		"role does not exist":     {&pgconn.PgError{Code: "42704"}, false},
		"permission denied":       {&pgconn.PgError{Code: "42501"}, false},
		"database already exists": {&pgconn.PgError{Code: "42P04"}, false},
		"too many connections":    {&pgconn.PgError{Code: "53300"}, false},
		"object in use":           {&pgconn.PgError{Code: "55006"}, false},
		"not a server error":      {errors.New("connection reset by peer"), false},
		"malformed code":          {&pgconn.PgError{Code: "22"}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := permanent(fmt.Errorf("cannot create database \"d\": %w", tc.err))
			if got := errors.Is(err, ctrlreconcile.TerminalError(nil)); got != tc.permanent {
				t.Errorf("terminal for controller-runtime = %v, want %v", got, tc.permanent)
			}
			want := ""
			if tc.permanent {
				want = managed.ReasonRejected
			}
			if got := kitreconcile.ReasonOf(err); got != want {
				t.Errorf("ReasonOf = %q, want %q", got, want)
			}
			if !errors.Is(err, tc.err) {
				t.Error("the server's error is no longer wrapped")
			}
		})
	}
}

func TestTaken(t *testing.T) {
	cases := map[string]struct {
		err       error
		taken     bool
		permanent bool
	}{
		"database already exists": {&pgconn.PgError{Code: "42P04"}, true, false},
		"role already exists":     {&pgconn.PgError{Code: "42710"}, true, false},
		"unknown encoding":        {&pgconn.PgError{Code: "22023"}, false, true},
		"permission denied":       {&pgconn.PgError{Code: "42501"}, false, false},
		"not a server error":      {errors.New("connection reset by peer"), false, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := taken(fmt.Errorf("cannot create database \"d\": %w", tc.err))
			if got := managed.IsAlreadyExists(err); got != tc.taken {
				t.Errorf("IsAlreadyExists = %v, want %v", got, tc.taken)
			}
			if got := errors.Is(err, ctrlreconcile.TerminalError(nil)); got != tc.permanent {
				t.Errorf("terminal = %v, want %v", got, tc.permanent)
			}
			if !errors.Is(err, tc.err) {
				t.Error("the server's error is no longer wrapped")
			}
		})
	}
}
