package sops

import (
	"bytes"
	"fmt"
	"path"
	"sort"

	sopsage "github.com/getsops/sops/v3/age"
)

// Entry suffixes of a decryption Secret, as in Flux.
const (
	// AgeKeySuffix marks an entry holding age identities (AGE-SECRET-KEY-...).
	AgeKeySuffix = ".agekey"
	// PGPKeySuffix marks an entry holding an armored PGP private key.
	PGPKeySuffix = ".asc"
)

// Keys are the private keys one Sync may decrypt with. They stay in memory.
type Keys struct {
	// Age identities.
	Age sopsage.ParsedIdentities
	// PGP holds armored PGP private keys, imported into a temporary GnuPG
	// home when a file needs one.
	PGP [][]byte
}

// Empty reports whether there is no key at all.
func (k *Keys) Empty() bool { return k == nil || len(k.Age) == 0 && len(k.PGP) == 0 }

var pgpPrivateArmor = []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----")

// ParseKeys reads the `*.agekey` and `*.asc` entries of a decryption
// Secret's data. Other entries are ignored. An entry that holds no valid key
// is an error naming the entry (never its content). It returns nil keys
// when no entry has either suffix.
func ParseKeys(data map[string][]byte) (*Keys, error) {
	names := make([]string, 0, len(data))
	for n := range data {
		names = append(names, n)
	}
	sort.Strings(names)
	k := &Keys{}
	found := false
	for _, n := range names {
		v := data[n]
		switch path.Ext(n) {
		case AgeKeySuffix:
			found = true
			var ids sopsage.ParsedIdentities
			// The parser's error may quote the key: name the entry only.
			if err := ids.Import(string(v)); err != nil || len(ids) == 0 {
				return nil, fmt.Errorf("entry %q holds no valid age identity", n)
			}
			k.Age = append(k.Age, ids...)
		case PGPKeySuffix:
			found = true
			if !bytes.Contains(v, pgpPrivateArmor) {
				return nil, fmt.Errorf("entry %q holds no armored PGP private key", n)
			}
			k.PGP = append(k.PGP, v)
		}
	}
	if !found {
		return nil, nil
	}
	return k, nil
}
