//go:build tools

// Package tools pins the version of controller-gen that `make tools` builds.
package tools

import _ "sigs.k8s.io/controller-tools/cmd/controller-gen"
