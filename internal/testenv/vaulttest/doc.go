// Package vaulttest starts a real Vault server (bin/vault from `make tools`)
// in dev mode on a free loopback port for tests, and configures it: KV
// mounts, policies, AppRole, and Kubernetes auth that checks ServiceAccount
// tokens against the test API server's TokenReview. It is imported only by
// tests and knows nothing about Strata's controllers or API types.
package vaulttest
