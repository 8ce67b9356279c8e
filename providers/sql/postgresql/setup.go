package postgresql

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/managed"
	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
	pgv1 "github.com/strata-dev/strata/providers/sql/apis/postgresql/v1alpha1"
)

type (
	managedv1Reference = managedv1.Reference
	managedv1Selector  = managedv1.Selector
)

var (
	roleRef = managed.Referenced{Kind: "Role",
		New: func() managed.Managed { return &pgv1.Role{} }, NewList: func() client.ObjectList { return &pgv1.RoleList{} }}
	databaseRef = managed.Referenced{Kind: "Database",
		New: func() managed.Managed { return &pgv1.Database{} }, NewList: func() client.ObjectList { return &pgv1.DatabaseList{} }}
	grantRef = managed.Referenced{Kind: "Grant",
		New: func() managed.Managed { return &pgv1.Grant{} }, NewList: func() client.ObjectList { return &pgv1.GrantList{} }}
)

// Setup registers the Database, Role, Grant and ProviderConfig controllers
// of postgresql.sql.strata.dev.
func Setup(mgr ctrl.Manager, o managed.Options) error {
	ps := &pools{m: map[string]*pgxpool.Pool{}}
	mc, err := managed.Client(mgr, o)
	if err != nil {
		return err
	}
	conn := func(f func(s *server, c client.Client) managed.External) managed.Connector {
		return &connector{client: mc, pools: ps, external: f}
	}
	kinds := []managed.Kind{
		{New: databaseRef.New, Resolve: resolveDatabase,
			Connector: conn(func(s *server, _ client.Client) managed.External { return &database{s: s} })},
		{New: roleRef.New,
			Connector: conn(func(s *server, c client.Client) managed.External { return &role{s: s, client: c} })},
		{New: grantRef.New, Resolve: resolveGrant,
			Connector: conn(func(s *server, _ client.Client) managed.External { return &grant{s: s} })},
	}
	for _, k := range kinds {
		k.ProviderConfig = func() managed.ProviderConfig { return &pgv1.ProviderConfig{} }
		if err := managed.Setup(mgr, o, k); err != nil {
			return err
		}
	}
	var users []managed.User
	for _, r := range []managed.Referenced{databaseRef, roleRef, grantRef} {
		users = append(users, managed.User{New: r.New, NewList: r.NewList})
	}
	return managed.SetupProviderConfig(mgr, managed.ProviderConfigKind{
		New:   func() managed.ProviderConfig { return &pgv1.ProviderConfig{} },
		Users: users,
		Check: func(ctx context.Context, pc managed.ProviderConfig) error {
			_, err := login(ctx, mc, ps, pc.GetName())
			return err
		},
	})
}
