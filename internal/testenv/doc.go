// Package testenv starts real control planes for Strata's tests: an envtest
// API server (etcd and kube-apiserver from `make tools`, found through
// KUBEBUILDER_ASSETS) with Strata's CRDs installed, or a whole local cluster
// with controllers (garbage collection, namespaces, scheduling) when a test
// depends on them. A missing binary fails the test with the command to run;
// nothing here skips. What it starts dies with the test binary, even one a
// timeout or a signal ends without cleanup (Command, and a reaper for
// envtest's processes).
package testenv
