package manager

import (
	ctrl "sigs.k8s.io/controller-runtime"

	compositioncontroller "github.com/strata-dev/strata/internal/composition/controller"
)

// setupComposition adapts the composition engine to the shared options.
func setupComposition(mgr ctrl.Manager, o Options) error {
	var opts compositioncontroller.Options
	opts.PollInterval = o.PollInterval
	opts.Workers = o.WorkersFor("composition")
	opts.ClientLimit = o.KubeAPI
	if o.WatchLabelSelector != "" {
		sel, err := parseSelector(o.WatchLabelSelector)
		if err != nil {
			return err
		}
		opts.WatchSelector = sel
	}
	_, err := compositioncontroller.SetupEngineWithOptions(mgr, opts)
	return err
}
