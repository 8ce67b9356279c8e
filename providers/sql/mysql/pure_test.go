package mysql

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	ctrlreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/strata-dev/strata/internal/managed"
	myv1 "github.com/strata-dev/strata/providers/sql/apis/mysql/v1alpha1"
)

func TestGrantDBEscapesWildcards(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"plain":      {"app", "app"},
		"underscore": {"app_1", `app\_1`},
		"percent":    {"a%b", `a\%b`},
		"backslash":  {`a\b`, `a\\b`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := grantDB(tc.in); got != tc.want {
				t.Errorf("grantDB(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestWanted(t *testing.T) {
	got, err := wanted(myv1.GrantParameters{Privileges: []myv1.GrantPrivilege{"SELECT", "INSERT", "SELECT"}})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"INSERT", "SELECT"}, got); d != "" {
		t.Errorf("-want +got:\n%s", d)
	}
	if _, err := wanted(myv1.GrantParameters{Table: "t", Privileges: []myv1.GrantPrivilege{"EXECUTE"}}); err == nil {
		t.Error("EXECUTE on a table was accepted")
	}
	all, _ := wanted(myv1.GrantParameters{Table: "t", Privileges: []myv1.GrantPrivilege{"ALL"}})
	if len(all) != len(tablePrivileges) {
		t.Errorf("ALL on a table = %v", all)
	}
}

func TestTaken(t *testing.T) {
	cases := map[string]struct {
		err       error
		taken     bool
		permanent bool
	}{
		"database exists":    {&mysql.MySQLError{Number: 1007}, true, false},
		"account exists":     {&mysql.MySQLError{Number: 1396}, true, false},
		"unknown charset":    {&mysql.MySQLError{Number: 1115}, false, true},
		"access denied":      {&mysql.MySQLError{Number: 1044}, false, false},
		"not a server error": {errors.New("connection reset by peer"), false, false},
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
