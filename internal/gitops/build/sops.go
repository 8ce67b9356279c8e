package build

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
	yamlv3 "go.yaml.in/yaml/v3"
)

// SOPS decryption of age-encrypted manifests, in memory. It implements the
// part of the SOPS file format (github.com/getsops/sops, format version 3)
// that a delivery controller needs: the data key is age-decrypted from
// sops.age[].enc, each ENC[AES256_GCM,...] value is opened with AES-256-GCM
// using its key path ("a:b:c:") as additional data, and the document's MAC
// (SHA-512 over the values in document order, encrypted with the
// lastmodified time as additional data) is verified, so a tampered file is
// refused. Plaintext never touches disk or logs.

// ParseAgeIdentities reads age identities (AGE-SECRET-KEY-...) from the
// contents of key files.
func ParseAgeIdentities(keys ...[]byte) ([]age.Identity, error) {
	var out []age.Identity
	for _, k := range keys {
		ids, err := age.ParseIdentities(bytes.NewReader(k))
		if err != nil {
			return nil, fmt.Errorf("cannot parse age identities: %w", err)
		}
		out = append(out, ids...)
	}
	return out, nil
}

// IsEncrypted reports whether a YAML document carries SOPS metadata.
func IsEncrypted(data []byte) bool {
	return bytes.Contains(data, []byte("sops:")) && bytes.Contains(data, []byte("ENC[AES256_GCM,"))
}

// DecryptFile decrypts every SOPS-encrypted document of a YAML file and
// returns the file with plaintext values and without sops metadata.
func DecryptFile(data []byte, ids []age.Identity) ([]byte, error) {
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	var out bytes.Buffer
	enc := yamlv3.NewEncoder(&out)
	enc.SetIndent(2)
	for i := 1; ; i++ {
		var doc yamlv3.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("document %d: invalid YAML: %w", i, err)
		}
		if len(doc.Content) == 1 && doc.Content[0].Kind == yamlv3.MappingNode {
			if err := decryptDoc(doc.Content[0], ids); err != nil {
				return nil, fmt.Errorf("document %d: %w", i, err)
			}
		}
		if err := enc.Encode(&doc); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

type sopsMeta struct {
	ageEnc           []string
	lastModified     string
	mac              string
	macOnlyEncrypted bool
}

func decryptDoc(root *yamlv3.Node, ids []age.Identity) error {
	idx := -1
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "sops" {
			idx = i
		}
	}
	if idx < 0 {
		return nil
	}
	meta, err := readMeta(root.Content[idx+1])
	if err != nil {
		return err
	}
	if meta.mac == "" {
		return nil
	}
	if len(ids) == 0 {
		return ErrEncrypted
	}
	key, err := dataKey(meta, ids)
	if err != nil {
		return err
	}
	// Drop the metadata, then decrypt and hash the rest in document order.
	root.Content = append(root.Content[:idx], root.Content[idx+2:]...)
	h := sha512.New()
	if err := walk(root, nil, func(n *yamlv3.Node, path []string) error {
		encrypted := strings.HasPrefix(n.Value, "ENC[AES256_GCM,")
		if encrypted {
			if err := decryptScalar(n, key, strings.Join(path, ":")+":"); err != nil {
				return fmt.Errorf("value at %s: %w", strings.Join(path, "."), err)
			}
		}
		if !meta.macOnlyEncrypted || encrypted {
			h.Write(macBytes(n))
		}
		return nil
	}); err != nil {
		return err
	}
	macNode := &yamlv3.Node{Kind: yamlv3.ScalarNode, Value: meta.mac}
	if err := decryptScalar(macNode, key, meta.lastModified); err != nil {
		return fmt.Errorf("cannot decrypt the SOPS MAC: %w", err)
	}
	if want := strings.ToUpper(hex.EncodeToString(h.Sum(nil))); macNode.Value != want {
		return errors.New("SOPS MAC mismatch: the encrypted file was modified")
	}
	return nil
}

func readMeta(n *yamlv3.Node) (sopsMeta, error) {
	var m sopsMeta
	if n.Kind != yamlv3.MappingNode {
		return m, errors.New("sops metadata is not a mapping")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		switch k {
		case "lastmodified":
			m.lastModified = v.Value
		case "mac":
			m.mac = v.Value
		case "mac_only_encrypted":
			m.macOnlyEncrypted = v.Value == "true"
		case "age":
			for _, e := range v.Content {
				for j := 0; j+1 < len(e.Content); j += 2 {
					if e.Content[j].Value == "enc" {
						m.ageEnc = append(m.ageEnc, e.Content[j+1].Value)
					}
				}
			}
		}
	}
	return m, nil
}

func dataKey(m sopsMeta, ids []age.Identity) ([]byte, error) {
	if len(m.ageEnc) == 0 {
		return nil, errors.New("the file has no age recipients (only age keys are supported)")
	}
	for _, enc := range m.ageEnc {
		r, err := age.Decrypt(armor.NewReader(strings.NewReader(enc)), ids...)
		if err != nil {
			continue
		}
		key, err := io.ReadAll(r)
		if err == nil && len(key) == 32 {
			return key, nil
		}
	}
	return nil, errors.New("none of the decryption keys can decrypt this file's data key")
}

// walk calls leaf for every scalar below n with its key path; sequence
// items keep their parent's path, as in SOPS.
func walk(n *yamlv3.Node, path []string, leaf func(*yamlv3.Node, []string) error) error {
	switch n.Kind {
	case yamlv3.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := append(append([]string(nil), path...), n.Content[i].Value)
			if err := walk(n.Content[i+1], p, leaf); err != nil {
				return err
			}
		}
	case yamlv3.SequenceNode:
		for _, c := range n.Content {
			if err := walk(c, path, leaf); err != nil {
				return err
			}
		}
	case yamlv3.ScalarNode:
		return leaf(n, path)
	case yamlv3.AliasNode:
		return errors.New("YAML aliases are not supported in encrypted files")
	}
	return nil
}

var encRE = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.*),iv:(.+),tag:(.+),type:(.+)\]$`)

func decryptScalar(n *yamlv3.Node, key []byte, aad string) error {
	m := encRE.FindStringSubmatch(n.Value)
	if m == nil {
		return errors.New("malformed ENC[] value")
	}
	data, err1 := base64.StdEncoding.DecodeString(m[1])
	iv, err2 := base64.StdEncoding.DecodeString(m[2])
	tag, err3 := base64.StdEncoding.DecodeString(m[3])
	if err := errors.Join(err1, err2, err3); err != nil || len(iv) == 0 {
		return errors.New("malformed ENC[] value")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(iv))
	if err != nil {
		return err
	}
	plain, err := gcm.Open(nil, iv, append(data, tag...), []byte(aad))
	if err != nil {
		return errors.New("cannot decrypt (wrong key or modified value)")
	}
	n.Value, n.Style = string(plain), 0
	switch m[4] {
	case "str", "bytes":
		n.Tag = "!!str"
	case "int":
		n.Tag = "!!int"
	case "float":
		n.Tag = "!!float"
	case "bool":
		n.Tag = "!!bool"
	default:
		return fmt.Errorf("unsupported value type %q", m[4])
	}
	return nil
}

// macBytes is SOPS's byte form of a value for the MAC.
func macBytes(n *yamlv3.Node) []byte {
	switch n.Tag {
	case "!!float":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
			return []byte(strconv.FormatFloat(f, 'f', -1, 64))
		}
	case "!!bool":
		if b, err := strconv.ParseBool(n.Value); err == nil {
			return []byte(strconv.FormatBool(b))
		}
	case "!!null":
		return nil
	}
	return []byte(n.Value)
}
