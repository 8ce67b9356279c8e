package postgresql

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/managed"
	pgv1 "github.com/strata-dev/strata/providers/sql/apis/postgresql/v1alpha1"
)

// server is a connection to one PostgreSQL server, as a ProviderConfig
// describes it.
type server struct {
	host, port string
	user       string
	defaultDB  string
	pools      *pools
	url        func(db string) string
}

// addr is host:port, for messages.
func (s *server) addr() string { return net.JoinHostPort(s.host, s.port) }

// pool returns a connection pool to one database of the server.
func (s *server) pool(ctx context.Context, db string) (*pgxpool.Pool, error) {
	p, err := s.pools.get(s.url(db))
	if err != nil {
		return nil, fmt.Errorf("cannot connect to postgres at %s: %w", s.addr(), err)
	}
	return p, nil
}

// pools caches one pgxpool per connection URL, so reconciles share
// connections instead of dialling each time.
type pools struct {
	mu sync.Mutex
	m  map[string]*pgxpool.Pool
}

func (p *pools) get(u string) (*pgxpool.Pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pl, ok := p.m[u]; ok {
		return pl, nil
	}
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		return nil, fmt.Errorf("invalid connection settings: %w", err)
	}
	cfg.MaxConns = 4
	cfg.MaxConnIdleTime = time.Minute
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pl, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	p.m[u] = pl
	return pl, nil
}

// connector reads a managed resource's ProviderConfig and its Secret.
type connector struct {
	client client.Client
	pools  *pools
	// external builds the kind's External once connected.
	external func(s *server, c client.Client) managed.External
}

func (c *connector) Connect(ctx context.Context, mg managed.Managed) (managed.External, error) {
	s, err := login(ctx, c.client, c.pools, managed.ProviderConfigName(mg))
	if err != nil {
		return nil, err
	}
	return c.external(s, c.client), nil
}

// login connects to the server a ProviderConfig names and logs in to its
// default database with the ProviderConfig's credentials. It is the
// ProviderConfig's connection check, and the first step of every Connect.
func login(ctx context.Context, c client.Client, ps *pools, pcName string) (*server, error) {
	s, err := connectServer(ctx, c, ps, pcName)
	if err != nil {
		return nil, err
	}
	p, err := s.pool(ctx, s.defaultDB)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.Ping(pctx); err != nil {
		return nil, fmt.Errorf("cannot connect to postgres at %s: %w", s.addr(), err)
	}
	return s, nil
}

func connectServer(ctx context.Context, c client.Client, ps *pools, pcName string) (*server, error) {
	pc := &pgv1.ProviderConfig{}
	if err := c.Get(ctx, client.ObjectKey{Name: pcName}, pc); err != nil {
		return nil, fmt.Errorf("cannot get postgresql ProviderConfig %q: %w", pcName, err)
	}
	ref := pc.Spec.ConnectionSecretRef
	sec := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, sec); err != nil {
		return nil, fmt.Errorf("cannot read the connection Secret %s/%s of ProviderConfig %q: %w", ref.Namespace, ref.Name, pcName, err)
	}
	get := func(k, def string) string {
		if v := string(sec.Data[k]); v != "" {
			return v
		}
		return def
	}
	s := &server{
		host:      get("endpoint", ""),
		port:      get("port", "5432"),
		user:      get("username", "postgres"),
		defaultDB: pc.Spec.DefaultDatabase,
		pools:     ps,
	}
	if s.host == "" {
		return nil, fmt.Errorf("connection Secret %s/%s of ProviderConfig %q has no endpoint", ref.Namespace, ref.Name, pcName)
	}
	if s.defaultDB == "" {
		s.defaultDB = "postgres"
	}
	password, sslmode := string(sec.Data["password"]), get("sslmode", "prefer")
	s.url = func(db string) string {
		u := url.URL{Scheme: "postgres", Host: s.addr(), Path: "/" + db}
		if password != "" {
			u.User = url.UserPassword(s.user, password)
		} else {
			u.User = url.User(s.user)
		}
		u.RawQuery = url.Values{"sslmode": {sslmode}}.Encode()
		return u.String()
	}
	return s, nil
}

// quoteLiteral quotes a string literal with the server's quote_literal, for
// statements (CREATE ROLE ... PASSWORD) that take no bind parameters.
func quoteLiteral(ctx context.Context, p *pgxpool.Pool, s string) (string, error) {
	var q string
	if err := p.QueryRow(ctx, "SELECT quote_literal($1::text)", s).Scan(&q); err != nil {
		return "", fmt.Errorf("cannot quote literal: %w", err)
	}
	return q, nil
}

// checkName rejects names PostgreSQL would truncate.
func checkName(kind, name string) error {
	if name == "" {
		return kitreconcile.Terminal(managed.ReasonInvalidSpec, fmt.Errorf("%s name is empty", kind))
	}
	if len(name) > 63 {
		return kitreconcile.Terminal(managed.ReasonInvalidSpec, fmt.Errorf("%s name %q is longer than PostgreSQL's 63-byte limit", kind, name))
	}
	return nil
}

// closeDB closes and forgets the pool for one URL (before dropping its
// database).
func (p *pools) closeDB(u string) {
	p.mu.Lock()
	pl, ok := p.m[u]
	delete(p.m, u)
	p.mu.Unlock()
	if ok {
		pl.Close()
	}
}
