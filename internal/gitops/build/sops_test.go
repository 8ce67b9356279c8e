package build

import (
	"os"
	"strings"
	"testing"
)

// testdata/secret.sops.yaml was encrypted by the sops CLI (v3.11.0) for the
// age key in testdata/demo.agekey, with --encrypted-regex '^(data|stringData)$'.

func demoIdentities(t *testing.T) []byte {
	t.Helper()
	k, err := os.ReadFile("testdata/demo.agekey")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestDecryptSOPS(t *testing.T) {
	enc, err := os.ReadFile("testdata/secret.sops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ParseAgeIdentities(demoIdentities(t))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := DecryptFile(enc, ids)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Read("secret.sops.yaml", plain)
	if err != nil {
		t.Fatal(err)
	}
	sd := objs[0].Object["stringData"].(map[string]any)
	if sd["password"] != "s3cr3t-demo-password" || sd["port"] != "5432" || objs[0].Object["sops"] != nil {
		t.Fatalf("decrypted object = %v", objs[0].Object)
	}

	other, _ := ParseAgeIdentities([]byte("AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX\n"))
	cases := map[string]struct {
		data []byte
		ids  []byte
		want string
	}{
		"wrong key":      {enc, nil, "none of the decryption keys"},
		"tampered value": {[]byte(strings.Replace(string(enc), "data:CySR", "data:CySS", 1)), demoIdentities(t), "password: cannot decrypt"},
		"tampered plain": {[]byte(strings.Replace(string(enc), "name: shop-db-credentials", "name: evil", 1)), demoIdentities(t), "MAC mismatch"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			idents := other
			if tc.ids != nil {
				idents, _ = ParseAgeIdentities(tc.ids)
			}
			_, err := DecryptFile(tc.data, idents)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBuildDecrypts(t *testing.T) {
	enc, _ := os.ReadFile("testdata/secret.sops.yaml")
	ids, _ := ParseAgeIdentities(demoIdentities(t))
	for name, files := range map[string]map[string]string{
		"plain":     {"app/secret.yaml": string(enc), "app/cm.yaml": strings.ReplaceAll(cm, "%s", "a")},
		"kustomize": {"base/secret.yaml": string(enc), "base/kustomization.yaml": "resources: [secret.yaml]\n", "app/kustomization.yaml": "resources: [../base]\nnamePrefix: p-\n"},
	} {
		t.Run(name, func(t *testing.T) {
			root := writeTree(t, files)
			if _, err := Build(root, "app", Options{}); err == nil || !strings.Contains(err.Error(), "SOPS-encrypted") {
				t.Fatalf("build without keys: err = %v, want the SOPS error", err)
			}
			objs, err := Build(root, "app", Options{Identities: ids})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if o.GetKind() == "Secret" && o.Object["stringData"].(map[string]any)["password"] != "s3cr3t-demo-password" {
					t.Errorf("secret not decrypted: %v", o.Object)
				}
			}
			if b, _ := os.ReadFile(root + "/base/secret.yaml"); len(b) > 0 && !strings.Contains(string(b), "ENC[") {
				t.Error("plaintext was written to disk")
			}
		})
	}
}
