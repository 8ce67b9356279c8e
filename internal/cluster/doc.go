// Package cluster runs a local Kubernetes control plane from binaries built by
// `make tools`: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
// and kwok with one simulated node. It owns a state directory (certificates,
// etcd data, logs, the kubeconfig, a lock) so a cluster can be stopped and
// resumed with its objects intact. It knows nothing about Strata's APIs or
// controllers; the CLI layers those on top.
package cluster
