package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/strata-dev/strata/internal/managed"
	myv1 "github.com/strata-dev/strata/providers/sql/apis/mysql/v1alpha1"
)

type database struct{ s *server }

func (e *database) Observe(ctx context.Context, mg managed.Managed) (managed.Observation, error) {
	cr := mg.(*myv1.Database)
	name := managed.ExternalName(cr)
	if err := checkName("database", name, 64); err != nil {
		return managed.Observation{}, err
	}
	var obs myv1.DatabaseObservation
	err := e.s.db.QueryRowContext(ctx, `SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME
		FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, name).Scan(&obs.CharacterSet, &obs.Collation)
	if errors.Is(err, sql.ErrNoRows) {
		return managed.Observation{}, nil
	}
	if err != nil {
		return managed.Observation{}, fmt.Errorf("cannot read database %q on mysql at %s: %w", name, e.s.addr(), err)
	}
	cr.Status.AtProvider = obs
	fp := &cr.Spec.ForProvider
	li := false
	if fp.CharacterSet == "" {
		fp.CharacterSet, li = obs.CharacterSet, true
	}
	if fp.Collation == "" {
		fp.Collation, li = obs.Collation, true
	}
	var drift []string
	if !strings.EqualFold(fp.CharacterSet, obs.CharacterSet) {
		drift = append(drift, fmt.Sprintf("character set is %q, want %q", obs.CharacterSet, fp.CharacterSet))
	}
	if !strings.EqualFold(fp.Collation, obs.Collation) {
		drift = append(drift, fmt.Sprintf("collation is %q, want %q", obs.Collation, fp.Collation))
	}
	return managed.Observation{
		Exists: true, UpToDate: len(drift) == 0, Drift: strings.Join(drift, "; "), LateInitialized: li,
		ConnectionDetails: managed.ConnectionDetails{"database": []byte(name)},
	}, nil
}

func (e *database) options(fp myv1.DatabaseParameters) string {
	s := ""
	if fp.CharacterSet != "" {
		s += " CHARACTER SET " + QuoteIdentifier(fp.CharacterSet)
	}
	if fp.Collation != "" {
		s += " COLLATE " + QuoteIdentifier(fp.Collation)
	}
	return s
}

func (e *database) Create(ctx context.Context, mg managed.Managed) (managed.Creation, error) {
	cr := mg.(*myv1.Database)
	name := managed.ExternalName(cr)
	if _, err := e.s.db.ExecContext(ctx, "CREATE DATABASE "+QuoteIdentifier(name)+e.options(cr.Spec.ForProvider)); err != nil {
		return managed.Creation{}, taken(fmt.Errorf("cannot create database %q on mysql at %s: %w", name, e.s.addr(), err))
	}
	return managed.Creation{ConnectionDetails: managed.ConnectionDetails{"database": []byte(name)}}, nil
}

func (e *database) Update(ctx context.Context, mg managed.Managed) (managed.Update, error) {
	cr := mg.(*myv1.Database)
	name := managed.ExternalName(cr)
	if _, err := e.s.db.ExecContext(ctx, "ALTER DATABASE "+QuoteIdentifier(name)+e.options(cr.Spec.ForProvider)); err != nil {
		return managed.Update{}, permanent(fmt.Errorf("cannot alter database %q on mysql at %s: %w", name, e.s.addr(), err))
	}
	return managed.Update{}, nil
}

func (e *database) Delete(ctx context.Context, mg managed.Managed) error {
	name := managed.ExternalName(mg)
	if _, err := e.s.db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+QuoteIdentifier(name)); err != nil {
		return fmt.Errorf("cannot drop database %q on mysql at %s: %w", name, e.s.addr(), err)
	}
	return nil
}
