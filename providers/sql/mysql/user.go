package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/managed"
	myv1 "github.com/strata-dev/strata/providers/sql/apis/mysql/v1alpha1"
)

type user struct {
	s      *server
	client client.Client
}

func host(h string) string {
	if h == "" {
		return "%"
	}
	return h
}

func (e *user) Observe(ctx context.Context, mg managed.Managed) (managed.Observation, error) {
	cr := mg.(*myv1.User)
	name, h := managed.ExternalName(cr), host(cr.Spec.ForProvider.Host)
	if err := checkName("user", name, 80); err != nil {
		return managed.Observation{}, err
	}
	var q, u, c, uc int32
	err := e.s.db.QueryRowContext(ctx, `SELECT max_questions, max_updates, max_connections, max_user_connections
		FROM mysql.user WHERE User = ? AND Host = ?`, name, h).Scan(&q, &u, &c, &uc)
	if errors.Is(err, sql.ErrNoRows) {
		return managed.Observation{}, nil
	}
	if err != nil {
		return managed.Observation{}, fmt.Errorf("cannot read user %q@%q on mysql at %s: %w", name, h, e.s.addr(), err)
	}
	obs := myv1.ResourceLimits{MaxQueriesPerHour: &q, MaxUpdatesPerHour: &u, MaxConnectionsPerHour: &c, MaxUserConnections: &uc}
	cr.Status.AtProvider.ResourceLimits = obs
	fp := &cr.Spec.ForProvider
	li := false
	var drift []string
	for _, f := range []struct {
		what string
		want **int32
		got  int32
	}{
		{"maxQueriesPerHour", &fp.ResourceLimits.MaxQueriesPerHour, q},
		{"maxUpdatesPerHour", &fp.ResourceLimits.MaxUpdatesPerHour, u},
		{"maxConnectionsPerHour", &fp.ResourceLimits.MaxConnectionsPerHour, c},
		{"maxUserConnections", &fp.ResourceLimits.MaxUserConnections, uc},
	} {
		if *f.want == nil {
			v := f.got
			*f.want, li = &v, true
		}
		if **f.want != f.got {
			drift = append(drift, fmt.Sprintf("%s is %d, want %d", f.what, f.got, **f.want))
		}
	}
	pw := ""
	if fp.PasswordSecretRef != nil || cr.Spec.WriteConnectionSecretToReference != nil {
		if pw, err = managed.DesiredPassword(ctx, e.client, cr, cr.Spec.ForProvider.PasswordSecretRef); err != nil {
			return managed.Observation{}, err
		}
		if fp.PasswordSecretRef != nil && cr.Spec.WriteConnectionSecretToReference != nil && managed.PublishedPassword(ctx, e.client, cr) != pw {
			drift = append(drift, "password differs from passwordSecretRef")
		}
	}
	o := managed.Observation{Exists: true, UpToDate: len(drift) == 0, Drift: strings.Join(drift, "; "), LateInitialized: li}
	if len(drift) == 0 {
		o.ConnectionDetails = managed.LoginDetails(name, e.s.host, e.s.port, pw)
	}
	return o, nil
}

func limits(l myv1.ResourceLimits) string {
	var b strings.Builder
	for _, f := range []struct {
		kw string
		v  *int32
	}{
		{"MAX_QUERIES_PER_HOUR", l.MaxQueriesPerHour}, {"MAX_UPDATES_PER_HOUR", l.MaxUpdatesPerHour},
		{"MAX_CONNECTIONS_PER_HOUR", l.MaxConnectionsPerHour}, {"MAX_USER_CONNECTIONS", l.MaxUserConnections},
	} {
		if f.v != nil {
			fmt.Fprintf(&b, " %s %d", f.kw, *f.v)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return " WITH" + b.String()
}

func (e *user) Create(ctx context.Context, mg managed.Managed) (managed.Creation, error) {
	cr := mg.(*myv1.User)
	name, h := managed.ExternalName(cr), host(cr.Spec.ForProvider.Host)
	pw, err := managed.DesiredPassword(ctx, e.client, cr, cr.Spec.ForProvider.PasswordSecretRef)
	if err != nil {
		return managed.Creation{}, err
	}
	secret := pw
	if secret == "" {
		// Nowhere to publish a password: the account gets one nobody knows
		// rather than none.
		if secret, err = managed.GeneratePassword(); err != nil {
			return managed.Creation{}, err
		}
	}
	// User, host and password are bound parameters: the driver quotes them.
	if _, err := e.s.db.ExecContext(ctx, "CREATE USER ?@? IDENTIFIED BY ?"+limits(cr.Spec.ForProvider.ResourceLimits), name, h, secret); err != nil {
		return managed.Creation{}, taken(fmt.Errorf("cannot create user %q@%q on mysql at %s: %w", name, h, e.s.addr(), err))
	}
	return managed.Creation{ConnectionDetails: managed.LoginDetails(name, e.s.host, e.s.port, pw)}, nil
}

func (e *user) Update(ctx context.Context, mg managed.Managed) (managed.Update, error) {
	cr := mg.(*myv1.User)
	name, h := managed.ExternalName(cr), host(cr.Spec.ForProvider.Host)
	pw, err := managed.DesiredPassword(ctx, e.client, cr, cr.Spec.ForProvider.PasswordSecretRef)
	if err != nil {
		return managed.Update{}, err
	}
	stmt, args := "ALTER USER ?@?", []any{name, h}
	if pw != "" {
		stmt, args = stmt+" IDENTIFIED BY ?", append(args, pw)
	}
	if _, err := e.s.db.ExecContext(ctx, stmt+limits(cr.Spec.ForProvider.ResourceLimits), args...); err != nil {
		return managed.Update{}, fmt.Errorf("cannot alter user %q@%q on mysql at %s: %w", name, h, e.s.addr(), err)
	}
	return managed.Update{ConnectionDetails: managed.LoginDetails(name, e.s.host, e.s.port, pw)}, nil
}

func (e *user) Delete(ctx context.Context, mg managed.Managed) error {
	cr := mg.(*myv1.User)
	name, h := managed.ExternalName(cr), host(cr.Spec.ForProvider.Host)
	if _, err := e.s.db.ExecContext(ctx, "DROP USER IF EXISTS ?@?", name, h); err != nil {
		return fmt.Errorf("cannot drop user %q@%q on mysql at %s: %w", name, h, e.s.addr(), err)
	}
	return nil
}
