// Package vault is the HashiCorp Vault store: a provider.Client over Vault's
// HTTP API that reads and writes the KV secrets engine (v1 and v2) and logs in
// with a token, AppRole or a Kubernetes ServiceAccount token. It is configured
// by its own Config, so it knows nothing about SecretStore objects or any
// other Kubernetes type; mapping a store's spec to a Config is done by the
// caller. Values pass through memory only: errors name the server, path and
// key, never a value.
package vault
