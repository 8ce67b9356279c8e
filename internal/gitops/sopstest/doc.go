// Package sopstest makes SOPS test data at test time with the real tools:
// the sops CLI that `make tools` builds into bin/ (the same module version
// the manager decrypts with), fresh age keys, and PGP keys made by GnuPG in
// a temporary home. Only tests import it.
package sopstest
