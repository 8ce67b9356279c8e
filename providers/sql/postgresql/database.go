package postgresql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/managed"
	pgv1 "github.com/strata-dev/strata/providers/sql/apis/postgresql/v1alpha1"
)

type database struct{ s *server }

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func (e *database) Observe(ctx context.Context, mg managed.Managed) (managed.Observation, error) {
	cr := mg.(*pgv1.Database)
	name := managed.ExternalName(cr)
	if err := checkName("database", name); err != nil {
		return managed.Observation{}, err
	}
	p, err := e.s.pool(ctx, e.s.defaultDB)
	if err != nil {
		return managed.Observation{}, err
	}
	var obs pgv1.DatabaseObservation
	var limit int32
	err = p.QueryRow(ctx, `SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datconnlimit
		FROM pg_database WHERE datname = $1`, name).Scan(&obs.Owner, &obs.Encoding, &limit)
	if errors.Is(err, pgx.ErrNoRows) {
		return managed.Observation{}, nil
	}
	if err != nil {
		return managed.Observation{}, fmt.Errorf("cannot read database %q on postgres at %s: %w", name, e.s.addr(), err)
	}
	obs.ConnectionLimit = &limit
	cr.Status.AtProvider = obs

	fp := &cr.Spec.ForProvider
	li := false
	if fp.Owner == "" {
		fp.Owner, li = obs.Owner, true
	}
	if fp.Encoding == "" {
		fp.Encoding, li = obs.Encoding, true
	}
	if fp.ConnectionLimit == nil {
		fp.ConnectionLimit, li = &limit, true
	}
	var drift []string
	if fp.Owner != obs.Owner {
		drift = append(drift, fmt.Sprintf("owner is %q, want %q", obs.Owner, fp.Owner))
	}
	if *fp.ConnectionLimit != limit {
		drift = append(drift, fmt.Sprintf("connection limit is %d, want %d", limit, *fp.ConnectionLimit))
	}
	if !strings.EqualFold(fp.Encoding, obs.Encoding) {
		drift = append(drift, fmt.Sprintf("encoding is %q, want %q", obs.Encoding, fp.Encoding))
	}
	return managed.Observation{
		Exists:            true,
		UpToDate:          len(drift) == 0,
		Drift:             strings.Join(drift, "; "),
		LateInitialized:   li,
		ConnectionDetails: managed.ConnectionDetails{"database": []byte(name)},
	}, nil
}

func (e *database) Create(ctx context.Context, mg managed.Managed) (managed.Creation, error) {
	cr := mg.(*pgv1.Database)
	name := managed.ExternalName(cr)
	p, err := e.s.pool(ctx, e.s.defaultDB)
	if err != nil {
		return managed.Creation{}, err
	}
	fp, ip := cr.Spec.ForProvider, cr.Spec.InitProvider
	sql := "CREATE DATABASE " + ident(name)
	if owner := first(fp.Owner, ip.Owner); owner != "" {
		sql += " OWNER " + ident(owner)
	}
	if t := first(fp.Template, ip.Template); t != "" {
		sql += " TEMPLATE " + ident(t)
	}
	if enc := first(fp.Encoding, ip.Encoding); enc != "" {
		// The server reports an unknown encoding as an undefined object
		// (42704), like a role that may yet be created; ask it first, so
		// an encoding it will never know stalls instead of retrying.
		var id int32
		if err := p.QueryRow(ctx, "SELECT pg_char_to_encoding($1)", enc).Scan(&id); err != nil {
			return managed.Creation{}, fmt.Errorf("cannot check encoding %q on postgres at %s: %w", enc, e.s.addr(), err)
		}
		if id < 0 {
			return managed.Creation{}, kitreconcile.Terminal(managed.ReasonRejected,
				fmt.Errorf("cannot create database %q on postgres at %s: encoding %q is not known to the server", name, e.s.addr(), enc))
		}
		q, err := quoteLiteral(ctx, p, enc)
		if err != nil {
			return managed.Creation{}, err
		}
		sql += " ENCODING " + q
	}
	if l := fp.ConnectionLimit; l != nil {
		sql += fmt.Sprintf(" CONNECTION LIMIT %d", *l)
	} else if l := ip.ConnectionLimit; l != nil {
		sql += fmt.Sprintf(" CONNECTION LIMIT %d", *l)
	}
	if _, err := p.Exec(ctx, sql); err != nil {
		return managed.Creation{}, taken(fmt.Errorf("cannot create database %q on postgres at %s: %w", name, e.s.addr(), err))
	}
	return managed.Creation{ConnectionDetails: managed.ConnectionDetails{"database": []byte(name)}}, nil
}

func (e *database) Update(ctx context.Context, mg managed.Managed) (managed.Update, error) {
	cr := mg.(*pgv1.Database)
	name := managed.ExternalName(cr)
	obs, fp := cr.Status.AtProvider, cr.Spec.ForProvider
	if fp.Encoding != "" && !strings.EqualFold(fp.Encoding, obs.Encoding) {
		return managed.Update{}, kitreconcile.Terminal(managed.ReasonInvalidSpec, fmt.Errorf("database %q has encoding %q; the encoding of an existing database cannot change to %q", name, obs.Encoding, fp.Encoding))
	}
	p, err := e.s.pool(ctx, e.s.defaultDB)
	if err != nil {
		return managed.Update{}, err
	}
	if fp.Owner != "" && fp.Owner != obs.Owner {
		if _, err := p.Exec(ctx, "ALTER DATABASE "+ident(name)+" OWNER TO "+ident(fp.Owner)); err != nil {
			return managed.Update{}, fmt.Errorf("cannot change owner of database %q: %w", name, err)
		}
	}
	if l := fp.ConnectionLimit; l != nil && (obs.ConnectionLimit == nil || *l != *obs.ConnectionLimit) {
		if _, err := p.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s CONNECTION LIMIT %d", ident(name), *l)); err != nil {
			return managed.Update{}, permanent(fmt.Errorf("cannot change connection limit of database %q: %w", name, err))
		}
	}
	return managed.Update{}, nil
}

func (e *database) Delete(ctx context.Context, mg managed.Managed) error {
	name := managed.ExternalName(mg)
	p, err := e.s.pool(ctx, e.s.defaultDB)
	if err != nil {
		return err
	}
	e.s.pools.closeDB(e.s.url(name))
	if _, err := p.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("cannot drop database %q on postgres at %s: %w", name, e.s.addr(), err)
	}
	return nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// resolveDatabase resolves spec.forProvider.owner from ownerRef/ownerSelector.
func resolveDatabase(ctx context.Context, c client.Reader, mg managed.Managed) (bool, error) {
	fp := &mg.(*pgv1.Database).Spec.ForProvider
	return managed.ResolveReference(ctx, c, &fp.Owner, fp.OwnerRef, fp.OwnerSelector, roleRef)
}
