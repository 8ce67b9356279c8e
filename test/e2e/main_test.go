package e2e

import (
	"flag"
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
)

// TestMain discards controller-runtime's log: the tests build clients to
// read the local cluster, and without a logger controller-runtime prints a
// stack trace into the test output the first time one is made. What the
// engine logs is in each `strata up` state directory.
//
// It also lifts go test's bound on parallel tests (-parallel, one per core by
// default) unless the command line sets it: every test here is parallel, and
// one that waits for the build of its server (Vault, Prometheus) would hold
// one of those places while it waits. The package's own bound is its cluster
// slots (parallel, STRATA_E2E_PARALLEL).
func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		if err := flag.Set("test.parallel", "64"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
