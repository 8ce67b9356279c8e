//go:build tools

// Package tools pins the version of kro (the Kubernetes Resource
// Orchestrator) that `make bench` builds as the composition benchmark's peer.
package tools

import _ "github.com/kubernetes-sigs/kro/cmd/controller"
