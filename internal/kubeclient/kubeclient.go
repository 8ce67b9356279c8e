package kubeclient

import (
	"fmt"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Limit is a client-side rate limit: requests per second and burst. A zero
// field means "the subsystem's default" (see Or).
type Limit struct {
	QPS   float32
	Burst int
}

// Or returns l with each zero (or negative) field taken from def, so a flag
// left at 0 keeps the subsystem's own default.
func (l Limit) Or(def Limit) Limit {
	if l.QPS <= 0 {
		l.QPS = def.QPS
	}
	if l.Burst <= 0 {
		l.Burst = def.Burst
	}
	return l
}

// New returns a client for mgr's cluster limited to l, and the config it was
// built from. cache says how reads are served; nil reads typed objects from
// the manager's cache (and unstructured ones directly from the API server).
func New(mgr ctrl.Manager, l Limit, cache *client.CacheOptions) (client.Client, *rest.Config, error) {
	cfg := rest.CopyConfig(mgr.GetConfig())
	cfg.QPS, cfg.Burst = l.QPS, l.Burst
	if cache == nil {
		cache = &client.CacheOptions{Reader: mgr.GetCache()}
	}
	c, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), Cache: cache})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot build API client: %w", err)
	}
	return c, cfg, nil
}
