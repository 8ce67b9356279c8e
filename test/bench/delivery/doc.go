// Package delivery benchmarks GitOps delivery on a local cluster (`strata
// up` in a subprocess, as users run it): N Syncs each applying an app of 4
// objects from a path of its own, the same with a kustomization.yaml in
// every path, the same waiting for the objects' health, and one Sync of 4N
// objects, each next to the lower bound of the same API server creating the
// same objects directly (and, for the Syncs that wait, the time until the
// cluster has rolled those objects out), with the API writes per Sync.
// Results go to docs/benchmarks.md.
package delivery
