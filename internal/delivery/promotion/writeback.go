package promotion

import (
	"context"
	"errors"

	"github.com/go-git/go-git/v5/plumbing/transport"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
)

// GitAuthFunc turns a GitRepository's URL and the data of its secretRef
// into go-git credentials; the manager passes the gitops source's own
// (source.AuthFromSecret and source.AuthMethod), so write-back authenticates
// exactly as the fetch does.
type GitAuthFunc func(url string, secret map[string][]byte) (transport.AuthMethod, error)

// writeBack commits the promotion of rev to the environment's branch and
// pushes it; it returns the commit the branch holds for rev (an existing
// one when the change was pushed before a restart).
func (r *Reconciler) writeBack(ctx context.Context, sc *scope, rev string) (string, error) {
	return "", kitreconcile.Terminal(deliveryv1.ReasonInvalidSpec, errors.New("gitWriteBack is not implemented yet"))
}
