// Package install puts Strata's CustomResourceDefinitions into a cluster with
// server-side apply and waits until the API server serves them. It is used by
// `strata up`, `strata manager --install-crds` and the test harness; it knows
// nothing about what the CRDs mean.
package install
