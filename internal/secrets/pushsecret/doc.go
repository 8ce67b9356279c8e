// Package pushsecret is the PushSecret controller: it copies selected keys of
// a Kubernetes Secret into external stores (a database password a claim
// publishes lands in Vault), records where it wrote, refuses to overwrite or
// delete a value another writer owns, and with deletionPolicy Delete removes
// what it wrote when a value leaves the PushSecret or the PushSecret is
// deleted. It reaches stores only through provider.Client and a Stores
// resolver given by its caller; it knows no store and no ExternalSecret.
package pushsecret
