//go:build tools

// Package tools pins the versions of the local cluster's binaries that
// `make tools` builds. Nothing in the product imports it. The other tools live
// in modules of their own below this folder; this module's dependencies that
// Strata also uses are at Strata's versions (align.sh), so both builds share
// their compiled packages.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
