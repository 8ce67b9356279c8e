package kubeclient

import (
	"fmt"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Limit is a client-side rate limit: requests per second and burst. A zero
// field means "the subsystem's default" (see Or); a negative QPS means no
// client-side limit at all (see Unlimited).
type Limit struct {
	QPS   float32
	Burst int
}

// Unlimited turns the client-side rate limit off: the API server protects
// itself with API Priority and Fairness (it queues, then answers 429 with
// Retry-After, which the client honours), so a controller writes as fast as
// the API server lets it.
var Unlimited = Limit{QPS: -1, Burst: -1}

// Or returns l with each zero field taken from def, so a flag left at 0
// keeps the subsystem's own default.
func (l Limit) Or(def Limit) Limit {
	if l.QPS == 0 {
		l.QPS = def.QPS
	}
	if l.Burst == 0 {
		l.Burst = def.Burst
	}
	return l
}

// Config returns a copy of cfg limited to l. A zero limit keeps cfg's own
// (client-go's default is 5 requests per second, controller-runtime's 20).
func (l Limit) Config(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	if l.QPS == 0 {
		return cfg
	}
	cfg.RateLimiter = nil
	cfg.QPS, cfg.Burst = l.QPS, l.Burst
	switch {
	case l.QPS < 0:
		cfg.QPS, cfg.Burst = -1, 0
	case l.Burst <= 0:
		// A limit without a burst (--kube-api-qps alone) bursts to twice
		// the rate.
		cfg.Burst = max(int(2*l.QPS), 1)
	}
	return cfg
}

// ShardLabel is the label whose value names the shard (the manager) that
// reconciles an object, as in Flux: a manager started with
// --watch-label-selector "sharding.strata.dev/key in (shard1)" sees only
// objects labelled for shard1; the default shard runs with
// "!sharding.strata.dev/key". Objects Strata creates for a labelled object
// (a claim's XR, an XR's composed resources) carry the same label.
const ShardLabel = "sharding.strata.dev/key"

// New returns a client for mgr's cluster limited to l, and the config it was
// built from. cache says how reads are served; nil reads typed objects from
// the manager's cache (and unstructured ones directly from the API server).
func New(mgr ctrl.Manager, l Limit, cache *client.CacheOptions) (client.Client, *rest.Config, error) {
	cfg := l.Config(mgr.GetConfig())
	if cache == nil {
		cache = &client.CacheOptions{Reader: mgr.GetCache()}
	}
	c, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), Cache: cache})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot build API client: %w", err)
	}
	return c, cfg, nil
}
