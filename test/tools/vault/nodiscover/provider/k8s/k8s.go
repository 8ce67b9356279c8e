// Package k8s is the name of go-discover's Kubernetes provider that Vault
// registers; like the rest of this module it finds nothing.
package k8s

import (
	"errors"
	"log"
)

// Provider is go-discover's Kubernetes provider, without Kubernetes.
type Provider struct{}

// Help says what this provider is.
func (p *Provider) Help() string {
	return "k8s: not built into this Vault (test/tools/vault/nodiscover)"
}

// Addrs finds nothing.
func (p *Provider) Addrs(map[string]string, *log.Logger) ([]string, error) {
	return nil, errors.New("discover-k8s: not built into this Vault (test/tools/vault/nodiscover)")
}
