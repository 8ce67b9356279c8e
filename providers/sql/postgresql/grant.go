package postgresql

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/managed"
	pgv1 "github.com/strata-dev/strata/providers/sql/apis/postgresql/v1alpha1"
)

type grant struct{ s *server }

// allPrivileges are what ALL expands to, per object.
var allPrivileges = map[bool][]string{
	false: {"CONNECT", "CREATE", "TEMPORARY"}, // database
	true:  {"CREATE", "USAGE"},                // schema
}

// wantPrivileges returns the desired privileges, expanded and sorted, or a
// terminal error for a privilege the object does not have.
func wantPrivileges(fp pgv1.GrantParameters) ([]string, error) {
	onSchema := fp.Schema != ""
	valid := allPrivileges[onSchema]
	var out []string
	for _, p := range fp.Privileges {
		if p == "ALL" {
			out = append(out, valid...)
			continue
		}
		if !slices.Contains(valid, string(p)) {
			what := "a database"
			if onSchema {
				what = "a schema"
			}
			return nil, kitreconcile.Terminal(managed.ReasonInvalidSpec, fmt.Errorf("privilege %s does not apply to %s (valid: %s)", p, what, strings.Join(valid, ", ")))
		}
		out = append(out, string(p))
	}
	return sortedSet(out), nil
}

func (e *grant) check(fp pgv1.GrantParameters) error {
	if fp.Role == "" {
		return kitreconcile.Terminal(managed.ReasonInvalidSpec, fmt.Errorf("grant has no role: set role, roleRef or roleSelector"))
	}
	if len(fp.Privileges) > 0 && fp.Database == "" {
		return kitreconcile.Terminal(managed.ReasonInvalidSpec, fmt.Errorf("grant of privileges has no database: set database, databaseRef or databaseSelector"))
	}
	return nil
}

// objectPool returns the pool to run the grant's statements on: the
// database itself for schema privileges, the default one otherwise.
func (e *grant) objectPool(ctx context.Context, fp pgv1.GrantParameters) (*pgxpool.Pool, error) {
	if fp.Schema != "" {
		return e.s.pool(ctx, fp.Database)
	}
	return e.s.pool(ctx, e.s.defaultDB)
}

func (e *grant) observed(ctx context.Context, fp pgv1.GrantParameters) ([]string, bool, bool, error) {
	member := false
	if fp.MemberOf != "" {
		p, err := e.s.pool(ctx, e.s.defaultDB)
		if err != nil {
			return nil, false, false, err
		}
		if err := p.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_auth_members m
			JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
			WHERE g.rolname = $1 AND u.rolname = $2)`, fp.MemberOf, fp.Role).Scan(&member); err != nil {
			return nil, false, false, fmt.Errorf("cannot read membership of %q in %q: %w", fp.Role, fp.MemberOf, err)
		}
	}
	if len(fp.Privileges) == 0 {
		return nil, member, true, nil
	}
	var exists bool
	p, err := e.s.pool(ctx, e.s.defaultDB)
	if err != nil {
		return nil, false, false, err
	}
	if err := p.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, fp.Database).Scan(&exists); err != nil {
		return nil, false, false, fmt.Errorf("cannot read database %q: %w", fp.Database, err)
	}
	if !exists {
		return nil, member, false, nil
	}
	q := `SELECT a.privilege_type FROM pg_database d, aclexplode(d.datacl) a
		JOIN pg_roles r ON r.oid = a.grantee WHERE d.datname = $1 AND r.rolname = $2 ORDER BY 1`
	args := []any{fp.Database, fp.Role}
	if fp.Schema != "" {
		q = `SELECT a.privilege_type FROM pg_namespace n, aclexplode(n.nspacl) a
			JOIN pg_roles r ON r.oid = a.grantee WHERE n.nspname = $1 AND r.rolname = $2 ORDER BY 1`
		args = []any{fp.Schema, fp.Role}
	}
	op, err := e.objectPool(ctx, fp)
	if err != nil {
		return nil, false, false, err
	}
	rows, err := op.Query(ctx, q, args...)
	if err != nil {
		return nil, false, false, fmt.Errorf("cannot read privileges of %q: %w", fp.Role, err)
	}
	privs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, false, false, fmt.Errorf("cannot read privileges of %q: %w", fp.Role, err)
	}
	return sortedSet(privs), member, true, nil
}

func (e *grant) Observe(ctx context.Context, mg managed.Managed) (managed.Observation, error) {
	cr := mg.(*pgv1.Grant)
	fp := cr.Spec.ForProvider
	if err := e.check(fp); err != nil {
		return managed.Observation{}, err
	}
	want, err := wantPrivileges(fp)
	if err != nil {
		return managed.Observation{}, err
	}
	got, member, dbExists, err := e.observed(ctx, fp)
	if err != nil {
		return managed.Observation{}, err
	}
	cr.Status.AtProvider = pgv1.GrantObservation{Privileges: got, Member: member}
	// A grant "exists" once any of what it grants is in place; it is up to
	// date when exactly what it grants is.
	exists := (len(want) > 0 && len(got) > 0) || (fp.MemberOf != "" && member)
	if !exists || !dbExists {
		return managed.Observation{}, nil
	}
	var drift []string
	if len(want) > 0 && !slices.Equal(want, got) {
		drift = append(drift, fmt.Sprintf("privileges are %v, want %v", got, want))
	}
	if fp.MemberOf != "" && !member {
		drift = append(drift, fmt.Sprintf("%q is not a member of %q", fp.Role, fp.MemberOf))
	}
	return managed.Observation{Exists: true, UpToDate: len(drift) == 0, Drift: strings.Join(drift, "; ")}, nil
}

func (e *grant) on(fp pgv1.GrantParameters) string {
	if fp.Schema != "" {
		return "SCHEMA " + ident(fp.Schema)
	}
	return "DATABASE " + ident(fp.Database)
}

func (e *grant) apply(ctx context.Context, cr *pgv1.Grant) error {
	fp := cr.Spec.ForProvider
	want, err := wantPrivileges(fp)
	if err != nil {
		return err
	}
	if fp.MemberOf != "" && !cr.Status.AtProvider.Member {
		p, err := e.s.pool(ctx, e.s.defaultDB)
		if err != nil {
			return err
		}
		if _, err := p.Exec(ctx, "GRANT "+ident(fp.MemberOf)+" TO "+ident(fp.Role)); err != nil {
			return fmt.Errorf("cannot grant role %q to %q: %w", fp.MemberOf, fp.Role, err)
		}
	}
	if len(want) == 0 {
		return nil
	}
	p, err := e.objectPool(ctx, fp)
	if err != nil {
		return err
	}
	got := cr.Status.AtProvider.Privileges
	var add, remove []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			add = append(add, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			remove = append(remove, g)
		}
	}
	if len(add) > 0 {
		if _, err := p.Exec(ctx, "GRANT "+strings.Join(add, ", ")+" ON "+e.on(fp)+" TO "+ident(fp.Role)); err != nil {
			return fmt.Errorf("cannot grant %s on %s to %q: %w", strings.Join(add, ", "), e.on(fp), fp.Role, err)
		}
	}
	if len(remove) > 0 {
		if _, err := p.Exec(ctx, "REVOKE "+strings.Join(remove, ", ")+" ON "+e.on(fp)+" FROM "+ident(fp.Role)); err != nil {
			return fmt.Errorf("cannot revoke %s on %s from %q: %w", strings.Join(remove, ", "), e.on(fp), fp.Role, err)
		}
	}
	return nil
}

func (e *grant) Create(ctx context.Context, mg managed.Managed) (managed.Creation, error) {
	return managed.Creation{}, e.apply(ctx, mg.(*pgv1.Grant))
}

func (e *grant) Update(ctx context.Context, mg managed.Managed) (managed.Update, error) {
	return managed.Update{}, e.apply(ctx, mg.(*pgv1.Grant))
}

func (e *grant) Delete(ctx context.Context, mg managed.Managed) error {
	cr := mg.(*pgv1.Grant)
	fp := cr.Spec.ForProvider
	if fp.MemberOf != "" {
		p, err := e.s.pool(ctx, e.s.defaultDB)
		if err != nil {
			return err
		}
		if _, err := p.Exec(ctx, "REVOKE "+ident(fp.MemberOf)+" FROM "+ident(fp.Role)); err != nil {
			return fmt.Errorf("cannot revoke role %q from %q: %w", fp.MemberOf, fp.Role, err)
		}
	}
	if len(cr.Status.AtProvider.Privileges) == 0 {
		return nil
	}
	p, err := e.objectPool(ctx, fp)
	if err != nil {
		return err
	}
	if _, err := p.Exec(ctx, "REVOKE "+strings.Join(cr.Status.AtProvider.Privileges, ", ")+" ON "+e.on(fp)+" FROM "+ident(fp.Role)); err != nil {
		return fmt.Errorf("cannot revoke privileges on %s from %q: %w", e.on(fp), fp.Role, err)
	}
	return nil
}

// resolveGrant resolves role, database and memberOf from their references.
func resolveGrant(ctx context.Context, c client.Reader, mg managed.Managed) (bool, error) {
	fp := &mg.(*pgv1.Grant).Spec.ForProvider
	changed := false
	for _, r := range []struct {
		v   *string
		ref *managedv1Reference
		sel *managedv1Selector
		to  managed.Referenced
	}{
		{&fp.Role, fp.RoleRef, fp.RoleSelector, roleRef},
		{&fp.Database, fp.DatabaseRef, fp.DatabaseSelector, databaseRef},
		{&fp.MemberOf, fp.MemberOfRef, fp.MemberOfSelector, roleRef},
	} {
		c2, err := managed.ResolveReference(ctx, c, r.v, r.ref, r.sel, r.to)
		if err != nil {
			return changed, err
		}
		changed = changed || c2
	}
	return changed, nil
}
