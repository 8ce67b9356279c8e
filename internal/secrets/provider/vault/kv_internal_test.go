package vault

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPropertyAndEncode(t *testing.T) {
	data := map[string]any{
		"password": "p",
		"port":     json.Number("5432"),
		"a.b":      "exact",
		"db":       map[string]any{"user": "u", "tls": map[string]any{"on": true}},
		"list":     []any{"x", "y"},
	}
	cases := map[string]struct {
		prop   string
		want   string
		wantOK bool
	}{
		"string":               {prop: "password", want: "p", wantOK: true},
		"number":               {prop: "port", want: "5432", wantOK: true},
		"exact dotted name":    {prop: "a.b", want: "exact", wantOK: true},
		"nested":               {prop: "db.user", want: "u", wantOK: true},
		"nested bool":          {prop: "db.tls.on", want: "true", wantOK: true},
		"object as JSON":       {prop: "db.tls", want: `{"on":true}`, wantOK: true},
		"list as JSON":         {prop: "list", want: `["x","y"]`, wantOK: true},
		"missing":              {prop: "nope"},
		"missing nested":       {prop: "db.nope"},
		"through a non-object": {prop: "password.x"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v, ok := property(data, tc.prop)
			if ok != tc.wantOK {
				t.Fatalf("found %v, want %v", ok, tc.wantOK)
			}
			if !ok {
				return
			}
			b, err := encode(v)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(b)); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func TestKeyAndConfig(t *testing.T) {
	c, err := New(Config{Server: "http://127.0.0.1:1", Path: "/secret/", Auth: Auth{Token: "t"}})
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{"app/db": "app/db", "/app/db/": "app/db", "secret/app/db": "app/db", "secret/data/app/db": "app/db", "data/app": "app"} {
		if got, err := c.key(in); err != nil || got != want {
			t.Errorf("key(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := c.key("/"); err == nil {
		t.Error("empty key accepted")
	}
	bad := map[string]Config{
		"no server":    {Path: "secret", Auth: Auth{Token: "t"}},
		"no mount":     {Server: "http://x", Auth: Auth{Token: "t"}},
		"bad version":  {Server: "http://x", Path: "secret", Version: "v3", Auth: Auth{Token: "t"}},
		"no auth":      {Server: "http://x", Path: "secret"},
		"two auths":    {Server: "http://x", Path: "secret", Auth: Auth{Token: "t", AppRole: &AppRole{}}},
		"bad caBundle": {Server: "https://x", Path: "secret", CABundle: []byte("not PEM"), Auth: Auth{Token: "t"}},
	}
	for name, cfg := range bad {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	t.Setenv("VAULT_TOKEN", "from-env")
	t.Setenv("VAULT_ADDR", "http://elsewhere:8200")
	c, err = New(Config{Server: "http://127.0.0.1:1", Path: "secret", Auth: Auth{AppRole: &AppRole{RoleID: "r", SecretID: "s"}}})
	if err != nil {
		t.Fatal(err)
	}
	if c.api.Token() != "" || c.api.Address() != "http://127.0.0.1:1" {
		t.Errorf("the environment leaked in: token %q address %q", c.api.Token(), c.api.Address())
	}
}
