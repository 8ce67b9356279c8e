// Package crashtest kills a real `strata manager` process with SIGKILL in the
// middle of a Sync's revision change, restarts it and checks that nothing was
// lost: no object of an old revision is left behind (every applied object
// stays in the inventory until it is pruned) and nothing is duplicated. The
// test binary re-executes itself as the manager, so the code under test is
// exactly the code of the tree; only tests live here.
package crashtest
