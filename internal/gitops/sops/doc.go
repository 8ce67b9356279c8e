// Package sops decrypts SOPS-encrypted files (YAML, JSON, dotenv and binary,
// multi-document YAML included) in memory with the SOPS library itself, for
// a Sync's build. Keys come only from the Sync's decryption Secret (age
// identities and armored PGP private keys, the latter in a temporary GnuPG
// home per decryptor), never from the manager's environment, and every file
// must carry a valid MAC.
//
// It knows nothing about clients, kustomize or the cluster, and it never
// writes plaintext to disk or puts it in an error.
package sops
