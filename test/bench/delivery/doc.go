// Package delivery benchmarks GitOps delivery on a local cluster (`strata
// up` in a subprocess, as users run it): N Syncs each applying an app of 4
// objects from a path of its own, the same with a kustomization.yaml in
// every path, and one Sync of 4N objects, each next to the lower bound of
// the same API server creating the same objects directly, with the API
// writes per Sync. Results go to docs/benchmarks.md.
package delivery
