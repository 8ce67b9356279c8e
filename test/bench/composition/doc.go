// Package composition benchmarks the composition engine against a local
// cluster (`strata up`): a burst of claims until all are Ready, an update of
// every claim and deletion, readiness propagation from a composed object to
// its claim, and kro on the same workload in the same run, each next to the
// lower bound the same API server sets for a client that is not throttled.
// Results go to docs/benchmarks.md.
package composition
