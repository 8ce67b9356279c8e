package manager

import (
	"github.com/go-git/go-git/v5/plumbing/transport"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/strata-dev/strata/internal/delivery/promotion"
	"github.com/strata-dev/strata/internal/gitops/source"
)

// setupPromotion adds the Stage controller to the delivery subsystem; its
// write-back authenticates with the gitops source's own credential code.
func setupPromotion(mgr ctrl.Manager, o Options) error {
	return promotion.Setup(mgr, promotion.Options{
		DefaultServiceAccount: o.DefaultServiceAccount,
		Workers:               o.MaxConcurrentReconciles,
		GitAuth:               GitAuth,
	})
}

// GitAuth is the gitops source's credential code as promotion needs it.
func GitAuth(url string, secret map[string][]byte) (transport.AuthMethod, error) {
	return source.AuthMethod(url, source.AuthFromSecret(url, secret))
}
