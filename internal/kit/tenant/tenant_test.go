package tenant

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

func TestUser(t *testing.T) {
	cases := map[string]struct {
		accounts []string
		want     string
	}{
		"own account":         {accounts: []string{"deployer", "default-sa"}, want: "system:serviceaccount:team-a:deployer"},
		"falls back in order": {accounts: []string{"", "", "strata"}, want: "system:serviceaccount:team-a:strata"},
		"none is the manager": {accounts: []string{"", ""}, want: ""},
		"no accounts at all":  {want: ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := User("team-a", tc.accounts...); got != tc.want {
				t.Errorf("User = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestImpersonatingCopies(t *testing.T) {
	cfg := &rest.Config{Host: "https://example.invalid"}
	got := Impersonating(cfg, "system:serviceaccount:a:b")
	if got.Impersonate.UserName != "system:serviceaccount:a:b" {
		t.Errorf("impersonates %q", got.Impersonate.UserName)
	}
	if cfg.Impersonate.UserName != "" {
		t.Errorf("the manager's config was changed to impersonate %q", cfg.Impersonate.UserName)
	}
	if Impersonating(cfg, "").Impersonate.UserName != "" {
		t.Error(`"" must keep the manager's identity`)
	}
}

func TestClientsAreKeptPerUser(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{{Version: "v1"}})
	cs := NewClients(&rest.Config{Host: "https://example.invalid"}, runtime.NewScheme(), mapper)
	a1, err := cs.For("alice")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := cs.For("alice")
	b, _ := cs.For("bob")
	if a1 != a2 {
		t.Error("a second For of the same user built a new client")
	}
	if a1 == b {
		t.Error("two users share one client")
	}
}
