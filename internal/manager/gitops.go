package manager

import (
	ctrl "sigs.k8s.io/controller-runtime"

	gitopscontroller "github.com/strata-dev/strata/internal/gitops/controller"
)

// setupGitops adapts the delivery subsystem (GitRepository and Sync) to the
// shared options; the artifact store lives under StateDir.
func setupGitops(mgr ctrl.Manager, o Options) error {
	return gitopscontroller.Setup(mgr, gitopscontroller.Options{StateDir: o.StateDir, Workers: o.MaxConcurrentReconciles})
}
