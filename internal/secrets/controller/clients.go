package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/kit/egress"
	"github.com/strata-dev/strata/internal/secrets/provider"
)

// Default per-store rate limit, when spec.rateLimit is not set.
const (
	DefaultStoreQPS   = 10
	DefaultStoreBurst = 20
)

// clientTTL is how long a built client is reused; after it, the client is
// rebuilt, so rotated credentials Secrets and short-lived tokens are
// picked up.
const clientTTL = 10 * time.Minute

type storeKey struct{ kind, namespace, name string }

func keyOf(s secretsv1.GenericStore) storeKey {
	return storeKey{kind: s.GetKind(), namespace: s.GetNamespace(), name: s.GetName()}
}

type cachedClient struct {
	generation int64
	built      time.Time
	client     provider.Client
}

// Clients builds and caches one provider.Client per store, and bounds each
// store's requests with its rate limit, across every ExternalSecret that
// uses it.
type Clients struct {
	// Egress is the networks SecretStores' clients may not connect to.
	Egress egress.Policy

	constructors map[string]provider.Constructor
	kube         client.Client
	local        *rest.Config
	now          func() time.Time

	mu       sync.Mutex
	clients  map[storeKey]*cachedClient
	limiters map[storeKey]*rate.Limiter
	calls    map[storeKey]*atomic.Int64
	reads    map[storeKey]*atomic.Int64
}

// NewClients returns a cache that builds clients with constructors; kube
// reads the stores' credentials and local is the API server's config.
func NewClients(constructors map[string]provider.Constructor, kube client.Client, local *rest.Config) *Clients {
	return &Clients{
		constructors: constructors, kube: kube, local: local, now: time.Now,
		clients:  map[storeKey]*cachedClient{},
		limiters: map[storeKey]*rate.Limiter{},
		calls:    map[storeKey]*atomic.Int64{},
		reads:    map[storeKey]*atomic.Int64{},
	}
}

// limiter returns the store's limiter, adjusted to its current spec.
func (c *Clients) limiter(k storeKey, spec *secretsv1.SecretStoreSpec) (*rate.Limiter, *atomic.Int64) {
	qps, burst := DefaultStoreQPS, DefaultStoreBurst
	if rl := spec.RateLimit; rl != nil {
		qps, burst = int(rl.QPS), int(rl.Burst)
		if burst == 0 {
			burst = qps
		}
	}
	l, ok := c.limiters[k]
	if !ok {
		l = rate.NewLimiter(rate.Limit(qps), burst)
		c.limiters[k] = l
		c.calls[k] = &atomic.Int64{}
		c.reads[k] = &atomic.Int64{}
	} else if l.Limit() != rate.Limit(qps) || l.Burst() != burst {
		l.SetLimit(rate.Limit(qps))
		l.SetBurst(burst)
	}
	return l, c.calls[k]
}

// Calls returns how many requests were sent to a store's provider (for
// tests and benchmarks).
func (c *Clients) Calls(kind, namespace, name string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.calls[storeKey{kind, namespace, name}]; ok {
		return n.Load()
	}
	return 0
}

// Reads returns how many secret reads (GetSecret, GetSecretMap,
// GetAllSecrets) were sent to a store's provider; unlike Calls it leaves out
// logins and validations (for tests).
func (c *Clients) Reads(kind, namespace, name string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.reads[storeKey{kind, namespace, name}]; ok {
		return n.Load()
	}
	return 0
}

// Get returns the store's client, building it when there is none for the
// store's generation or it is older than clientTTL. fresh forces a rebuild
// (store validation, so changed credentials show at once).
func (c *Clients) Get(ctx context.Context, s secretsv1.GenericStore, fresh bool) (provider.Client, error) {
	k := keyOf(s)
	spec := s.GetSpec()
	c.mu.Lock()
	lim, calls := c.limiter(k, spec)
	if cc, ok := c.clients[k]; ok {
		if !fresh && cc.generation == s.GetGeneration() && c.now().Sub(cc.built) < clientTTL {
			c.mu.Unlock()
			return cc.client, nil
		}
		// Not closed: other reconciles may still be using it.
		delete(c.clients, k)
	}
	c.mu.Unlock()
	name := provider.Name(&spec.Provider)
	ctor, ok := c.constructors[name]
	if !ok {
		if name == "" {
			return nil, fmt.Errorf("%s %s has no provider: %w", k.kind, s.GetName(), provider.ErrInvalidConfig)
		}
		return nil, fmt.Errorf("provider %q is not available in this build: %w", name, provider.ErrInvalidConfig)
	}
	ps := provider.Store{Kind: k.kind, Name: k.name, Namespace: k.namespace, Spec: spec}
	if k.namespace != "" {
		ps.Egress = c.Egress
	}
	// Building a client (a login) is a request to the store too.
	if err := lim.Wait(ctx); err != nil {
		return nil, fmt.Errorf("rate limit of %s: %w", ps, err)
	}
	calls.Add(1)
	pc, err := ctor(ctx, ps, &storeKube{client: c.kube, local: c.local, store: ps})
	if err != nil {
		return nil, err
	}
	lc := &limited{Client: pc, limiter: lim, calls: calls, reads: c.reads[k]}
	lc.maxRetries, lc.retryInterval = retrySettings(spec.RetrySettings)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.clients[k]; ok && !fresh && cc.generation == s.GetGeneration() {
		// Another reconcile built one meanwhile: use it.
		_ = pc.Close(ctx)
		return cc.client, nil
	}
	c.clients[k] = &cachedClient{generation: s.GetGeneration(), built: c.now(), client: lc}
	return lc, nil
}

// Drop forgets a store's client after a provider error, so the next use
// builds (logs in) again. The client is not closed: other reconciles may
// still be using it.
func (c *Clients) Drop(kind, namespace, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.clients, storeKey{kind, namespace, name})
}

// Forget closes and forgets a deleted store's client and limiter.
func (c *Clients) Forget(ctx context.Context, kind, namespace, name string) {
	k := storeKey{kind, namespace, name}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.clients[k]; ok {
		_ = cc.client.Close(ctx)
		delete(c.clients, k)
	}
	delete(c.limiters, k)
	delete(c.calls, k)
	delete(c.reads, k)
}

// limited is a provider.Client whose every call waits for the store's rate
// limiter.
type limited struct {
	provider.Client
	limiter *rate.Limiter
	calls   *atomic.Int64
	reads   *atomic.Int64
	// maxRetries and retryInterval are the store's spec.retrySettings.
	maxRetries    int
	retryInterval time.Duration
}

func (l *limited) wait(ctx context.Context) error {
	if err := l.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("store rate limit: %w", err)
	}
	l.calls.Add(1)
	return nil
}

// Retry bounds of spec.retrySettings.
const (
	defaultRetryInterval = time.Second
	maxRetryInterval     = 30 * time.Second
)

// retrySettings reads spec.retrySettings: no retries without them; the
// interval defaults to 1s and is at most 30s (the CRD checks its format).
func retrySettings(rs *secretsv1.SecretStoreRetrySettings) (int, time.Duration) {
	if rs == nil || rs.MaxRetries == nil || *rs.MaxRetries <= 0 {
		return 0, 0
	}
	interval := defaultRetryInterval
	if rs.RetryInterval != nil {
		if d, err := time.ParseDuration(*rs.RetryInterval); err == nil && d >= 0 {
			interval = min(d, maxRetryInterval)
		}
	}
	return int(*rs.MaxRetries), interval
}

// retriable says whether a failed request may succeed when sent again: not
// a missing key, an unsupported operation, a configuration error or a
// cancelled context.
func retriable(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, provider.ErrNotFound) && !errors.Is(err, provider.ErrNotSupported) &&
		!errors.Is(err, provider.ErrInvalidConfig) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// do sends one request through the rate limiter, and sends it again (each
// time through the limiter) after retryInterval, up to maxRetries times,
// while it fails with a retriable error.
func (l *limited) do(ctx context.Context, read bool, fn func() error) error {
	for attempt := 0; ; attempt++ {
		if err := l.wait(ctx); err != nil {
			return err
		}
		if read {
			l.reads.Add(1)
		}
		err := fn()
		if err == nil || attempt >= l.maxRetries || !retriable(ctx, err) {
			return err
		}
		t := time.NewTimer(l.retryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (l *limited) GetSecret(ctx context.Context, ref provider.Ref) (v []byte, err error) {
	err = l.do(ctx, true, func() error { v, err = l.Client.GetSecret(ctx, ref); return err })
	return v, err
}

func (l *limited) GetSecretMap(ctx context.Context, ref provider.Ref) (m map[string][]byte, err error) {
	err = l.do(ctx, true, func() error { m, err = l.Client.GetSecretMap(ctx, ref); return err })
	return m, err
}

func (l *limited) GetAllSecrets(ctx context.Context, find provider.Find) (m map[string][]byte, err error) {
	err = l.do(ctx, true, func() error { m, err = l.Client.GetAllSecrets(ctx, find); return err })
	return m, err
}

func (l *limited) PushSecret(ctx context.Context, ref provider.PushRef, value []byte) error {
	return l.do(ctx, false, func() error { return l.Client.PushSecret(ctx, ref, value) })
}

func (l *limited) DeleteSecret(ctx context.Context, ref provider.PushRef) error {
	return l.do(ctx, false, func() error { return l.Client.DeleteSecret(ctx, ref) })
}

func (l *limited) Validate(ctx context.Context) error {
	return l.do(ctx, false, func() error { return l.Client.Validate(ctx) })
}

// PushSecretAs and DeleteSecretAs pass through when the store records
// writers (provider.OwnedWriter).
func (l *limited) PushSecretAs(ctx context.Context, ref provider.PushRef, value []byte, owner string, adopt bool) error {
	ow, ok := l.Client.(interface {
		PushSecretAs(context.Context, provider.PushRef, []byte, string, bool) error
	})
	if !ok {
		return fmt.Errorf("push with owner: %w", provider.ErrNotSupported)
	}
	return l.do(ctx, false, func() error { return ow.PushSecretAs(ctx, ref, value, owner, adopt) })
}

// DeleteSecretAs: see PushSecretAs.
func (l *limited) DeleteSecretAs(ctx context.Context, ref provider.PushRef, owner string, adopt bool) error {
	dw, ok := l.Client.(interface {
		DeleteSecretAs(context.Context, provider.PushRef, string, bool) error
	})
	if !ok {
		return fmt.Errorf("delete with owner: %w", provider.ErrNotSupported)
	}
	return l.do(ctx, false, func() error { return dw.DeleteSecretAs(ctx, ref, owner, adopt) })
}
