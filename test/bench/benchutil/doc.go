// Package benchutil is the harness the benchmarks in test/bench share: it
// runs `strata up` in a temporary state directory as a user would, measures
// each phase of a benchmark against the cluster itself (the API write
// requests from the API server's apiserver_request_total, the CPU seconds of
// the API server, etcd and the controllers, peak memory), measures the lower
// bound (the same API server written to by a client that is not throttled,
// in the same run), starts peer controllers such as kro, and writes results
// into docs/benchmarks.md. It knows nothing about what a benchmark's
// workload is.
package benchutil
