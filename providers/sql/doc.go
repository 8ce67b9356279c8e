// Package sql is the sql provider: PostgreSQL (postgresql.sql.strata.dev)
// and MySQL/MariaDB (mysql.sql.strata.dev) databases, roles/users and grants
// as managed resources. Setup registers both halves.
package sql
