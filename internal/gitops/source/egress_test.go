package source

import (
	"context"
	"testing"

	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/kit/egress"
)

// Attack: a GitRepository URL pointed where the manager can reach and its
// tenant cannot, over HTTP and over SSH. Under Guard the fetch is refused,
// naming the denied network; with go-git's defaults restored the same URL
// is fetched (so the refusal is the guard's, not a broken server). The
// test servers are on 127.0.0.1, which the policy here denies.
func TestGuardRefusesDeniedNetworks(t *testing.T) {
	root := t.TempDir()
	repo := gittest.NewRepo(t, root, "app")
	c := repo.Commit("one", map[string]string{"a.yaml": "v: 1\n"})
	base := gittest.ServeHTTP(t, root, "alice", "s3cret")
	srv := gittest.ServeSSH(t, root)
	for name, tc := range map[string]struct {
		url  string
		auth Auth
	}{
		"http": {url: base + "/app", auth: Auth{Username: "alice", Password: "s3cret"}},
		"ssh":  {url: srv.URL("app"), auth: Auth{Identity: srv.ClientKey, KnownHosts: srv.KnownHosts}},
	} {
		t.Run(name, func(t *testing.T) {
			restore := Guard(egress.MustParse("127.0.0.1/32"))
			_, err := Resolve(context.Background(), tc.url, Ref{Branch: "main"}, tc.auth)
			restore()
			if !egress.IsDenied(err) {
				t.Fatalf("guarded fetch of %s: err = %v, want a denied network", tc.url, err)
			}
			r, err := Resolve(context.Background(), tc.url, Ref{Branch: "main"}, tc.auth)
			if err != nil || r.Hash != c {
				t.Fatalf("after restore: %+v, %v; want %s", r, err, c)
			}
		})
	}
}
