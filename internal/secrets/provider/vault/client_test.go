package vault_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	vaultapi "github.com/hashicorp/vault/api"
	"k8s.io/client-go/kubernetes"

	"github.com/strata-dev/strata/internal/secrets/provider"
	"github.com/strata-dev/strata/internal/secrets/provider/vault"
	"github.com/strata-dev/strata/internal/testenv"
	"github.com/strata-dev/strata/internal/testenv/vaulttest"
)

var (
	env *testenv.Env
	vs  *vaulttest.Server
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	s, stop, err := vaulttest.StartServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	vs = s
	return testenv.Main(m, &env, testenv.Start)
}

func newClient(t *testing.T, cfg vault.Config) *vault.Client {
	t.Helper()
	c, err := vault.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func rootClient(t *testing.T, mount string, v vault.KVVersion) *vault.Client {
	return newClient(t, vault.Config{Server: vs.Addr, Path: mount, Version: v, Auth: vault.Auth{Token: vs.RootToken}})
}

const pw = "s3cr3t-value-never-shown"

func TestReadKVv2(t *testing.T) {
	ctx := context.Background()
	vs.Put(t, "secret", "read/app/db", map[string]any{"user": "app", "password": "old", "port": 5432, "nested": map[string]any{"a": "b"}})
	vs.Put(t, "secret", "read/app/db", map[string]any{"user": "app", "password": pw, "port": 5432, "nested": map[string]any{"a": "b"}})
	vs.Put(t, "secret", "read/app/cache", map[string]any{"url": "redis://x"})
	vs.Put(t, "secret", "read/other", map[string]any{"k": "v"})
	c := rootClient(t, "secret", vault.KVv2)

	cases := map[string]struct {
		ref     provider.Ref
		want    string
		wantErr error
	}{
		"property":             {ref: provider.Ref{Key: "read/app/db", Property: "password"}, want: pw},
		"mount prefix in key":  {ref: provider.Ref{Key: "secret/read/app/db", Property: "user"}, want: "app"},
		"number as text":       {ref: provider.Ref{Key: "read/app/db", Property: "port"}, want: "5432"},
		"nested property":      {ref: provider.Ref{Key: "read/app/db", Property: "nested.a"}, want: "b"},
		"object property JSON": {ref: provider.Ref{Key: "read/app/db", Property: "nested"}, want: `{"a":"b"}`},
		"whole secret JSON":    {ref: provider.Ref{Key: "read/app/cache"}, want: `{"url":"redis://x"}`},
		"old version":          {ref: provider.Ref{Key: "read/app/db", Property: "password", Version: "1"}, want: "old"},
		"missing property":     {ref: provider.Ref{Key: "read/app/db", Property: "nope"}, wantErr: provider.ErrNotFound},
		"missing key":          {ref: provider.Ref{Key: "read/none", Property: "x"}, wantErr: provider.ErrNotFound},
		"missing version":      {ref: provider.Ref{Key: "read/app/db", Property: "password", Version: "9"}, wantErr: provider.ErrNotFound},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := c.GetSecret(ctx, tc.ref)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v (%q), want %v", err, got, tc.wantErr)
				}
				for _, s := range []string{tc.ref.Key, vs.Addr} {
					if !strings.Contains(err.Error(), strings.TrimPrefix(s, "secret/")) {
						t.Errorf("error %q does not name %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}

	m, err := c.GetSecretMap(ctx, provider.Ref{Key: "read/app/db"})
	if err != nil {
		t.Fatal(err)
	}
	if string(m["password"]) != pw || string(m["nested"]) != `{"a":"b"}` || len(m) != 4 {
		t.Errorf("map: %v keys", len(m))
	}
	all, err := c.GetAllSecrets(ctx, provider.Find{Path: "read", NameRegexp: "^read/app/"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"read/app/cache", "read/app/db"}, keys(all)); diff != "" {
		t.Errorf("find keys -want +got:\n%s", diff)
	}
	if string(all["read/app/cache"]) != `{"url":"redis://x"}` {
		t.Errorf("find value: %s", all["read/app/cache"])
	}
}

func TestFindByTags(t *testing.T) {
	ctx := context.Background()
	vs.Put(t, "secret", "tags/a", map[string]any{"k": "a"})
	vs.Put(t, "secret", "tags/b", map[string]any{"k": "b"})
	if err := vs.API().KVv2("secret").PatchMetadata(ctx, "tags/a", vaultapi.KVMetadataPatchInput{CustomMetadata: map[string]any{"team": "red"}}); err != nil {
		t.Fatal(err)
	}
	got, err := rootClient(t, "secret", vault.KVv2).GetAllSecrets(ctx, provider.Find{Path: "tags", Tags: map[string]string{"team": "red"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"tags/a"}, keys(got)); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
	_, err = rootClient(t, "kv1tags", vault.KVv1).GetAllSecrets(ctx, provider.Find{Tags: map[string]string{"team": "red"}})
	if !errors.Is(err, provider.ErrNotSupported) {
		t.Errorf("tags on KV v1: %v", err)
	}
}

func TestReadKVv1(t *testing.T) {
	ctx := context.Background()
	vs.EnableKV(t, "kv1", "1")
	if _, err := vs.API().Logical().Write("kv1/app/db", map[string]any{"password": pw, "user": "app"}); err != nil {
		t.Fatal(err)
	}
	c := rootClient(t, "kv1", vault.KVv1)
	got, err := c.GetSecret(ctx, provider.Ref{Key: "app/db", Property: "password"})
	if err != nil || string(got) != pw {
		t.Fatalf("got %v", err)
	}
	if _, err := c.GetSecret(ctx, provider.Ref{Key: "app/none", Property: "password"}); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("missing key: %v", err)
	}
	if _, err := c.GetSecret(ctx, provider.Ref{Key: "app/db", Property: "password", Version: "1"}); !errors.Is(err, provider.ErrNotSupported) {
		t.Errorf("version on v1: %v", err)
	}
	all, err := c.GetAllSecrets(ctx, provider.Find{NameRegexp: "db$"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"app/db"}, keys(all)); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
}

func TestAuth(t *testing.T) {
	ctx := context.Background()
	vs.Put(t, "secret", "auth/app", map[string]any{"password": pw})
	vs.Policy(t, "auth-reader", "secret/data/auth/*", "secret/metadata/auth/*")
	roleID, secretID := vs.AppRole(t, "approle", "reader", "auth-reader")
	cs := kubernetes.NewForConfigOrDie(env.Config)
	vs.KubernetesAuth(t, env.Config, "kubernetes", "vault-auth")
	vaulttest.EnsureServiceAccount(t, cs, "vault-auth", "reader")
	vs.KubernetesRole(t, "kubernetes", "reader", "vault-auth", "reader", "vault", "auth-reader")
	saToken := func(aud string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) {
			return vaulttest.ServiceAccountToken(t, cs, "vault-auth", "reader", []string{aud}, 600), nil
		}
	}

	cases := map[string]struct {
		auth    vault.Auth
		server  string
		wantErr []string // substrings of Validate's error; nil means success
	}{
		"token":            {auth: vault.Auth{Token: vs.Token(t, "auth-reader")}},
		"approle":          {auth: vault.Auth{AppRole: &vault.AppRole{RoleID: roleID, SecretID: secretID}}},
		"kubernetes":       {auth: vault.Auth{Kubernetes: &vault.Kubernetes{Role: "reader", ServiceAccountToken: saToken("vault")}}},
		"wrong token":      {auth: vault.Auth{Token: "hvs.not-a-token"}, wantErr: []string{vs.Addr, "token lookup failed", "permission denied"}},
		"wrong secret id":  {auth: vault.Auth{AppRole: &vault.AppRole{RoleID: roleID, SecretID: "wrong-" + pw}}, wantErr: []string{vs.Addr, "cannot log in at auth/approle/login", "HTTP 400"}},
		"wrong audience":   {auth: vault.Auth{Kubernetes: &vault.Kubernetes{Role: "reader", ServiceAccountToken: saToken("other")}}, wantErr: []string{vs.Addr, "cannot log in at auth/kubernetes/login"}},
		"wrong k8s role":   {auth: vault.Auth{Kubernetes: &vault.Kubernetes{Role: "nope", ServiceAccountToken: saToken("vault")}}, wantErr: []string{"cannot log in at auth/kubernetes/login", "HTTP 400"}},
		"unreachable":      {auth: vault.Auth{Token: "x"}, server: "http://127.0.0.1:1", wantErr: []string{"http://127.0.0.1:1", "token lookup failed", "connection refused"}},
		"wrong approle at": {auth: vault.Auth{AppRole: &vault.AppRole{Path: "nowhere", RoleID: roleID, SecretID: secretID}}, wantErr: []string{"cannot log in at auth/nowhere/login"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			server := vs.Addr
			if tc.server != "" {
				server = tc.server
			}
			c := newClient(t, vault.Config{Server: server, Path: "secret", Auth: tc.auth, Timeout: 5 * time.Second})
			err := c.Validate(ctx)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("Validate succeeded")
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), secretID) {
					t.Errorf("error shows a credential: %q", err)
				}
				if _, gerr := c.GetSecret(ctx, provider.Ref{Key: "auth/app", Property: "password"}); gerr == nil || errors.Is(gerr, provider.ErrNotFound) {
					t.Errorf("read with bad credentials: %v", gerr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got, err := c.GetSecret(ctx, provider.Ref{Key: "auth/app", Property: "password"})
			if err != nil || string(got) != pw {
				t.Fatalf("read: %v", err)
			}
			// The policy does not reach other paths.
			if _, err := c.GetSecret(ctx, provider.Ref{Key: "read/other", Property: "k"}); err == nil || !strings.Contains(err.Error(), "permission denied") {
				t.Errorf("read outside the policy: %v", err)
			}
		})
	}
}

func TestPushKVv2(t *testing.T) {
	ctx := context.Background()
	c := rootClient(t, "secret", vault.KVv2)
	const a, b = "pushsecret/ns/a", "pushsecret/ns/b"
	ref := provider.PushRef{Key: "push/db", Property: "password"}

	// A human wrote another field first: the push merges with it.
	vs.Put(t, "secret", "push/db", map[string]any{"host": "db.example"})
	if err := c.PushSecretAs(ctx, ref, []byte(pw), a, false); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"host": "db.example", "password": pw}, vs.Get(t, "secret", "push/db")); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
	if got := vs.Metadata(t, "secret", "push/db")["strata.dev/pushed-by.password"]; got != a {
		t.Errorf("owner record %v", got)
	}
	version := func() int {
		m, err := vs.API().KVv2("secret").GetMetadata(ctx, "push/db")
		if err != nil {
			t.Fatal(err)
		}
		return m.CurrentVersion
	}
	v := version()
	if err := c.PushSecretAs(ctx, ref, []byte(pw), a, false); err != nil {
		t.Fatal(err)
	}
	if version() != v {
		t.Errorf("pushing the same value wrote version %d", version())
	}

	// Attacks: another writer, and a field that exists without a record.
	err := c.PushSecretAs(ctx, ref, []byte("stolen"), b, true)
	if !errors.Is(err, provider.ErrNotOwner) || !strings.Contains(err.Error(), a) {
		t.Errorf("overwrite by another owner: %v", err)
	}
	err = c.PushSecretAs(ctx, provider.PushRef{Key: "push/db", Property: "host"}, []byte("evil"), b, false)
	if !errors.Is(err, provider.ErrNotOwner) {
		t.Errorf("overwrite of an unrecorded field: %v", err)
	}
	if err := c.DeleteSecretAs(ctx, ref, b, true); !errors.Is(err, provider.ErrNotOwner) {
		t.Errorf("delete by another owner: %v", err)
	}
	if diff := cmp.Diff(map[string]any{"host": "db.example", "password": pw}, vs.Get(t, "secret", "push/db")); diff != "" {
		t.Errorf("victim changed -want +got:\n%s", diff)
	}
	if err != nil && strings.Contains(err.Error(), pw) {
		t.Errorf("error shows the value")
	}

	// A second writer may add its own field.
	if err := c.PushSecretAs(ctx, provider.PushRef{Key: "push/db", Property: "user"}, []byte("app"), b, false); err != nil {
		t.Fatal(err)
	}
	// Deleting a removes only a's field and record.
	if err := c.DeleteSecretAs(ctx, ref, a, false); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"host": "db.example", "user": "app"}, vs.Get(t, "secret", "push/db")); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
	if _, ok := vs.Metadata(t, "secret", "push/db")["strata.dev/pushed-by.password"]; ok {
		t.Error("owner record left after delete")
	}
	if err := c.DeleteSecretAs(ctx, ref, a, false); err != nil {
		t.Errorf("second delete: %v", err)
	}

	// A key only we wrote disappears with its metadata.
	solo := provider.PushRef{Key: "push/solo", Property: "password"}
	if err := c.PushSecretAs(ctx, solo, []byte(pw), a, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSecret(ctx, provider.Ref{Key: "push/solo", Property: "password"}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSecretAs(ctx, solo, a, false); err != nil {
		t.Fatal(err)
	}
	if vs.Metadata(t, "secret", "push/solo") != nil || vs.Get(t, "secret", "push/solo") != nil {
		t.Error("push/solo still there")
	}

	// Whole-secret push needs a JSON object.
	whole := provider.PushRef{Key: "push/whole"}
	if err := c.PushSecretAs(ctx, whole, []byte(pw), a, false); err == nil || strings.Contains(err.Error(), pw) {
		t.Errorf("non-JSON whole push: %v", err)
	}
	if err := c.PushSecretAs(ctx, whole, []byte(`{"x":"1"}`), a, false); err != nil {
		t.Fatal(err)
	}
	if err := c.PushSecretAs(ctx, whole, []byte(`{"x":"2"}`), b, false); !errors.Is(err, provider.ErrNotOwner) {
		t.Errorf("whole overwrite by another owner: %v", err)
	}
}

func TestPushKVv1(t *testing.T) {
	ctx := context.Background()
	vs.EnableKV(t, "kv1push", "1")
	c := rootClient(t, "kv1push", vault.KVv1)
	ref := provider.PushRef{Key: "db", Property: "password"}
	if err := c.PushSecretAs(ctx, ref, []byte(pw), "o", false); err != nil {
		t.Fatal(err)
	}
	// KV v1 keeps no record: only a writer that remembers pushing may
	// overwrite.
	if err := c.PushSecretAs(ctx, ref, []byte("x"), "o", false); !errors.Is(err, provider.ErrNotOwner) {
		t.Errorf("overwrite without adopt: %v", err)
	}
	if err := c.PushSecretAs(ctx, ref, []byte("new"), "o", true); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetSecret(ctx, provider.Ref{Key: "db", Property: "password"})
	if err != nil || string(got) != "new" {
		t.Fatalf("got %v", err)
	}
	if err := c.DeleteSecretAs(ctx, ref, "o", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSecret(ctx, provider.Ref{Key: "db", Property: "password"}); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
