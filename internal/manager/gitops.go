package manager

import (
	ctrl "sigs.k8s.io/controller-runtime"

	gitopscontroller "github.com/strata-dev/strata/internal/gitops/controller"
)

// setupGitops adapts the delivery subsystem (GitRepository and Sync) to the
// shared options; the artifact store lives under StateDir. The webhook
// receiver listens on --webhook-bind-address: by default on a free loopback
// port under `strata up` (written to <state-dir>/gitops/receiver-addr) and
// on :9292 in a cluster.
func setupGitops(mgr ctrl.Manager, o Options) error {
	addr := o.WebhookAddr
	if addr == "" {
		addr = ":9292"
		if o.StateDir != "" {
			addr = "127.0.0.1:0"
		}
	}
	egress, err := o.Egress()
	if err != nil {
		return err
	}
	return gitopscontroller.Setup(mgr, gitopscontroller.Options{
		Egress:                egress,
		StateDir:              o.StateDir,
		Workers:               o.WorkersFor("gitops"),
		ClientLimit:           o.KubeAPI,
		ReceiverAddr:          addr,
		DefaultServiceAccount: o.DefaultServiceAccount,
		NoCrossNamespaceRefs:  o.NoCrossNamespaceRefs,
		AllowFileURLs:         o.AllowFileURLs,
		RemoteBases:           o.RemoteBases,
	})
}
