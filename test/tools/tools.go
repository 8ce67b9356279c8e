//go:build tools

// Package tools pins the versions of the local cluster's binaries that
// `make tools` builds. Nothing in the product imports it. controller-gen and
// versitygw live in modules of their own below this folder because they need
// other versions of shared dependencies than Kubernetes v1.36.3 does.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
