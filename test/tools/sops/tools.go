//go:build tools

// Package tools pins the version of the sops CLI that `make tools` builds;
// the tests encrypt their SOPS files with it, and it is the same module
// version the manager decrypts with.
package tools

import _ "github.com/getsops/sops/v3/cmd/sops"
