package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/apply"
	"github.com/strata-dev/strata/internal/gitops/build"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/gitops/inputs"
)

// strata runs the strata command as a user would and returns its exit
// status, stdout and stderr.
func strata(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code := Run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func newNamespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return name
}

// newSync creates a GitRepository at url (with secret as its secretRef when
// set) and a Sync of path in ns.
func newSync(t *testing.T, ns, url, secret, path string) *gitopsv1.Sync {
	t.Helper()
	ctx := context.Background()
	repo := &gitopsv1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: gitopsv1.GitRepositorySpec{URL: url, Interval: metav1.Duration{Duration: time.Minute}}}
	if secret != "" {
		repo.Spec.SecretRef = &corev1.LocalObjectReference{Name: secret}
	}
	if err := env.Client.Create(ctx, repo); err != nil {
		t.Fatal(err)
	}
	s := &gitopsv1.Sync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: gitopsv1.SyncSpec{SourceRef: gitopsv1.SourceReference{Name: "app"}, Path: path, Interval: metav1.Duration{Duration: time.Minute}}}
	if err := env.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	return s
}

// applyAsController builds the Sync's path from dir and applies it with
// its labels, recording the inventory, as the Sync controller would.
func applyAsController(t *testing.T, s *gitopsv1.Sync, dir string) {
	t.Helper()
	ctx := context.Background()
	objs, err := build.Build(dir, s.Spec.Path, build.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := apply.Normalize(env.Client.RESTMapper(), objs, s.Namespace, ""); err != nil {
		t.Fatal(err)
	}
	changes, err := (&apply.Applier{Client: env.Client, Owner: inputs.Owner(s)}).Apply(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	s.Status.Inventory = nil
	for _, c := range changes {
		e := c.Entry
		s.Status.Inventory = append(s.Status.Inventory, gitopsv1.InventoryEntry{APIVersion: e.APIVersion, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name})
	}
	if err := env.Client.Status().Update(ctx, s); err != nil {
		t.Fatal(err)
	}
}

const secretYAML = `apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: %s
  stays: unchanging-value-1234
`

func TestDiffMasksSecretsAndExitsLikeKubectl(t *testing.T) {
	ns := newNamespace(t, "diff-secret")
	root := t.TempDir()
	repo := gittest.NewRepo(t, root, "app")
	repo.Commit("one", map[string]string{
		"app/secret.yaml": strings.Replace(secretYAML, "%s", "old-pw-4711", 1),
		"app/cm.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  GREETING: hello\n",
		"app/gone.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gone\n",
	})
	s := newSync(t, ns, repo.URL(), "", "app")
	applyAsController(t, s, repo.Dir)

	// The tree the cluster runs: nothing to do, exit 0.
	code, out, errOut := strata(t, "diff", "sync/app", "-n", ns)
	if code != 0 || !strings.Contains(out, "0 to create, 0 to change, 0 to prune, 3 unchanged") {
		t.Fatalf("diff of the applied tree: exit %d, want 0\n%s%s", code, out, errOut)
	}

	// A commit that changes a Secret: the change shows, its values do not,
	// exit 1.
	repo.Commit("two", map[string]string{
		"app/secret.yaml": strings.Replace(secretYAML, "%s", "new-pw-0815", 1) + "  token: tok-new-9999\n",
		"app/gone.yaml":   "",
	})
	code, out, errOut = strata(t, "diff", "sync/app", "-n", ns)
	if code != 1 {
		t.Fatalf("diff of a change: exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"~ Secret/" + ns + "/creds",
		`data.password: "*** (before)" -> "*** (after)"`,
		`data.token: (none) -> "***"`,
		"- ConfigMap/" + ns + "/gone",
		"0 to create, 1 to change, 1 to prune, 1 unchanged",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"old-pw-4711", "new-pw-0815", "tok-new-9999", "unchanging-value-1234"} {
		b64 := base64.StdEncoding.EncodeToString([]byte(secret))
		if strings.Contains(out+errOut, secret) || strings.Contains(out+errOut, b64) {
			t.Errorf("diff output shows the value %q (or its base64 %s):\n%s%s", secret, b64, out, errOut)
		}
	}
	if strings.Contains(out, "data.stays") {
		t.Errorf("an unchanged Secret key shows as a change:\n%s", out)
	}

	// The same answer as a document (-o json|yaml) and as names (-o name),
	// with the same exit status and no value either.
	for _, format := range []string{"json", "yaml"} {
		code, out, errOut := strata(t, "diff", "sync/app", "-n", ns, "-o", format)
		d := &syncDiff{}
		if err := yaml.Unmarshal([]byte(out), d); code != 1 || err != nil {
			t.Fatalf("diff -o %s: exit %d, %v\n%s%s", format, code, err, out, errOut)
		}
		var got []string
		for _, c := range d.Changes {
			line := c.Action + " " + c.Kind + "/" + c.Name
			for _, f := range c.Fields {
				line += " " + f.Path + "=" + string(f.Before) + ">" + string(f.After)
			}
			got = append(got, line)
		}
		want := []string{`Change Secret/creds data.password="*** (before)">"*** (after)" data.token=>"***"`, "Prune ConfigMap/gone"}
		if d.Kind != "SyncDiff" || d.Sync.Name != "app" || strings.Join(got, "\n") != strings.Join(want, "\n") ||
			d.Summary != (diffSummary{Change: 1, Prune: 1, Unchanged: 1}) {
			t.Errorf("diff -o %s:\n%s\nwant:\n%s\n%+v", format, strings.Join(got, "\n"), strings.Join(want, "\n"), d.Summary)
		}
		for _, secret := range []string{"old-pw-4711", "new-pw-0815", "tok-new-9999", "unchanging-value-1234"} {
			if strings.Contains(out, secret) || strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(secret))) {
				t.Errorf("diff -o %s shows the value %q", format, secret)
			}
		}
	}
	if code, out, errOut := strata(t, "diff", "sync.gitops.strata.dev/app", "-n", ns, "-o", "name"); code != 1 || out != "secret/creds\nconfigmap/gone\n" {
		t.Errorf("diff -o name: exit %d\n%s%s", code, out, errOut)
	}

	// Errors exit above 1.
	if code, out, errOut := strata(t, "diff", "sync/app", "-n", ns, "--path", root+"/no-such-folder"); code <= 1 {
		t.Errorf("diff of a missing working tree: exit %d, want >1\n%s%s", code, out, errOut)
	}
	if code, out, errOut := strata(t, "diff", "sync/app", "-n", ns, "--path", repo.Dir+"/app"); code <= 1 || !strings.Contains(errOut, "build failed") {
		t.Errorf("diff of a path the Sync's path is not in: exit %d, want >1 with a build error\n%s%s", code, out, errOut)
	}
	if code, out, errOut := strata(t, "diff", "sync/missing", "-n", ns); code <= 1 || !strings.Contains(errOut, "cannot read Sync") {
		t.Errorf("diff of a missing Sync: exit %d, want >1\n%s%s", code, out, errOut)
	}
	if code, _, errOut := strata(t, "diff", "deployment/app"); code <= 1 {
		t.Errorf("diff of a non-Sync: exit %d, want >1\n%s", code, errOut)
	}
	if code, _, errOut := strata(t, "diff", "sync/app", "--no-such-flag"); code <= 1 {
		t.Errorf("diff with an unknown flag: exit %d, want >1\n%s", code, errOut)
	}

	// An object that exists and is someone else's: the Sync would be
	// refused (ownership rules of the kit), so diff says so and fails.
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "foreign"}, Data: map[string]string{"owner": "someone"}}
	if err := env.Client.Create(context.Background(), foreign); err != nil {
		t.Fatal(err)
	}
	repo.Commit("three", map[string]string{"app/foreign.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: foreign\ndata:\n  owner: app\n"})
	code, out, errOut = strata(t, "diff", "sync/app", "-n", ns)
	if code <= 1 || !strings.Contains(out, "! ConfigMap/"+ns+"/foreign") || !strings.Contains(errOut, "would be refused") {
		t.Errorf("diff of an object another writer owns: exit %d, want >1 and the refusal\n%s%s", code, out, errOut)
	}
}

func TestDiffOverSSHWithPassphraseProtectedKey(t *testing.T) {
	ns := newNamespace(t, "diff-ssh")
	root := t.TempDir()
	repo := gittest.NewRepo(t, root, "app")
	repo.Commit("one", map[string]string{"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n"})
	srv := gittest.ServeSSH(t, root)
	const passphrase = "correct horse battery"
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "git-ssh"}, Data: map[string][]byte{
		"identity":    gittest.WithPassphrase(t, srv.ClientKey, passphrase),
		"known_hosts": srv.KnownHosts,
		"password":    []byte(passphrase),
	}}
	if err := env.Client.Create(context.Background(), sec); err != nil {
		t.Fatal(err)
	}
	newSync(t, ns, srv.URL("app"), "git-ssh", "app")

	code, out, errOut := strata(t, "diff", "sync/app", "-n", ns)
	if code != 1 || !strings.Contains(out, "+ ConfigMap/"+ns+"/hello") {
		t.Fatalf("diff over SSH with a passphrase-protected key: exit %d, want 1 and the ConfigMap to create\n%s%s", code, out, errOut)
	}

	// Without the passphrase the key cannot be used, as in the controller.
	sec.Data["password"] = nil
	if err := env.Client.Update(context.Background(), sec); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = strata(t, "diff", "sync/app", "-n", ns)
	if code <= 1 || !strings.Contains(errOut, "SSH identity") || strings.Contains(errOut, passphrase) {
		t.Errorf("diff without the passphrase: exit %d, want >1 naming the SSH identity\n%s%s", code, out, errOut)
	}
}

// TestDiffReadsHealthLikeTheController: diff names the objects that are not
// ready now, read by kit/health as the Sync controller and trace read them (a
// Deployment no controller has rolled out is InProgress; a ConfigMap is
// ready), and health alone does not make a diff.
func TestDiffReadsHealthLikeTheController(t *testing.T) {
	ns := newNamespace(t, "diff-health")
	root := t.TempDir()
	repo := gittest.NewRepo(t, root, "app")
	repo.Commit("one", map[string]string{
		"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  GREETING: hello\n",
		"app/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: example.org/web:1}]}
`,
	})
	s := newSync(t, ns, repo.URL(), "", "app")
	applyAsController(t, s, repo.Dir)
	code, out, errOut := strata(t, "diff", "sync/app", "-n", ns)
	if code != 0 {
		t.Fatalf("diff of the applied tree: exit %d, want 0\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"? Deployment/" + ns + "/web InProgress", "0 to create, 0 to change, 0 to prune, 2 unchanged, 1 not ready now"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ConfigMap/"+ns+"/settings") {
		t.Errorf("a ready ConfigMap is listed:\n%s", out)
	}
}

// TestDiffKeepsRolloutSelector: the pod-template-hash key a blue-green
// Rollout put in a Service's selector is what the Sync's next apply keeps
// (inputs.KeepRolloutFields), so `strata diff` does not report it as drift.
func TestDiffKeepsRolloutSelector(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "diff-rollout")
	root := t.TempDir()
	repo := gittest.NewRepo(t, root, "app")
	repo.Commit("one", map[string]string{
		"app/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
	})
	s := newSync(t, ns, repo.URL(), "", "app")
	applyAsController(t, s, repo.Dir)
	rollout := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "web", "namespace": ns},
		"spec":     map[string]any{"selector": map[string]any{"app": "web", deliveryv1.PodTemplateHashLabel: "abc123"}},
	}}
	if err := env.Client.Patch(ctx, rollout, client.Apply, client.FieldOwner(deliveryv1.RolloutFieldManagerPrefix+ns+"/web"), client.ForceOwnership); err != nil { //nolint:staticcheck // unstructured SSA
		t.Fatal(err)
	}
	code, out, errOut := strata(t, "diff", "sync/app", "-n", ns)
	if code != 0 || !strings.Contains(out, "0 to change") {
		t.Fatalf("diff of a Service whose selector a Rollout set: exit %d, want 0 and nothing to change\n%s%s", code, out, errOut)
	}
}
