// Package benchutil is the harness the benchmarks in test/bench share: it
// runs `strata up` in a temporary state directory as a user would, builds a
// rate-limited client from its kubeconfig, reads the strata process's peak
// memory, and runs work in parallel or polls until a condition holds. It
// knows nothing about what a benchmark measures or how results are written.
package benchutil
