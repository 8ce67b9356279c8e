package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the paths of the certificates and keys of one local cluster.
type pki struct {
	dir string
}

func (p pki) caCert() string            { return filepath.Join(p.dir, "ca.crt") }
func (p pki) caKey() string             { return filepath.Join(p.dir, "ca.key") }
func (p pki) servingCert() string       { return filepath.Join(p.dir, "apiserver.crt") }
func (p pki) servingKey() string        { return filepath.Join(p.dir, "apiserver.key") }
func (p pki) serviceAccountKey() string { return filepath.Join(p.dir, "sa.key") }
func (p pki) serviceAccountPub() string { return filepath.Join(p.dir, "sa.pub") }

// ensure creates whatever is missing: a CA, a serving certificate for the API
// server signed by it, and the service-account signing key pair. Existing
// files are kept so kubeconfigs and tokens stay valid across restarts.
func (p pki) ensure() error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return fmt.Errorf("cannot create pki directory: %w", err)
	}
	if !exists(p.caCert()) || !exists(p.caKey()) {
		if err := p.writeCA(); err != nil {
			return err
		}
		// A new CA invalidates any old serving certificate.
		_ = os.Remove(p.servingCert())
	}
	if !exists(p.servingCert()) || !exists(p.servingKey()) {
		if err := p.writeServing(); err != nil {
			return err
		}
	}
	if !exists(p.serviceAccountKey()) || !exists(p.serviceAccountPub()) {
		if err := p.writeServiceAccountKeys(); err != nil {
			return err
		}
	}
	return nil
}

func (p pki) writeCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("cannot generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "strata-local-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("cannot create CA certificate: %w", err)
	}
	if err := writePEM(p.caKey(), "EC PRIVATE KEY", mustMarshalEC(key)); err != nil {
		return err
	}
	return writePEM(p.caCert(), "CERTIFICATE", der)
}

func (p pki) writeServing() error {
	caCert, caKey, err := p.loadCA()
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("cannot generate serving key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP(serviceIP)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("cannot create serving certificate: %w", err)
	}
	if err := writePEM(p.servingKey(), "EC PRIVATE KEY", mustMarshalEC(key)); err != nil {
		return err
	}
	return writePEM(p.servingCert(), "CERTIFICATE", der)
}

func (p pki) writeServiceAccountKeys() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("cannot generate service account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("cannot encode service account public key: %w", err)
	}
	if err := writePEM(p.serviceAccountKey(), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)); err != nil {
		return err
	}
	return writePEM(p.serviceAccountPub(), "PUBLIC KEY", pub)
}

func (p pki) loadCA() (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(p.caCert())
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(p.caKey())
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read CA key: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("cannot decode CA certificate or key: not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot parse CA certificate: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot parse CA key: %w", err)
	}
	return cert, key, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return n
}

func mustMarshalEC(k *ecdsa.PrivateKey) []byte {
	b, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(fmt.Sprintf("cannot marshal a freshly generated key: %v", err))
	}
	return b
}

func writePEM(path, typ string, der []byte) error {
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
