// Package secrets is the external-secrets subsystem: stores
// (SecretStore, ClusterSecretStore), ExternalSecrets synced into Kubernetes
// Secrets, ClusterExternalSecrets, and workloads reloaded when a synced
// Secret rotates. Controllers live in controller, store clients in
// provider/<name>, pure logic (templates) in template. It talks to other
// subsystems only through API objects.
package secrets
