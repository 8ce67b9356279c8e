// Package kubernetes is the store provider that reads (and pushes) Secrets
// of another namespace of the same API server or of another cluster. It
// authenticates only with the store's own credentials (a bearer token from
// a Secret, or a token requested for the store's ServiceAccount), never
// with Strata's rights. A remote key is a Secret name, a property one of
// its keys. It knows nothing about controllers.
package kubernetes
