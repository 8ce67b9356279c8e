// Package secrets benchmarks the external-secrets subsystem on a local
// cluster: N ExternalSecrets against a fake store and against a real Vault,
// time until all are Ready, API writes per ExternalSecret and Vault
// requests per ExternalSecret, next to the lower bound of N unthrottled
// ConfigMap creates on the same API server. Results go to
// docs/benchmarks.md.
package secrets
