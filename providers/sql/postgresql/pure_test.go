package postgresql

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	pgv1 "github.com/strata-dev/strata/providers/sql/apis/postgresql/v1alpha1"
)

func TestWantPrivileges(t *testing.T) {
	cases := map[string]struct {
		fp       pgv1.GrantParameters
		want     []string
		terminal bool
	}{
		"database ALL":        {pgv1.GrantParameters{Privileges: []pgv1.GrantPrivilege{"ALL"}}, []string{"CONNECT", "CREATE", "TEMPORARY"}, false},
		"schema ALL":          {pgv1.GrantParameters{Schema: "s", Privileges: []pgv1.GrantPrivilege{"ALL"}}, []string{"CREATE", "USAGE"}, false},
		"dedup and sort":      {pgv1.GrantParameters{Privileges: []pgv1.GrantPrivilege{"TEMPORARY", "CONNECT", "CONNECT"}}, []string{"CONNECT", "TEMPORARY"}, false},
		"usage on a db":       {pgv1.GrantParameters{Privileges: []pgv1.GrantPrivilege{"USAGE"}}, nil, true},
		"connect on a schema": {pgv1.GrantParameters{Schema: "s", Privileges: []pgv1.GrantPrivilege{"CONNECT"}}, nil, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := wantPrivileges(tc.fp)
			if kitreconcile.IsTerminal(err) != tc.terminal {
				t.Fatalf("err = %v, terminal want %t", err, tc.terminal)
			}
			if d := cmp.Diff(tc.want, got); !tc.terminal && d != "" {
				t.Errorf("-want +got:\n%s", d)
			}
		})
	}
}

func TestAttrsAndIdent(t *testing.T) {
	yes, no, limit := true, false, int32(5)
	got := attrs(pgv1.RoleParameters{Privileges: pgv1.RolePrivileges{Login: &yes, CreateDB: &no}, ConnectionLimit: &limit})
	if want := " LOGIN NOCREATEDB CONNECTION LIMIT 5"; got != want {
		t.Errorf("attrs = %q, want %q", got, want)
	}
	if got, want := ident(`a"; DROP TABLE x; --`), `"a""; DROP TABLE x; --"`; got != want {
		t.Errorf("ident = %s, want %s", got, want)
	}
}
