package manager_test

import (
	"testing"

	"github.com/strata-dev/strata/internal/manager"
)

func TestWorkersFor(t *testing.T) {
	o := manager.Options{MaxConcurrentReconciles: 10, Workers: map[string]int{"composition": 32, "managed": 5, "provider-sql": 2}}
	cases := map[string]int{"composition": 32, "gitops": 10, "provider-nop": 5, "provider-sql": 2, "managed": 5}
	for name, want := range cases {
		if got := o.WorkersFor(name); got != want {
			t.Errorf("WorkersFor(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestLeaderElectionID(t *testing.T) {
	ids := map[string]string{}
	for _, sel := range []string{"", "!sharding.strata.dev/key", "sharding.strata.dev/key in (a)", "sharding.strata.dev/key in (b)"} {
		id := manager.Options{WatchLabelSelector: sel}.LeaderElectionID()
		if prev, dup := ids[id]; dup {
			t.Errorf("selectors %q and %q share the leader election ID %s", prev, sel, id)
		}
		ids[id] = sel
	}
	if id := (manager.Options{}).LeaderElectionID(); id != "strata-manager.strata.dev" {
		t.Errorf("unsharded ID %s, want the one of earlier releases", id)
	}
}
