// Package apis holds Strata's own API groups, one versioned package each
// (apis/<group>/<version>), and the CRD manifests controller-gen generates
// from them and from the providers' types (apis/crds). It is a leaf: it
// imports no other Strata package. The scheme that puts every group together
// is internal/scheme.
package apis
