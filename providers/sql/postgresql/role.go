package postgresql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/managed"
	pgv1 "github.com/strata-dev/strata/providers/sql/apis/postgresql/v1alpha1"
)

type role struct {
	s      *server
	client client.Client
}

func (e *role) Observe(ctx context.Context, mg managed.Managed) (managed.Observation, error) {
	cr := mg.(*pgv1.Role)
	name := managed.ExternalName(cr)
	if err := checkName("role", name); err != nil {
		return managed.Observation{}, err
	}
	p, err := e.s.pool(ctx, e.s.defaultDB)
	if err != nil {
		return managed.Observation{}, err
	}
	var login, createDB, createRole, inherit bool
	var limit int32
	err = p.QueryRow(ctx, `SELECT rolcanlogin, rolcreatedb, rolcreaterole, rolinherit, rolconnlimit
		FROM pg_roles WHERE rolname = $1`, name).Scan(&login, &createDB, &createRole, &inherit, &limit)
	if errors.Is(err, pgx.ErrNoRows) {
		return managed.Observation{}, nil
	}
	if err != nil {
		return managed.Observation{}, fmt.Errorf("cannot read role %q on postgres at %s: %w", name, e.s.addr(), err)
	}
	rows, err := p.Query(ctx, `SELECT g.rolname FROM pg_auth_members m
		JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
		WHERE u.rolname = $1 ORDER BY g.rolname`, name)
	if err != nil {
		return managed.Observation{}, fmt.Errorf("cannot read memberships of role %q: %w", name, err)
	}
	memberOf, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return managed.Observation{}, fmt.Errorf("cannot read memberships of role %q: %w", name, err)
	}
	obs := pgv1.RoleObservation{
		Privileges:      pgv1.RolePrivileges{Login: &login, CreateDB: &createDB, CreateRole: &createRole, Inherit: &inherit},
		ConnectionLimit: &limit,
		MemberOf:        memberOf,
	}
	cr.Status.AtProvider = obs

	fp := &cr.Spec.ForProvider
	li := false
	lateBool := func(p **bool, v bool) {
		if *p == nil {
			*p, li = &v, true
		}
	}
	lateBool(&fp.Privileges.Login, login)
	lateBool(&fp.Privileges.CreateDB, createDB)
	lateBool(&fp.Privileges.CreateRole, createRole)
	lateBool(&fp.Privileges.Inherit, inherit)
	if fp.ConnectionLimit == nil {
		fp.ConnectionLimit, li = &limit, true
	}
	var drift []string
	flag := func(what string, want *bool, got bool) {
		if *want != got {
			drift = append(drift, fmt.Sprintf("%s is %t, want %t", what, got, *want))
		}
	}
	flag("login", fp.Privileges.Login, login)
	flag("createDb", fp.Privileges.CreateDB, createDB)
	flag("createRole", fp.Privileges.CreateRole, createRole)
	flag("inherit", fp.Privileges.Inherit, inherit)
	if *fp.ConnectionLimit != limit {
		drift = append(drift, fmt.Sprintf("connection limit is %d, want %d", limit, *fp.ConnectionLimit))
	}
	if want := sortedSet(fp.MemberOf); !slices.Equal(want, memberOf) {
		drift = append(drift, fmt.Sprintf("member of %v, want %v", memberOf, want))
	}
	password := ""
	if fp.PasswordSecretRef != nil || cr.Spec.WriteConnectionSecretToReference != nil {
		if password, err = managed.DesiredPassword(ctx, e.client, cr, cr.Spec.ForProvider.PasswordSecretRef); err != nil {
			return managed.Observation{}, err
		}
		if fp.PasswordSecretRef != nil && cr.Spec.WriteConnectionSecretToReference != nil && managed.PublishedPassword(ctx, e.client, cr) != password {
			drift = append(drift, "password differs from passwordSecretRef")
		}
	}
	obsOut := managed.Observation{
		Exists:          true,
		UpToDate:        len(drift) == 0,
		Drift:           strings.Join(drift, "; "),
		LateInitialized: li,
	}
	if len(drift) == 0 {
		obsOut.ConnectionDetails = managed.LoginDetails(name, e.s.host, e.s.port, password)
	}
	return obsOut, nil
}

func sortedSet(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func attrs(fp pgv1.RoleParameters) string {
	var b strings.Builder
	opt := func(p *bool, yes, no string) {
		if p == nil {
			return
		}
		if *p {
			b.WriteString(" " + yes)
		} else {
			b.WriteString(" " + no)
		}
	}
	opt(fp.Privileges.Login, "LOGIN", "NOLOGIN")
	opt(fp.Privileges.CreateDB, "CREATEDB", "NOCREATEDB")
	opt(fp.Privileges.CreateRole, "CREATEROLE", "NOCREATEROLE")
	opt(fp.Privileges.Inherit, "INHERIT", "NOINHERIT")
	if fp.ConnectionLimit != nil {
		fmt.Fprintf(&b, " CONNECTION LIMIT %d", *fp.ConnectionLimit)
	}
	return b.String()
}

func (e *role) Create(ctx context.Context, mg managed.Managed) (managed.Creation, error) {
	cr := mg.(*pgv1.Role)
	name := managed.ExternalName(cr)
	p, err := e.s.pool(ctx, e.s.defaultDB)
	if err != nil {
		return managed.Creation{}, err
	}
	// The password is saved in the connection Secret before the role
	// exists, so a crash here never loses it.
	password, err := managed.DesiredPassword(ctx, e.client, cr, cr.Spec.ForProvider.PasswordSecretRef)
	if err != nil {
		return managed.Creation{}, err
	}
	fp := cr.Spec.ForProvider
	if fp.Privileges == (pgv1.RolePrivileges{}) {
		fp.Privileges = cr.Spec.InitProvider.Privileges
	}
	sql := "CREATE ROLE " + ident(name) + " WITH" + attrs(fp)
	if password != "" {
		q, err := quoteLiteral(ctx, p, password)
		if err != nil {
			return managed.Creation{}, err
		}
		sql += " PASSWORD " + q
	}
	if _, err := p.Exec(ctx, sql); err != nil {
		return managed.Creation{}, taken(fmt.Errorf("cannot create role %q on postgres at %s: %w", name, e.s.addr(), err))
	}
	for _, g := range sortedSet(fp.MemberOf) {
		if _, err := p.Exec(ctx, "GRANT "+ident(g)+" TO "+ident(name)); err != nil {
			return managed.Creation{}, fmt.Errorf("cannot grant role %q to %q: %w", g, name, err)
		}
	}
	return managed.Creation{ConnectionDetails: managed.LoginDetails(name, e.s.host, e.s.port, password)}, nil
}

func (e *role) Update(ctx context.Context, mg managed.Managed) (managed.Update, error) {
	cr := mg.(*pgv1.Role)
	name := managed.ExternalName(cr)
	p, err := e.s.pool(ctx, e.s.defaultDB)
	if err != nil {
		return managed.Update{}, err
	}
	fp := cr.Spec.ForProvider
	password := ""
	if fp.PasswordSecretRef != nil || cr.Spec.WriteConnectionSecretToReference != nil {
		if password, err = managed.DesiredPassword(ctx, e.client, cr, cr.Spec.ForProvider.PasswordSecretRef); err != nil {
			return managed.Update{}, err
		}
	}
	sql := "ALTER ROLE " + ident(name) + " WITH" + attrs(fp)
	if password != "" {
		q, err := quoteLiteral(ctx, p, password)
		if err != nil {
			return managed.Update{}, err
		}
		sql += " PASSWORD " + q
	}
	if _, err := p.Exec(ctx, sql); err != nil {
		return managed.Update{}, permanent(fmt.Errorf("cannot alter role %q on postgres at %s: %w", name, e.s.addr(), err))
	}
	want, got := sortedSet(fp.MemberOf), cr.Status.AtProvider.MemberOf
	for _, g := range want {
		if !slices.Contains(got, g) {
			if _, err := p.Exec(ctx, "GRANT "+ident(g)+" TO "+ident(name)); err != nil {
				return managed.Update{}, fmt.Errorf("cannot grant role %q to %q: %w", g, name, err)
			}
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			if _, err := p.Exec(ctx, "REVOKE "+ident(g)+" FROM "+ident(name)); err != nil {
				return managed.Update{}, fmt.Errorf("cannot revoke role %q from %q: %w", g, name, err)
			}
		}
	}
	return managed.Update{ConnectionDetails: managed.LoginDetails(name, e.s.host, e.s.port, password)}, nil
}

func (e *role) Delete(ctx context.Context, mg managed.Managed) error {
	name := managed.ExternalName(mg)
	p, err := e.s.pool(ctx, e.s.defaultDB)
	if err != nil {
		return err
	}
	if _, err := p.Exec(ctx, "DROP ROLE IF EXISTS "+ident(name)); err != nil {
		return fmt.Errorf("cannot drop role %q on postgres at %s: %w", name, e.s.addr(), err)
	}
	return nil
}
