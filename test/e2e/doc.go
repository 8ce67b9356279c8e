// Package e2e drives the built `strata` binary and kubectl the way a user
// would, against local clusters that the tests start in temporary state
// directories. It needs `make tools build` first (make test does that).
package e2e
