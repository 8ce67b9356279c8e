// Package tenant is how a controller acts for a tenant: the user a namespaced
// object acts as (its service account, else the manager's default one, in the
// object's own namespace) and API clients that impersonate that user, built
// once per user and shared. Every controller that reads or writes on a
// tenant's behalf uses it, so a tenant's rights are decided in one place.
// It knows nothing about the kinds that name the service accounts.
package tenant
