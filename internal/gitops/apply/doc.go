// Package apply applies built objects to the cluster with server-side apply
// in stages (CRDs and Namespaces, then XRDs and Compositions, then the
// rest, waiting for each stage's definitions to be established), and prunes
// objects that left an inventory, in reverse order, honouring the
// strata.dev/prune: disabled annotation. It knows nothing about Git or the
// Sync API beyond the inventory entries it returns.
package apply
