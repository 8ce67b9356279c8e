package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/managed"
	myv1 "github.com/strata-dev/strata/providers/sql/apis/mysql/v1alpha1"
)

type grant struct{ s *server }

// dbColumns maps database-level privileges to their mysql.db column.
var dbColumns = map[string]string{
	"SELECT": "Select_priv", "INSERT": "Insert_priv", "UPDATE": "Update_priv", "DELETE": "Delete_priv",
	"CREATE": "Create_priv", "DROP": "Drop_priv", "REFERENCES": "References_priv", "INDEX": "Index_priv",
	"ALTER": "Alter_priv", "CREATE TEMPORARY TABLES": "Create_tmp_table_priv", "LOCK TABLES": "Lock_tables_priv",
	"CREATE VIEW": "Create_view_priv", "SHOW VIEW": "Show_view_priv", "CREATE ROUTINE": "Create_routine_priv",
	"ALTER ROUTINE": "Alter_routine_priv", "EXECUTE": "Execute_priv", "EVENT": "Event_priv", "TRIGGER": "Trigger_priv",
}

// tablePrivileges maps table-level privileges to their mysql.tables_priv
// Table_priv names.
var tablePrivileges = map[string]string{
	"SELECT": "Select", "INSERT": "Insert", "UPDATE": "Update", "DELETE": "Delete", "CREATE": "Create",
	"DROP": "Drop", "REFERENCES": "References", "INDEX": "Index", "ALTER": "Alter",
	"CREATE VIEW": "Create View", "SHOW VIEW": "Show view", "TRIGGER": "Trigger",
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// grantDB escapes the wildcards _ and % that GRANT ... ON db.* would
// otherwise expand, so the grant is on exactly the named database.
func grantDB(name string) string {
	return strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`).Replace(name)
}

func wanted(fp myv1.GrantParameters) ([]string, error) {
	valid := dbColumns
	if fp.Table != "" {
		valid = tablePrivileges
	}
	var out []string
	for _, p := range fp.Privileges {
		if p == "ALL" {
			out = append(out, keys(valid)...)
			continue
		}
		if _, ok := valid[string(p)]; !ok {
			return nil, kitreconcile.Terminal(managed.ReasonInvalidSpec, fmt.Errorf("privilege %s does not apply to a table", p))
		}
		out = append(out, string(p))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (e *grant) observe(ctx context.Context, fp myv1.GrantParameters) ([]string, error) {
	h := host(fp.Host)
	var got []string
	if fp.Table == "" {
		names := keys(dbColumns)
		cols := make([]string, len(names))
		for i, n := range names {
			cols[i] = "`" + dbColumns[n] + "`"
		}
		vals := make([]sql.NullString, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		err := e.s.db.QueryRowContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM mysql.db WHERE Db = ? AND User = ? AND Host = ?",
			grantDB(fp.Database), fp.User, h).Scan(ptrs...)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read privileges of %q@%q on %q: %w", fp.User, h, fp.Database, err)
		}
		for i, n := range names {
			if vals[i].String == "Y" {
				got = append(got, n)
			}
		}
		return got, nil
	}
	var set string
	err := e.s.db.QueryRowContext(ctx, "SELECT Table_priv FROM mysql.tables_priv WHERE Db = ? AND User = ? AND Host = ? AND Table_name = ?",
		fp.Database, fp.User, h, fp.Table).Scan(&set)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read privileges of %q@%q on %q.%q: %w", fp.User, h, fp.Database, fp.Table, err)
	}
	for _, p := range strings.Split(set, ",") {
		for k, v := range tablePrivileges {
			if strings.EqualFold(v, p) {
				got = append(got, k)
			}
		}
	}
	slices.Sort(got)
	return got, nil
}

func (e *grant) Observe(ctx context.Context, mg managed.Managed) (managed.Observation, error) {
	cr := mg.(*myv1.Grant)
	fp := cr.Spec.ForProvider
	if fp.User == "" || fp.Database == "" {
		return managed.Observation{}, kitreconcile.Terminal(managed.ReasonInvalidSpec, errors.New("grant needs a user (user, userRef or userSelector) and a database (database, databaseRef or databaseSelector)"))
	}
	want, err := wanted(fp)
	if err != nil {
		return managed.Observation{}, err
	}
	got, err := e.observe(ctx, fp)
	if err != nil {
		return managed.Observation{}, err
	}
	cr.Status.AtProvider.Privileges = got
	if len(got) == 0 {
		return managed.Observation{}, nil
	}
	o := managed.Observation{Exists: true, UpToDate: slices.Equal(want, got)}
	if !o.UpToDate {
		o.Drift = fmt.Sprintf("privileges are %v, want %v", got, want)
	}
	return o, nil
}

func (e *grant) on(fp myv1.GrantParameters) string {
	if fp.Table == "" {
		return QuoteIdentifier(grantDB(fp.Database)) + ".*"
	}
	return QuoteIdentifier(fp.Database) + "." + QuoteIdentifier(fp.Table)
}

func (e *grant) apply(ctx context.Context, cr *myv1.Grant) error {
	fp := cr.Spec.ForProvider
	want, err := wanted(fp)
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
	// Privilege names come only from the allow-lists above; user and host
	// are bound parameters.
	if len(add) > 0 {
		if _, err := e.s.db.ExecContext(ctx, "GRANT "+strings.Join(add, ", ")+" ON "+e.on(fp)+" TO ?@?", fp.User, host(fp.Host)); err != nil {
			return fmt.Errorf("cannot grant %s on %s to %q: %w", strings.Join(add, ", "), e.on(fp), fp.User, err)
		}
	}
	if len(remove) > 0 {
		if _, err := e.s.db.ExecContext(ctx, "REVOKE "+strings.Join(remove, ", ")+" ON "+e.on(fp)+" FROM ?@?", fp.User, host(fp.Host)); err != nil {
			return fmt.Errorf("cannot revoke %s on %s from %q: %w", strings.Join(remove, ", "), e.on(fp), fp.User, err)
		}
	}
	return nil
}

func (e *grant) Create(ctx context.Context, mg managed.Managed) (managed.Creation, error) {
	return managed.Creation{}, e.apply(ctx, mg.(*myv1.Grant))
}

func (e *grant) Update(ctx context.Context, mg managed.Managed) (managed.Update, error) {
	return managed.Update{}, e.apply(ctx, mg.(*myv1.Grant))
}

func (e *grant) Delete(ctx context.Context, mg managed.Managed) error {
	cr := mg.(*myv1.Grant)
	fp := cr.Spec.ForProvider
	got := cr.Status.AtProvider.Privileges
	if len(got) == 0 {
		return nil
	}
	if _, err := e.s.db.ExecContext(ctx, "REVOKE "+strings.Join(got, ", ")+" ON "+e.on(fp)+" FROM ?@?", fp.User, host(fp.Host)); err != nil {
		return fmt.Errorf("cannot revoke privileges on %s from %q: %w", e.on(fp), fp.User, err)
	}
	return nil
}

// resolveGrant resolves user (and its host) and database from references.
func resolveGrant(ctx context.Context, c client.Reader, mg managed.Managed) (bool, error) {
	fp := &mg.(*myv1.Grant).Spec.ForProvider
	changed, err := managed.ResolveReference(ctx, c, &fp.User, fp.UserRef, fp.UserSelector, userRef)
	if err != nil {
		return false, err
	}
	if fp.UserRef != nil {
		u := &myv1.User{}
		if err := c.Get(ctx, client.ObjectKey{Name: fp.UserRef.Name}, u); err == nil && host(u.Spec.ForProvider.Host) != host(fp.Host) {
			fp.Host, changed = host(u.Spec.ForProvider.Host), true
		}
	}
	c2, err := managed.ResolveReference(ctx, c, &fp.Database, fp.DatabaseRef, fp.DatabaseSelector, databaseRef)
	return changed || c2, err
}
