package build

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-dev/strata/internal/gitops/sops"
	"github.com/strata-dev/strata/internal/gitops/sopstest"
)

// SOPS test data is encrypted at test time by the real sops CLI (bin/sops,
// built by `make tools` from the module version the manager decrypts with),
// for fresh age keys and for PGP keys made by GnuPG.

func secretYAML(name string, kv ...string) string {
	s := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name + "\ntype: Opaque\nstringData:\n"
	for i := 0; i+1 < len(kv); i += 2 {
		s += "  " + kv[i] + ": " + kv[i+1] + "\n"
	}
	return s
}

// secretValues collects the values of every Secret of objs as
// "name/key" (stringData, and data decoded), plus "name/.immutable".
func secretValues(t *testing.T, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "Secret" {
			continue
		}
		sd, _, _ := unstructured.NestedStringMap(o.Object, "stringData")
		for k, v := range sd {
			out[o.GetName()+"/"+k] = v
		}
		d, _, _ := unstructured.NestedStringMap(o.Object, "data")
		for k, v := range d {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				t.Fatalf("Secret %s data %s: %v", o.GetName(), k, err)
			}
			out[o.GetName()+"/"+k] = string(b)
		}
		if im, ok := o.Object["immutable"]; ok {
			out[o.GetName()+"/.immutable"] = fmt.Sprint(im)
		}
	}
	return out
}

// sopsKit is one kind of key (age or PGP) the cases are encrypted for.
type sopsKit struct {
	t    *testing.T
	kind string
	age  sopstest.AgeKey
	pgp  sopstest.PGPKey
	// keys are the Sync's keys of this kind.
	keys *sops.Keys
}

// enc encrypts plain (a file named name) for the kit's key with the extra
// sops flags.
func (k sopsKit) enc(name, plain string, flags ...string) string {
	k.t.Helper()
	o := sopstest.Options{GnuPGHome: k.pgp.Home}
	switch k.kind {
	case "age":
		o.Args = []string{"--age", k.age.Recipient}
	case "pgp":
		o.Args = []string{"--pgp", k.pgp.Fingerprint}
	}
	o.Args = append(o.Args, flags...)
	return string(sopstest.Encrypt(k.t, name, []byte(plain), o))
}

// encWithRule encrypts plain (a file named name) with a .sops.yaml creation
// rule for the kit's key and the extra rule lines.
func (k sopsKit) encWithRule(name, plain, rule string) string {
	k.t.Helper()
	key := "  age: " + k.age.Recipient + "\n"
	if k.kind == "pgp" {
		key = "  pgp: " + k.pgp.Fingerprint + "\n"
	}
	conf := "creation_rules:\n- path_regex: .*\n" + key + rule
	return string(sopstest.Encrypt(k.t, name, []byte(plain), sopstest.Options{Config: conf, GnuPGHome: k.pgp.Home}))
}

func keysOf(t *testing.T, age *sopstest.AgeKey, pgp *sopstest.PGPKey) *sops.Keys {
	t.Helper()
	data := map[string][]byte{}
	if age != nil {
		data["sync.agekey"] = []byte(age.Identity + "\n")
	}
	if pgp != nil {
		data["sync.asc"] = pgp.Armored
	}
	k, err := sops.ParseKeys(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	macLine       = regexp.MustCompile(`(?m)^\s+mac: .*\n`)
	dotenvMACLine = regexp.MustCompile(`(?m)^sops_mac=.*\n`)
	passwordENC   = regexp.MustCompile(`password: ENC\[[^\]]*\]`)
	firstENCData  = regexp.MustCompile(`ENC\[AES256_GCM,data:([A-Za-z0-9+/]{4})`)
)

const kustomizeGenerator = "generatorOptions: {disableNameSuffixHash: true}\nsecretGenerator:\n- name: s\n"

func TestBuildSOPS(t *testing.T) {
	ageKey, pgpKey := sopstest.NewAgeKey(t), sopstest.NewPGPKey(t)
	otherAge, otherPGP := sopstest.NewAgeKey(t), sopstest.NewPGPKey(t)
	regex := []string{"--encrypted-regex", "^(data|stringData)$"}

	cases := map[string]struct {
		// files of the source, encrypted with the kit; the build reads "app".
		files func(k sopsKit) map[string]string
		// keys of the Sync (the kit's keys when nil and noKeys is false).
		keys   func(k sopsKit) *sops.Keys
		noKeys bool
		// kinds limits the case to some kinds of key.
		kinds   []string
		want    map[string]string
		wantErr string
		// secret must appear in no error.
		secret string
	}{
		"YAML": {
			files: func(k sopsKit) map[string]string {
				return map[string]string{"app/secret.yaml": k.enc("secret.yaml", secretYAML("s", "password", "yaml-pw"))}
			},
			want: map[string]string{"s/password": "yaml-pw"},
		},
		"JSON through kustomize": {
			files: func(k sopsKit) map[string]string {
				js := `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"password": "json-pw"}}`
				return map[string]string{
					"app/kustomization.yaml": "resources: [secret.json]\n",
					"app/secret.json":        k.enc("secret.json", js, regex...),
				}
			},
			want: map[string]string{"s/password": "json-pw"},
		},
		"dotenv in a secretGenerator": {
			files: func(k sopsKit) map[string]string {
				return map[string]string{
					"app/kustomization.yaml": kustomizeGenerator + "  envs: [secret.env]\n",
					"app/secret.env":         k.enc("secret.env", "PASSWORD=env-pw\nUSER=admin\n"),
				}
			},
			want: map[string]string{"s/PASSWORD": "env-pw", "s/USER": "admin"},
		},
		"binary in a secretGenerator": {
			files: func(k sopsKit) map[string]string {
				return map[string]string{
					"app/kustomization.yaml": kustomizeGenerator + "  files: [tls.key]\n",
					"app/tls.key":            k.enc("tls.key", "-----BEGIN KEY-----\nbinary-pw\x01\x02\n-----END KEY-----\n"),
				}
			},
			want: map[string]string{"s/tls.key": "-----BEGIN KEY-----\nbinary-pw\x01\x02\n-----END KEY-----\n"},
		},
		"multi-document YAML, one MAC over all": {
			files: func(k sopsKit) map[string]string {
				return map[string]string{"app/secrets.yaml": k.enc("secrets.yaml", secretYAML("a", "password", "pw-a")+"---\n"+secretYAML("b", "password", "pw-b"), regex...)}
			},
			want: map[string]string{"a/password": "pw-a", "b/password": "pw-b"},
		},
		"a boolean (immutable: true) is encrypted and in the MAC": {
			files: func(k sopsKit) map[string]string {
				return map[string]string{"app/secret.yaml": k.enc("secret.yaml", secretYAML("s", "password", "bool-pw", "enabled", `"true"`)+"immutable: true\n")}
			},
			want: map[string]string{"s/password": "bool-pw", "s/enabled": "true", "s/.immutable": "true"},
		},
		"encrypted_regex": {
			files: func(k sopsKit) map[string]string {
				return map[string]string{"app/secret.yaml": k.enc("secret.yaml", secretYAML("s", "password", "regex-pw")+"immutable: true\n", regex...)}
			},
			want: map[string]string{"s/password": "regex-pw", "s/.immutable": "true"},
		},
		"mac_only_encrypted: plain values may change": {
			files: func(k sopsKit) map[string]string {
				enc := k.encWithRule("secret.yaml", secretYAML("s", "password", "maconly-pw"), "  encrypted_regex: ^(data|stringData)$\n  mac_only_encrypted: true\n")
				if !strings.Contains(enc, "mac_only_encrypted: true") {
					t.Fatalf("sops did not record mac_only_encrypted:\n%s", enc)
				}
				return map[string]string{"app/secret.yaml": strings.Replace(enc, "type: Opaque", "type: Other", 1)}
			},
			want: map[string]string{"s/password": "maconly-pw"},
		},
		"unencrypted_suffix": {
			files: func(k sopsKit) map[string]string {
				enc := k.enc("secret.yaml", secretYAML("s", "password", "suffix-pw", "note_plain", "visible"), "--unencrypted-suffix", "_plain")
				if !strings.Contains(enc, "note_plain: visible") {
					t.Fatalf("sops encrypted the value with the unencrypted suffix:\n%s", enc)
				}
				return map[string]string{"app/secret.yaml": enc}
			},
			want: map[string]string{"s/password": "suffix-pw", "s/note_plain": "visible"},
		},
		"key groups with shamir_threshold 2 (age and PGP)": {
			files:  keyGroupFiles(t, &ageKey, &pgpKey),
			keys:   func(sopsKit) *sops.Keys { return keysOf(t, &ageKey, &pgpKey) },
			kinds:  []string{"age"},
			want:   map[string]string{"s/password": "groups-pw"},
			secret: "groups-pw",
		},
		"key groups: one group's key is not enough": {
			files:   keyGroupFiles(t, &ageKey, &pgpKey),
			keys:    func(sopsKit) *sops.Keys { return keysOf(t, &ageKey, nil) },
			kinds:   []string{"age"},
			wantErr: "app/secret.yaml: cannot decrypt the SOPS YAML file: cannot decrypt the SOPS data key",
		},
		"tampered plain value": {
			files: func(k sopsKit) map[string]string {
				enc := k.enc("secret.yaml", secretYAML("s", "password", "tampered-pw"), regex...)
				return map[string]string{"app/secret.yaml": strings.Replace(enc, "name: s", "name: evil", 1)}
			},
			wantErr: "app/secret.yaml: cannot decrypt the SOPS YAML file: the SOPS MAC does not match",
			secret:  "tampered-pw",
		},
		"tampered ciphertext": {
			files: func(k sopsKit) map[string]string {
				enc := k.enc("secret.yaml", secretYAML("s", "password", "cipher-pw"), regex...)
				m := firstENCData.FindStringSubmatch(enc)
				flipped := strings.Map(func(r rune) rune {
					if r == 'A' {
						return 'B'
					}
					return 'A'
				}, m[1])
				return map[string]string{"app/secret.yaml": strings.Replace(enc, m[0], "ENC[AES256_GCM,data:"+flipped, 1)}
			},
			wantErr: "app/secret.yaml: cannot decrypt the SOPS YAML file: cannot decrypt the values",
			secret:  "cipher-pw",
		},
		"a plaintext value where ciphertext belongs is not quoted": {
			files: func(k sopsKit) map[string]string {
				enc := k.enc("secret.yaml", secretYAML("s", "password", "x"), regex...)
				return map[string]string{"app/secret.yaml": passwordENC.ReplaceAllString(enc, "password: planted-plaintext")}
			},
			wantErr: "app/secret.yaml: cannot decrypt the SOPS YAML file: cannot decrypt the values",
			secret:  "planted-plaintext",
		},
		"YAML without a MAC": {
			files: func(k sopsKit) map[string]string {
				enc := k.enc("secret.yaml", secretYAML("s", "password", "nomac-pw"), regex...)
				return map[string]string{"app/secret.yaml": macLine.ReplaceAllString(enc, "")}
			},
			wantErr: "app/secret.yaml: cannot decrypt the SOPS YAML file: the SOPS file has no MAC",
			secret:  "nomac-pw",
		},
		"dotenv without a MAC": {
			files: func(k sopsKit) map[string]string {
				enc := k.enc("secret.env", "PASSWORD=nomac-env-pw\n")
				return map[string]string{
					"app/kustomization.yaml": kustomizeGenerator + "  envs: [secret.env]\n",
					"app/secret.env":         dotenvMACLine.ReplaceAllString(enc, ""),
				}
			},
			wantErr: "app/secret.env: cannot decrypt the SOPS dotenv file: the SOPS file has no MAC",
			secret:  "nomac-env-pw",
		},
		"metadata turned into a string": {
			files: func(k sopsKit) map[string]string {
				enc := k.enc("secret.yaml", secretYAML("s", "password", "string-pw"), regex...)
				return map[string]string{"app/secret.yaml": enc[:strings.Index(enc, "sops:")] + "sops: none\n"}
			},
			wantErr: "app/secret.yaml: cannot decrypt the SOPS YAML file: cannot read the SOPS YAML file",
			secret:  "string-pw",
		},
		"another key": {
			files: func(k sopsKit) map[string]string {
				return map[string]string{"app/secret.yaml": k.enc("secret.yaml", secretYAML("s", "password", "other-pw"))}
			},
			keys:    func(sopsKit) *sops.Keys { return keysOf(t, &otherAge, &otherPGP) },
			wantErr: "app/secret.yaml: cannot decrypt the SOPS YAML file: cannot decrypt the SOPS data key",
		},
		"no decryption configured": {
			files: func(k sopsKit) map[string]string {
				return map[string]string{
					"app/kustomization.yaml": kustomizeGenerator + "  envs: [secret.env]\n",
					"app/secret.env":         k.enc("secret.env", "PASSWORD=nokeys-pw\n"),
				}
			},
			noKeys:  true,
			wantErr: "app/secret.env: the manifest is SOPS-encrypted and the Sync has no decryption configured",
		},
		"an encrypted file the build does not read needs no key": {
			files: func(k sopsKit) map[string]string {
				return map[string]string{
					"app/kustomization.yaml": "resources: [secret.yaml]\n",
					"app/secret.yaml":        k.enc("secret.yaml", secretYAML("s", "password", "read-pw")),
					"other/secret.yaml":      string(sopstest.Encrypt(t, "secret.yaml", []byte(secretYAML("o", "password", "unread")), sopstest.Options{Args: []string{"--age", otherAge.Recipient}})),
				}
			},
			want: map[string]string{"s/password": "read-pw"},
		},
	}
	for _, kind := range []string{"age", "pgp"} {
		k := sopsKit{t: t, kind: kind, age: ageKey, pgp: pgpKey}
		if kind == "age" {
			k.keys = keysOf(t, &ageKey, nil)
		} else {
			k.keys = keysOf(t, nil, &pgpKey)
		}
		for name, tc := range cases {
			if tc.kinds != nil && !strings.Contains(strings.Join(tc.kinds, ","), kind) {
				continue
			}
			t.Run(kind+"/"+name, func(t *testing.T) {
				k.t = t
				root := writeTree(t, tc.files(k))
				o := Options{Decryption: k.keys}
				switch {
				case tc.noKeys:
					o.Decryption = nil
				case tc.keys != nil:
					o.Decryption = tc.keys(k)
				}
				objs, err := Build(root, "app", o)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("err = %v, want %q", err, tc.wantErr)
					}
					if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
						t.Fatalf("the error quotes a value of the file: %v", err)
					}
					if tc.noKeys && !errors.Is(err, ErrEncrypted) {
						t.Fatalf("err = %v, want ErrEncrypted", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, secretValues(t, objs)); diff != "" {
					t.Errorf("decrypted Secrets (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// keyGroupFiles encrypts a Secret for two key groups (an age key, a PGP key)
// that are both needed (shamir_threshold 2).
func keyGroupFiles(t *testing.T, age *sopstest.AgeKey, pgp *sopstest.PGPKey) func(sopsKit) map[string]string {
	return func(sopsKit) map[string]string {
		conf := fmt.Sprintf("creation_rules:\n- shamir_threshold: 2\n  key_groups:\n  - age: [%s]\n  - pgp: [%s]\n", age.Recipient, pgp.Fingerprint)
		enc := sopstest.Encrypt(t, "secret.yaml", []byte(secretYAML("s", "password", "groups-pw")), sopstest.Options{Config: conf, GnuPGHome: pgp.Home})
		if !strings.Contains(string(enc), "key_groups:") {
			t.Fatalf("sops made no key groups:\n%s", enc)
		}
		return map[string]string{"app/secret.yaml": string(enc)}
	}
}

// TestBuildSOPSIgnoresTheManagersKeys: the manager's own age key (in its
// environment, as the sops CLI would read it) and GnuPG keyring never
// decrypt a tenant's file; only the Sync's Secret does.
func TestBuildSOPSIgnoresTheManagersKeys(t *testing.T) {
	victim, victimPGP, tenant := sopstest.NewAgeKey(t), sopstest.NewPGPKey(t), sopstest.NewPGPKey(t)
	t.Setenv("SOPS_AGE_KEY", victim.Identity)
	t.Setenv("GNUPGHOME", victimPGP.Home)
	for name, args := range map[string][]string{"age": {"--age", victim.Recipient}, "pgp": {"--pgp", victimPGP.Fingerprint}} {
		t.Run(name, func(t *testing.T) {
			enc := sopstest.Encrypt(t, "secret.yaml", []byte(secretYAML("s", "password", "victim-pw")), sopstest.Options{Args: args, GnuPGHome: victimPGP.Home})
			root := writeTree(t, map[string]string{"app/secret.yaml": string(enc)})
			objs, err := Build(root, "app", Options{Decryption: keysOf(t, nil, &tenant)})
			if err == nil || !strings.Contains(err.Error(), "app/secret.yaml: cannot decrypt the SOPS YAML file: cannot decrypt the SOPS data key") {
				t.Fatalf("a tenant decrypted with the manager's key: objs = %v, err = %v", secretValues(t, objs), err)
			}
		})
	}
}

// TestBuildSOPSPassphrase: a PGP key with a passphrase fails the build at
// once, naming the file, instead of waiting for a prompt nobody answers.
func TestBuildSOPSPassphrase(t *testing.T) {
	key := sopstest.NewPGPKeyWithPassphrase(t, "hunter2")
	enc := sopstest.Encrypt(t, "secret.yaml", []byte(secretYAML("s", "password", "pass-pw")), sopstest.Options{Args: []string{"--pgp", key.Fingerprint}, GnuPGHome: key.Home})
	root := writeTree(t, map[string]string{"app/secret.yaml": string(enc)})
	_, err := Build(root, "app", Options{Decryption: keysOf(t, nil, &key)})
	if err == nil || !strings.Contains(err.Error(), "app/secret.yaml: cannot decrypt the SOPS YAML file: cannot decrypt the SOPS data key") {
		t.Fatalf("err = %v, want the data key refused", err)
	}
}

// testdata/secret.sops.yaml was encrypted by an older sops CLI (v3.11.0) for
// the age key in testdata/demo.agekey, with --encrypted-regex
// '^(data|stringData)$'; examples/gitops holds files like it.

func demoKeys(t *testing.T) *sops.Keys {
	t.Helper()
	k, err := os.ReadFile("testdata/demo.agekey")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := sops.ParseKeys(map[string][]byte{"demo.agekey": k})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestBuildDecrypts(t *testing.T) {
	enc, err := os.ReadFile("testdata/secret.sops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string]map[string]string{
		"plain":     {"app/secret.yaml": string(enc), "app/cm.yaml": strings.ReplaceAll(cm, "%s", "a")},
		"kustomize": {"base/secret.yaml": string(enc), "base/kustomization.yaml": "resources: [secret.yaml]\n", "app/kustomization.yaml": "resources: [../base]\nnamePrefix: p-\n"},
	} {
		t.Run(name, func(t *testing.T) {
			root := writeTree(t, files)
			if _, err := Build(root, "app", Options{}); err == nil || !strings.Contains(err.Error(), "SOPS-encrypted") {
				t.Fatalf("build without keys: err = %v, want the SOPS error", err)
			}
			objs, err := Build(root, "app", Options{Decryption: demoKeys(t)})
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			for _, o := range objs {
				if o.GetKind() == "Secret" {
					got++
					if v := o.Object["stringData"].(map[string]any); v["password"] != "s3cr3t-demo-password" || v["port"] != "5432" || o.Object["sops"] != nil {
						t.Errorf("secret not decrypted: %v", o.Object)
					}
				}
			}
			if got != 1 {
				t.Errorf("%d Secrets, want 1", got)
			}
			if b, _ := os.ReadFile(root + "/base/secret.yaml"); len(b) > 0 && !strings.Contains(string(b), "ENC[") {
				t.Error("plaintext was written to disk")
			}
		})
	}
}
