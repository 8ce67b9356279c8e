package sops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
	"github.com/getsops/sops/v3/pgp"
	sopsdotenv "github.com/getsops/sops/v3/stores/dotenv"
	sopsjson "github.com/getsops/sops/v3/stores/json"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	"google.golang.org/grpc"
)

// ErrNoMAC is returned for a file whose MAC is missing: SOPS writes one
// into every file it encrypts, so a file without one was tampered with.
var ErrNoMAC = errors.New("the SOPS file has no MAC: it was modified after encryption")

// ErrMACMismatch is returned when a file's values do not match its MAC.
var ErrMACMismatch = errors.New("the SOPS MAC does not match the values: the file was modified after encryption")

// pgpTimeout bounds one gpg call, so a key that asks for a passphrase
// fails instead of hanging the build.
const pgpTimeout = 30 * time.Second

// Decryptor decrypts SOPS files with one set of keys. Call Close when done:
// it removes the temporary GnuPG home (and stops its agent) that PGP keys
// were imported into. It is safe for concurrent use.
type Decryptor struct {
	keys *Keys

	mu        sync.Mutex
	gnupgHome pgp.GnuPGHome
	gnupgErr  error
	closed    bool
}

// NewDecryptor returns a decryptor for keys (nil: none, every file fails).
func NewDecryptor(keys *Keys) *Decryptor {
	if keys == nil {
		keys = &Keys{}
	}
	return &Decryptor{keys: keys}
}

// Decrypt decrypts data, a SOPS file in format f, and returns the plaintext
// in the same format (the raw bytes for binary). It verifies the MAC: a
// file without one, or whose values were changed, is refused. Errors
// never contain a value of the file.
func (d *Decryptor) Decrypt(data []byte, f Format) (out []byte, err error) {
	defer func() {
		// Malformed input has made the SOPS stores panic before.
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("cannot read the SOPS %s file", FormatName(f))
		}
	}()
	store, err := storeFor(f)
	if err != nil {
		return nil, err
	}
	tree, err := store.LoadEncryptedFile(data)
	if err != nil {
		return nil, fmt.Errorf("cannot read the SOPS %s file: %w", FormatName(f), err)
	}
	key, err := tree.Metadata.GetDataKeyWithKeyServices([]keyservice.KeyServiceClient{keyService{d}}, sops.DefaultDecryptionOrder)
	if err != nil {
		return nil, fmt.Errorf("cannot decrypt the SOPS data key: %w", err)
	}
	cipher := aes.NewCipher()
	mac, err := tree.Decrypt(key, cipher)
	if err != nil {
		// SOPS's message may quote a value that should have been
		// encrypted and is not: keep it out.
		return nil, errors.New("cannot decrypt the values: a value was modified or is not encrypted")
	}
	if tree.Metadata.MessageAuthenticationCode == "" {
		return nil, ErrNoMAC
	}
	want, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, key, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return nil, fmt.Errorf("%w (the MAC cannot be decrypted)", ErrMACMismatch)
	}
	if w, ok := want.(string); !ok || w != mac {
		return nil, ErrMACMismatch
	}
	out, err = store.EmitPlainFile(tree.Branches)
	if err != nil {
		return nil, fmt.Errorf("cannot write the decrypted %s file: %w", FormatName(f), err)
	}
	return out, nil
}

// store is the part of the SOPS stores the decryptor uses.
type store interface {
	LoadEncryptedFile(in []byte) (sops.Tree, error)
	EmitPlainFile(in sops.TreeBranches) ([]byte, error)
}

func storeFor(f Format) (store, error) {
	switch f {
	case YAML:
		return sopsyaml.NewStore(&config.YAMLStoreConfig{}), nil
	case JSON:
		return sopsjson.NewStore(&config.JSONStoreConfig{}), nil
	case Dotenv:
		return sopsdotenv.NewStore(&config.DotenvStoreConfig{}), nil
	case Binary:
		return sopsjson.NewBinaryStore(&config.JSONBinaryStoreConfig{}), nil
	}
	return nil, fmt.Errorf("unsupported SOPS format %d", f)
}

// Close removes the temporary GnuPG home, if one was made.
func (d *Decryptor) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.gnupgHome == "" {
		return nil
	}
	home := d.gnupgHome.String()
	d.gnupgHome = ""
	// gpg started an agent for this home: stop it before removing it.
	ctx, cancel := context.WithTimeout(context.Background(), pgpTimeout)
	defer cancel()
	_ = exec.CommandContext(ctx, "gpgconf", "--homedir", home, "--kill", "all").Run()
	if err := os.RemoveAll(home); err != nil {
		return fmt.Errorf("cannot remove the temporary GnuPG home: %w", err)
	}
	return nil
}

// gnupg returns the decryptor's GnuPG home, made and filled with the PGP
// keys on first use. The manager's own keyring is never used.
func (d *Decryptor) gnupg() (pgp.GnuPGHome, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return "", errors.New("the decryptor is closed")
	}
	if d.gnupgHome != "" || d.gnupgErr != nil {
		return d.gnupgHome, d.gnupgErr
	}
	home, err := d.newGnuPGHome()
	if err != nil {
		d.gnupgErr = err
		return "", err
	}
	d.gnupgHome = home
	return home, nil
}

func (d *Decryptor) newGnuPGHome() (pgp.GnuPGHome, error) {
	home, err := pgp.NewGnuPGHome()
	if err != nil {
		return "", err
	}
	fail := func(err error) (pgp.GnuPGHome, error) {
		_ = exec.Command("gpgconf", "--homedir", home.String(), "--kill", "all").Run()
		_ = os.RemoveAll(home.String())
		return "", err
	}
	// SOPS falls back to the user's keyring when the home is not valid:
	// refuse instead.
	if err := home.Validate(); err != nil {
		return fail(fmt.Errorf("temporary GnuPG home: %w", err))
	}
	// Never prompt: a key with a passphrase fails at once.
	conf := "batch\nno-tty\npinentry-mode loopback\n"
	if err := os.WriteFile(filepath.Join(home.String(), "gpg.conf"), []byte(conf), 0o600); err != nil {
		return fail(fmt.Errorf("temporary GnuPG home: %w", err))
	}
	for i, k := range d.keys.PGP {
		ctx, cancel := context.WithTimeout(context.Background(), pgpTimeout)
		err := home.ImportContext(ctx, k)
		cancel()
		if err != nil {
			return fail(fmt.Errorf("cannot import PGP key %d of the decryption secret: %w", i+1, err))
		}
	}
	return home, nil
}

// keyService hands SOPS the data key of a file, decrypted with the
// decryptor's keys only: age identities from the Secret (never from the
// manager's environment or files) and PGP keys in the temporary home.
// Every other key type (cloud KMS, Vault) is refused.
type keyService struct{ d *Decryptor }

func (keyService) Encrypt(context.Context, *keyservice.EncryptRequest, ...grpc.CallOption) (*keyservice.EncryptResponse, error) {
	return nil, errors.New("encryption is not supported")
}

func (k keyService) Decrypt(_ context.Context, req *keyservice.DecryptRequest, _ ...grpc.CallOption) (*keyservice.DecryptResponse, error) {
	switch key := req.GetKey().GetKeyType().(type) {
	case *keyservice.Key_AgeKey:
		if len(k.d.keys.Age) == 0 {
			// Without identities SOPS would read the manager's
			// environment and files: never.
			return nil, errors.New("the decryption secret has no age key (*.agekey)")
		}
		mk := &sopsage.MasterKey{Recipient: key.AgeKey.GetRecipient(), EncryptedKey: string(req.GetCiphertext())}
		k.d.keys.Age.ApplyToMasterKey(mk)
		plain, err := mk.Decrypt()
		if err != nil {
			return nil, fmt.Errorf("no age key of the decryption secret decrypts it for %s", key.AgeKey.GetRecipient())
		}
		return &keyservice.DecryptResponse{Plaintext: plain}, nil
	case *keyservice.Key_PgpKey:
		if len(k.d.keys.PGP) == 0 {
			return nil, errors.New("the decryption secret has no PGP key (*.asc)")
		}
		home, err := k.d.gnupg()
		if err != nil {
			return nil, err
		}
		mk := pgp.NewMasterKeyFromFingerprint(key.PgpKey.GetFingerprint())
		mk.EncryptedKey = string(req.GetCiphertext())
		home.ApplyToMasterKey(mk)
		pgp.DisableOpenPGP{}.ApplyToMasterKey(mk)
		ctx, cancel := context.WithTimeout(context.Background(), pgpTimeout)
		defer cancel()
		plain, err := mk.DecryptContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("no PGP key of the decryption secret decrypts it for %s", key.PgpKey.GetFingerprint())
		}
		return &keyservice.DecryptResponse{Plaintext: plain}, nil
	case nil:
		return nil, errors.New("the SOPS file names no key")
	default:
		return nil, fmt.Errorf("key type %T is not supported: only age and PGP keys", key)
	}
}
