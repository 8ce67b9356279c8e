package sopstest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/strata-dev/strata/internal/testenv"
)

// CLI returns the path of the sops CLI in bin/, failing the test when it is
// missing.
func CLI(t testing.TB) string {
	t.Helper()
	p, err := testenv.Tool("sops")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// AgeKey is an age key pair.
type AgeKey struct {
	// Identity is the private key (AGE-SECRET-KEY-...), the content of a
	// `*.agekey` entry.
	Identity string
	// Recipient is the public key (age1...).
	Recipient string
}

// NewAgeKey makes a fresh age key pair.
func NewAgeKey(t testing.TB) AgeKey {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return AgeKey{Identity: id.String(), Recipient: id.Recipient().String()}
}

// PGPKey is a PGP key pair made by GnuPG.
type PGPKey struct {
	// Fingerprint of the primary key.
	Fingerprint string
	// Armored private key, the content of a `*.asc` entry.
	Armored []byte
	// Home is the GnuPG home holding the key, for `sops encrypt`.
	Home string
}

// NewPGPKey makes a fresh PGP key without passphrase in a temporary GnuPG
// home, removed (with its agent) when the test ends.
func NewPGPKey(t testing.TB) PGPKey {
	t.Helper()
	return NewPGPKeyWithPassphrase(t, "")
}

// NewPGPKeyWithPassphrase is NewPGPKey with a passphrase on the key.
func NewPGPKeyWithPassphrase(t testing.TB, passphrase string) PGPKey {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Fatal("gpg not found: install GnuPG (apt-get install gnupg)")
	}
	// A short path: gpg-agent's socket lives in the home.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		_ = os.RemoveAll(home)
	})
	gpg := func(stdin string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", passphrase}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return out
	}
	gpg("", "--quick-generate-key", "Strata Test <sops-test@strata.invalid>", "future-default", "default", "never")
	var fpr string
	for _, line := range strings.Split(string(gpg("", "--with-colons", "--list-secret-keys")), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
			fpr = f[9]
			break
		}
	}
	if fpr == "" {
		t.Fatal("gpg made no key")
	}
	return PGPKey{Fingerprint: fpr, Armored: gpg("", "--armor", "--export-secret-keys", fpr), Home: home}
}

// Options say how to encrypt.
type Options struct {
	// Args are flags of `sops encrypt` (--age, --pgp, --encrypted-regex...).
	Args []string
	// Config is the content of a .sops.yaml beside the file (for key
	// groups), if any.
	Config string
	// GnuPGHome is the GnuPG home of the PGP recipients, if any.
	GnuPGHome string
}

// Encrypt encrypts plain, the content of a file named name (its extension
// gives the format, as for sops), with the sops CLI and returns the
// encrypted file.
func Encrypt(t testing.TB, name string, plain []byte, o Options) []byte {
	t.Helper()
	sops := CLI(t)
	dir := t.TempDir()
	if o.Config != "" {
		if err := os.WriteFile(filepath.Join(dir, ".sops.yaml"), []byte(o.Config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name), plain, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sops, append(append([]string{"encrypt"}, o.Args...), name)...)
	cmd.Dir = dir
	// Only what the test gives: no key or config of the machine's user.
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "SOPS_DISABLE_VERSION_CHECK=1"}
	if o.GnuPGHome != "" {
		cmd.Env = append(cmd.Env, "GNUPGHOME="+o.GnuPGHome)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sops encrypt %s: %v: %s", name, err, stderr.String())
	}
	return out
}
