package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/managed"
	myv1 "github.com/strata-dev/strata/providers/sql/apis/mysql/v1alpha1"
)

// QuoteIdentifier quotes a MySQL identifier (database, table, charset) in
// backticks, doubling any backtick inside, so any string names exactly one
// object.
func QuoteIdentifier(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// server is a connection to one MySQL server.
type server struct {
	host, port string
	db         *sql.DB
}

func (s *server) addr() string { return net.JoinHostPort(s.host, s.port) }

// dbs caches one *sql.DB per DSN.
type dbs struct {
	mu sync.Mutex
	m  map[string]*sql.DB
}

func (d *dbs) get(dsn string) (*sql.DB, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if db, ok := d.m[dsn]; ok {
		return db, nil
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	d.m[dsn] = db
	return db, nil
}

type connector struct {
	client   client.Client
	dbs      *dbs
	external func(s *server, c client.Client) managed.External
}

func (c *connector) Connect(ctx context.Context, mg managed.Managed) (managed.External, error) {
	s, err := login(ctx, c.client, c.dbs, managed.ProviderConfigName(mg))
	if err != nil {
		return nil, err
	}
	return c.external(s, c.client), nil
}

// login connects and logs in to the server a ProviderConfig names with its
// credentials. It is the ProviderConfig's connection check, and the first
// step of every Connect.
func login(ctx context.Context, c client.Client, d *dbs, name string) (*server, error) {
	pc := &myv1.ProviderConfig{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, pc); err != nil {
		return nil, fmt.Errorf("cannot get mysql ProviderConfig %q: %w", name, err)
	}
	ref := pc.Spec.ConnectionSecretRef
	sec := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, sec); err != nil {
		return nil, fmt.Errorf("cannot read the connection Secret %s/%s of ProviderConfig %q: %w", ref.Namespace, ref.Name, name, err)
	}
	get := func(k, def string) string {
		if v := string(sec.Data[k]); v != "" {
			return v
		}
		return def
	}
	s := &server{host: get("endpoint", ""), port: get("port", "3306")}
	if s.host == "" {
		return nil, fmt.Errorf("connection Secret %s/%s of ProviderConfig %q has no endpoint", ref.Namespace, ref.Name, name)
	}
	cfg := mysql.NewConfig()
	cfg.User = get("username", "root")
	cfg.Passwd = string(sec.Data["password"])
	cfg.Net = "tcp"
	cfg.Addr = s.addr()
	cfg.InterpolateParams = true
	cfg.TLSConfig = get("tls", "false")
	cfg.Timeout = 5 * time.Second
	db, err := d.get(cfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("cannot connect to mysql at %s: %w", s.addr(), err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		return nil, fmt.Errorf("cannot connect to mysql at %s: %w", s.addr(), err)
	}
	s.db = db
	return s, nil
}

func checkName(kind, name string, max int) error {
	if name == "" {
		return kitreconcile.Terminal(managed.ReasonInvalidSpec, fmt.Errorf("%s name is empty", kind))
	}
	if len(name) > max {
		return kitreconcile.Terminal(managed.ReasonInvalidSpec, fmt.Errorf("%s name %q is longer than MySQL's %d-character limit", kind, name, max))
	}
	return nil
}
