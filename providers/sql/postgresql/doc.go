// Package postgresql is the PostgreSQL half of the sql provider
// (postgresql.sql.strata.dev): Database, Role and Grant managed resources
// kept in sync through pgx. Identifiers are quoted with
// pgx.Identifier.Sanitize and literals by the server's quote_literal, never
// by string concatenation. It knows nothing about compositions.
package postgresql
