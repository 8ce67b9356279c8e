// Package egress decides which network addresses a controller may connect to
// when it acts for a tenant: a notification Provider's webhook, a secret
// store's server, an analysis query's endpoint. Tenants choose those URLs, so
// without a guard the manager would make requests from its own network
// position on their behalf: to its own loopback (the manager's metrics and
// pprof, or under `strata up` the cluster's etcd), to the cloud's instance
// metadata service (169.254.169.254, which hands out the node's credentials),
// or wherever a cluster admin says tenants have no business.
//
// A Policy lists denied networks; Guard puts it on an http.Transport's dialer,
// so the address is checked after DNS resolution, on every connection,
// redirects included (a name that resolves to a public address when checked
// and to 127.0.0.1 when dialled cannot slip through). A proxy the manager is
// configured with (HTTPS_PROXY) is the admin's choice and is not checked; what
// it reaches is the proxy's to decide.
//
// The package knows nothing about the kinds that carry the URLs.
package egress
