// Package secrets benchmarks the external-secrets subsystem on a local
// cluster: N ExternalSecrets against one fake store, time until all are
// Ready and API writes per ExternalSecret, next to the lower bound of
// creating N Secrets directly. Results go to docs/benchmarks.md.
package secrets
