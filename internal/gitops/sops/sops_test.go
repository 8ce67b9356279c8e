package sops

import (
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/google/go-cmp/cmp"
)

func TestParseKeys(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	pgpKey := []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxx\n-----END PGP PRIVATE KEY BLOCK-----\n")
	cases := map[string]struct {
		data            map[string][]byte
		wantAge, wantPG int
		wantNil         bool
		wantErr         string
	}{
		"age and PGP":     {data: map[string][]byte{"a.agekey": []byte("# comment\n" + id.String() + "\n"), "b.asc": pgpKey, "README": []byte("x")}, wantAge: 1, wantPG: 1},
		"two age keys":    {data: map[string][]byte{"a.agekey": []byte(id.String() + "\n" + id.String())}, wantAge: 2},
		"no key entry":    {data: map[string][]byte{"token": []byte("x")}, wantNil: true},
		"bad age key":     {data: map[string][]byte{"a.agekey": []byte("AGE-SECRET-KEY-1NOTAKEYATALLsecretish")}, wantErr: `entry "a.agekey" holds no valid age identity`},
		"empty age entry": {data: map[string][]byte{"a.agekey": nil}, wantErr: `entry "a.agekey" holds no valid age identity`},
		"public PGP key":  {data: map[string][]byte{"k.asc": []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\nsecretish")}, wantErr: `entry "k.asc" holds no armored PGP private key`},
		"suffix, not ext": {data: map[string][]byte{"agekey": []byte("x")}, wantNil: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			k, err := ParseKeys(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secretish") {
					t.Fatalf("the error quotes the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantNil {
				if k != nil {
					t.Fatalf("keys = %v, want none", k)
				}
				return
			}
			if len(k.Age) != tc.wantAge || len(k.PGP) != tc.wantPG {
				t.Fatalf("%d age and %d PGP keys, want %d and %d", len(k.Age), len(k.PGP), tc.wantAge, tc.wantPG)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	type result struct {
		Format    string
		Encrypted bool
	}
	cases := map[string]struct {
		file, data string
		want       result
	}{
		"YAML":                         {"a.yaml", "a: ENC[x]\nsops:\n  mac: ENC[y]\n", result{"YAML", true}},
		"YAML without MAC":             {"a.yml", "a: ENC[x]\nsops:\n  version: 3.13.3\n", result{"YAML", true}},
		"YAML, second document":        {"a.yaml", "a: 1\n---\nb: ENC[x]\nsops: {version: x}\n", result{"YAML", true}},
		"YAML mentioning sops":         {"a.yaml", "data:\n  sops: enabled\n", result{"unknown", false}},
		"YAML, metadata as a string":   {"a.yaml", "a: ENC[x]\nsops: mac\n", result{"YAML", true}},
		"plain YAML":                   {"a.yaml", "a: 1\n", result{"unknown", false}},
		"invalid YAML":                 {"a.yaml", "sops: [\n", result{"unknown", false}},
		"JSON":                         {"a.json", `{"a": "ENC[x]", "sops": {"mac": "ENC[y]"}}`, result{"JSON", true}},
		"JSON, metadata as a string":   {"a.json", `{"sops": "no"}`, result{"JSON", true}},
		"JSON mentioning sops":         {"a.json", `{"data": {"sops": "no"}}`, result{"unknown", false}},
		"dotenv":                       {"a.env", "A=ENC[x]\nsops_version=3.13.3\n", result{"dotenv", true}},
		"dotenv named otherwise":       {"secrets.txt", "A=ENC[x]\nsops_lastmodified=2026\n", result{"dotenv", true}},
		"plain dotenv":                 {"a.env", "SOPS=1\n", result{"unknown", false}},
		"binary envelope":              {"tls.key", `{"data": "ENC[x]", "sops": {"mac": "ENC[y]"}}`, result{"binary", true}},
		"plain binary mentioning sops": {"tls.key", "sops\x00\x01", result{"unknown", false}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f, enc := Detect(tc.file, []byte(tc.data))
			got := result{"unknown", enc}
			if enc {
				got.Format = FormatName(f)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Detect (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzDecrypt: whatever a tenant commits, decryption returns an error, never
// panics, and never succeeds without a key.
func FuzzDecrypt(f *testing.F) {
	f.Add([]byte("a: ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]\nsops:\n  age:\n  - recipient: x\n    enc: y\n  mac: ENC[x]\n  version: 3.13.3\n"), uint8(0))
	f.Add([]byte(`{"data": "ENC[x]", "sops": {"version": "3", "lastmodified": "bad"}}`), uint8(3))
	f.Add([]byte("A=ENC[x]\nsops_version=3\nsops_shamir_threshold=7\n"), uint8(1))
	formats := []Format{YAML, Dotenv, JSON, Binary}
	f.Fuzz(func(t *testing.T, data []byte, fi uint8) {
		d := NewDecryptor(nil)
		defer d.Close()
		if _, err := d.Decrypt(data, formats[int(fi)%len(formats)]); err == nil {
			t.Fatal("decrypted without a key")
		}
	})
}
