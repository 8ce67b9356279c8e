// Package composition benchmarks the composition engine against a local
// cluster (`strata up`): a burst of claims until all are Ready, an update of
// every claim and deletion, next to the time the same API server takes for
// the same number of plain objects with the same client settings.
package composition
