package tenant

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// User is the user an object in namespace acts as: the first service account
// name of accounts that is not empty (the object's own, then any fallbacks
// such as the manager's --default-service-account), as
// system:serviceaccount:NAMESPACE:NAME; "" when all are empty, which means
// the manager's own identity.
func User(namespace string, accounts ...string) string {
	for _, sa := range accounts {
		if sa != "" {
			return "system:serviceaccount:" + namespace + ":" + sa
		}
	}
	return ""
}

// Impersonating returns a copy of cfg that acts as user ("" leaves the copy
// as cfg's own identity).
func Impersonating(cfg *rest.Config, user string) *rest.Config {
	c := rest.CopyConfig(cfg)
	if user != "" {
		c.Impersonate = rest.ImpersonationConfig{UserName: user}
	}
	return c
}

// Clients builds uncached API clients per user and keeps them: reads go to
// the API server with the user's rights (never through the manager's cache,
// so a tenant cannot see what the manager's cache holds), and one client per
// user shares its connections. Safe for concurrent use.
type Clients struct {
	cfg    *rest.Config
	scheme *runtime.Scheme
	mapper meta.RESTMapper

	mu sync.Mutex
	m  map[string]client.Client
}

// NewClients returns Clients that impersonate from cfg (the manager's).
func NewClients(cfg *rest.Config, scheme *runtime.Scheme, mapper meta.RESTMapper) *Clients {
	return &Clients{cfg: cfg, scheme: scheme, mapper: mapper, m: map[string]client.Client{}}
}

// For returns the client acting as user; "" is the manager's own identity,
// uncached.
func (c *Clients) For(user string) (client.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.m[user]; ok {
		return cl, nil
	}
	cl, err := client.New(Impersonating(c.cfg, user), client.Options{Scheme: c.scheme, Mapper: c.mapper})
	if err != nil {
		return nil, fmt.Errorf("cannot build a client for %q: %w", user, err)
	}
	c.m[user] = cl
	return cl, nil
}
