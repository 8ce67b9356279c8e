// Package managed benchmarks the managed-resource runtime on a local cluster
// (`strata up`): 1000 NopResources and 200 PostgreSQL Databases until Ready
// and deleted, against the lower bound of the same API server (and
// PostgreSQL) doing the work directly, with the API writes per resource.
// Results go to docs/benchmarks.md.
package managed
