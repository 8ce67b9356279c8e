// Package kubeclient builds the API client a Strata subsystem writes with:
// reads go through a cache (the manager's, unless the subsystem brings its
// own), writes through a client-side rate limit of the subsystem's own, so a
// burst in one subsystem (a thousand Syncs) does not starve another (managed
// resources). It knows nothing about the subsystems themselves.
package kubeclient
