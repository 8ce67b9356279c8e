// Package vault is the HashiCorp Vault store: a provider.Client over Vault's
// HTTP API that reads and writes the KV secrets engine (v1 and v2) and logs in
// with a token, AppRole or a Kubernetes ServiceAccount token. The client is
// configured by its own Config and knows nothing about Kubernetes objects;
// NewFromStore (the registry's constructor) maps a store's
// spec.provider.vault to a Config, reading credentials only through
// provider.Kube. Values pass through memory only: errors name the server,
// path and key, never a value.
package vault
