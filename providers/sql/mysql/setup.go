package mysql

import (
	"context"
	"database/sql"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/managed"
	myv1 "github.com/strata-dev/strata/providers/sql/apis/mysql/v1alpha1"
)

var (
	userRef = managed.Referenced{Kind: "User",
		New: func() managed.Managed { return &myv1.User{} }, NewList: func() client.ObjectList { return &myv1.UserList{} }}
	databaseRef = managed.Referenced{Kind: "Database",
		New: func() managed.Managed { return &myv1.Database{} }, NewList: func() client.ObjectList { return &myv1.DatabaseList{} }}
	grantRef = managed.Referenced{Kind: "Grant",
		New: func() managed.Managed { return &myv1.Grant{} }, NewList: func() client.ObjectList { return &myv1.GrantList{} }}
)

// Setup registers the Database, User, Grant and ProviderConfig controllers
// of mysql.sql.strata.dev.
func Setup(mgr ctrl.Manager, o managed.Options) error {
	d := &dbs{m: map[string]*sql.DB{}}
	mc, err := managed.Client(mgr, o)
	if err != nil {
		return err
	}
	conn := func(f func(s *server, c client.Client) managed.External) managed.Connector {
		return &connector{client: mc, dbs: d, external: f}
	}
	kinds := []managed.Kind{
		{New: databaseRef.New, Connector: conn(func(s *server, _ client.Client) managed.External { return &database{s: s} })},
		{New: userRef.New, Connector: conn(func(s *server, c client.Client) managed.External { return &user{s: s, client: c} })},
		{New: grantRef.New, Resolve: resolveGrant, Connector: conn(func(s *server, _ client.Client) managed.External { return &grant{s: s} })},
	}
	for _, k := range kinds {
		k.ProviderConfig = func() managed.ProviderConfig { return &myv1.ProviderConfig{} }
		if err := managed.Setup(mgr, o, k); err != nil {
			return err
		}
	}
	var users []managed.User
	for _, r := range []managed.Referenced{databaseRef, userRef, grantRef} {
		users = append(users, managed.User{New: r.New, NewList: r.NewList})
	}
	return managed.SetupProviderConfig(mgr, managed.ProviderConfigKind{
		New:   func() managed.ProviderConfig { return &myv1.ProviderConfig{} },
		Users: users,
		Check: func(ctx context.Context, pc managed.ProviderConfig) error {
			_, err := login(ctx, mc, d, pc.GetName())
			return err
		},
	})
}
