package mysql

import (
	"testing"

	"github.com/google/go-cmp/cmp"

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
