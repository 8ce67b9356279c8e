//go:build tools

// Package tools pins the version of Vault that `make tools` builds (v1.21.0:
// v1.21.4 needs an sdk snapshot that was never published). Vault's
// main package is the module root; its api and sdk modules come from their own
// pinned versions (Vault's go.mod points them at local folders, which a
// dependent module cannot use). The Kubernetes auth plugin is the version
// Vault itself requires.
package tools

import (
	_ "github.com/hashicorp/vault"
	_ "github.com/hashicorp/vault-plugin-auth-kubernetes/cmd/vault-plugin-auth-kubernetes"
)
