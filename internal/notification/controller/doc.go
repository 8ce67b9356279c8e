// Package controller runs the notification kinds: Provider (resolves its
// address and Secret), Alert (sends matching Kubernetes events of Strata
// kinds to its Provider, at least once, with a cursor in status) and
// Receiver (checks its Secret and publishes its webhook path; the endpoint
// itself is served by the gitops webhook receiver). It reads Secrets only
// from the referring object's own namespace and knows nothing about how the
// objects whose events it sends are reconciled.
package controller
