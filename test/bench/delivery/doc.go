// Package delivery benchmarks GitOps delivery on a local cluster (`strata
// up` in a subprocess, as users run it): one GitRepository and N Syncs
// each applying an app of 4 objects from its own path, and one Sync of 4000
// objects. It reports seconds from Sync creation until all are Ready and
// the strata process's peak memory.
package delivery
