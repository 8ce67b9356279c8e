// Package provider is the contract between the external-secrets controllers
// and the secret stores they read and write (Vault, Kubernetes, a webhook,
// the fake store). A store implements Client for one configured
// SecretStore; the controllers know nothing about any one store, and a store
// knows nothing about Kubernetes objects beyond the configuration it is
// given. Values pass through in memory only and are never logged.
package provider
