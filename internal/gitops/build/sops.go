package build

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/strata-dev/strata/internal/gitops/sops"
)

// SOPS-encrypted files are decrypted in memory by internal/gitops/sops (the
// SOPS library itself) with the Sync's keys, right where the build reads
// them: a manifest of a plain folder, and any file kustomize reads
// (resources, patches, secretGenerator files and envs) when the folder has
// a kustomization. An encrypted file the build does not read is never
// decrypted, so a repository may hold files for other keys. Plaintext
// never touches the disk.

// decrypt returns data, the content of the file at file, decrypted when it
// is SOPS-encrypted. Without a decryptor an encrypted file is ErrEncrypted:
// ciphertext is never applied. Errors name the file.
func decrypt(dec *sops.Decryptor, file string, data []byte) ([]byte, error) {
	f, encrypted := sops.Detect(file, data)
	if !encrypted {
		return data, nil
	}
	if dec == nil {
		return nil, &Error{File: file, Err: ErrEncrypted}
	}
	out, err := dec.Decrypt(data, f)
	if err != nil {
		return nil, &Error{File: file, Err: fmt.Errorf("cannot decrypt the SOPS %s file: %w", sops.FormatName(f), err)}
	}
	return out, nil
}

// decryptingFS is the in-memory copy of the source that kustomize reads:
// ReadFile decrypts SOPS-encrypted files on the way.
type decryptingFS struct {
	filesys.FileSystem
	dec *sops.Decryptor

	mu sync.Mutex
	// err is the first decryption error, returned by the build instead of
	// kustomize's wrapping of it.
	err error
}

func (f *decryptingFS) ReadFile(p string) ([]byte, error) {
	data, err := f.FileSystem.ReadFile(p)
	if err != nil {
		return nil, err
	}
	out, err := decrypt(f.dec, strings.TrimPrefix(filepath.ToSlash(p), "/"), data)
	if err != nil {
		f.mu.Lock()
		if f.err == nil {
			f.err = err
		}
		f.mu.Unlock()
		return nil, err
	}
	return out, nil
}

func (f *decryptingFS) firstErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
