// Package controller holds the external-secrets controllers: store
// validation, ExternalSecret sync (fetch through a provider.Client, render,
// server-side apply of the target Secret under a per-ExternalSecret field
// manager), ClusterExternalSecret stamping and workload reload on rotation.
// It knows the provider contract and the registry, never one store's
// protocol, and it never logs, events or reports a secret value.
package controller
