package source

import (
	"context"
	"testing"

	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/kit/egress"
)

// Attack: a GitRepository URL pointed where the manager can reach and its
// tenant cannot. Under GuardHTTP the fetch is refused before it connects,
// naming the denied network; with the default clients restored the same
// URL is fetched (so the refusal is the guard's, not a broken server).
// The test server is on 127.0.0.1, which the policy here denies.
func TestGuardHTTPRefusesDeniedNetworks(t *testing.T) {
	root := t.TempDir()
	repo := gittest.NewRepo(t, root, "app")
	c := repo.Commit("one", map[string]string{"a.yaml": "v: 1\n"})
	base := gittest.ServeHTTP(t, root, "alice", "s3cret")
	auth := Auth{Username: "alice", Password: "s3cret"}

	restore := GuardHTTP(egress.MustParse("127.0.0.1/32"))
	_, err := Resolve(context.Background(), base+"/app", Ref{Branch: "main"}, auth)
	restore()
	if !egress.IsDenied(err) {
		t.Fatalf("guarded fetch of %s: err = %v, want a denied network", base, err)
	}

	r, err := Resolve(context.Background(), base+"/app", Ref{Branch: "main"}, auth)
	if err != nil || r.Hash != c {
		t.Fatalf("after restore: %+v, %v; want %s", r, err, c)
	}
}
