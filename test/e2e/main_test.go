package e2e

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
)

// TestMain discards controller-runtime's log: the tests build clients to
// read the local cluster, and without a logger controller-runtime prints a
// stack trace into the test output the first time one is made. What the
// engine logs is in each `strata up` state directory.
func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	os.Exit(m.Run())
}
