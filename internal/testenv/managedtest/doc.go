// Package managedtest holds helpers for integration tests of providers: run a
// manager against a test API server, wait for conditions with a bound, and
// reach the real PostgreSQL and MariaDB servers tests use. It is imported
// only by tests.
package managedtest
