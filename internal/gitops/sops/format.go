package sops

import (
	"bufio"
	"bytes"
	"encoding/json"
	"path"
	"strings"

	"github.com/getsops/sops/v3/cmd/sops/formats"
	yamlv3 "go.yaml.in/yaml/v3"
)

// Format is the SOPS file format of an encrypted file.
type Format = formats.Format

// The formats Strata decrypts.
const (
	YAML   = formats.Yaml
	JSON   = formats.Json
	Dotenv = formats.Dotenv
	Binary = formats.Binary
)

// FormatName is a format's name for messages.
func FormatName(f Format) string {
	switch f {
	case YAML:
		return "YAML"
	case JSON:
		return "JSON"
	case Dotenv:
		return "dotenv"
	case Binary:
		return "binary"
	}
	return "unknown"
}

// Detect reports whether data, the content of the file at file, is
// SOPS-encrypted, and in which format. The format follows the extension
// as in the sops CLI (.yaml/.yml, .json, .env, anything else binary); a
// file of another extension that holds SOPS dotenv metadata is dotenv, as
// kustomize `envs` files often have other names. A file counts as
// encrypted when it carries SOPS metadata, whatever that metadata lacks
// (a deleted MAC makes decryption fail; it never lets ciphertext through).
func Detect(file string, data []byte) (Format, bool) {
	if !bytes.Contains(data, []byte("sops")) {
		return 0, false
	}
	switch strings.ToLower(path.Ext(file)) {
	case ".yaml", ".yml":
		return YAML, yamlHasMetadata(data)
	case ".json":
		return JSON, jsonHasMetadata(data)
	case ".env":
		return Dotenv, dotenvHasMetadata(data)
	}
	if jsonHasMetadata(data) {
		// The binary store's envelope is a JSON object {data, sops}.
		return Binary, true
	}
	if dotenvHasMetadata(data) {
		return Dotenv, true
	}
	return 0, false
}

// yamlHasMetadata reports whether a document of data is a mapping with a
// top-level `sops` key (whatever its value: metadata turned into a scalar
// must not pass for plaintext).
func yamlHasMetadata(data []byte) bool {
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	for {
		var doc yamlv3.Node
		if err := dec.Decode(&doc); err != nil {
			// The end, or invalid YAML that the reader reports later.
			return false
		}
		if len(doc.Content) != 1 || doc.Content[0].Kind != yamlv3.MappingNode {
			continue
		}
		m := doc.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == "sops" {
				return true
			}
		}
	}
}

func jsonHasMetadata(data []byte) bool {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return false
	}
	_, ok := m["sops"]
	return ok
}

// dotenvHasMetadata reports whether a line sets a SOPS metadata key
// (sops_version=, sops_lastmodified=, sops_mac=, sops_age__list_0__map_enc=...).
func dotenvHasMetadata(data []byte) bool {
	r := bufio.NewReader(bytes.NewReader(data))
	for {
		line, err := r.ReadString('\n')
		if k, _, ok := strings.Cut(strings.TrimSpace(line), "="); ok && strings.HasPrefix(k, "sops_") {
			return true
		}
		if err != nil {
			return false
		}
	}
}
