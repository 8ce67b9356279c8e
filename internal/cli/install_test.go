package cli

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/install"
	"github.com/strata-dev/strata/internal/manager"
)

// TestEverySubsystemHasRules fails when a subsystem is added to the manager
// without its RBAC in internal/install/rbac.go.
func TestEverySubsystemHasRules(t *testing.T) {
	for _, s := range manager.Subsystems() {
		if _, ok := install.SubsystemRules[s.Name]; !ok {
			t.Errorf("subsystem %q has no entry in install.SubsystemRules (internal/install/rbac.go)", s.Name)
		}
	}
}

// TestInstallExport reads `strata install --export` as kubectl would.
func TestInstallExport(t *testing.T) {
	code, out, errOut := strata(t, "install", "--export", "--subsystems", "gitops,provider-nop", "--registry", "registry.example/team", "--version", "v1.2.3", "-n", "platform")
	if code != 0 {
		t.Fatalf("install --export: exit %d: %s", code, errOut)
	}
	byKey := map[string]*unstructured.Unstructured{}
	for _, doc := range strings.Split(out, "---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		byKey[u.GetKind()+"/"+u.GetName()] = u
	}
	for _, want := range []string{
		"Namespace/platform", "ServiceAccount/strata-manager", "CustomResourceDefinition/syncs.gitops.strata.dev",
		"ClusterRole/strata:gitops", "ClusterRoleBinding/strata:gitops", "ClusterRole/strata:provider-nop",
		"ClusterRole/strata-view", "ClusterRole/strata-edit", "ClusterRole/strata-admin", "ClusterRole/strata:reconciler",
		"Role/strata:leader-election", "Deployment/strata-manager", "Service/strata-metrics", "Service/strata-webhook-receiver",
		"PodDisruptionBudget/strata-manager", "NetworkPolicy/strata-manager",
	} {
		if byKey[want] == nil {
			t.Errorf("export lacks %s", want)
		}
	}
	if byKey["ClusterRole/strata:composition"] != nil {
		t.Error("export has the composition subsystem's RBAC although --subsystems left it out")
	}
	for _, level := range []string{"view", "edit", "admin"} {
		if r := byKey["ClusterRole/strata-"+level]; r != nil && r.GetLabels()["rbac.authorization.k8s.io/aggregate-to-"+level] != "true" {
			t.Errorf("strata-%s is not aggregated into %s: %v", level, level, r.GetLabels())
		}
	}
	d := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(byKey["Deployment/strata-manager"].Object, d); err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	sc := c.SecurityContext
	switch {
	case d.Namespace != "platform" || *d.Spec.Replicas != 2:
		t.Errorf("deployment %s replicas %d", d.Namespace, *d.Spec.Replicas)
	case c.Image != "registry.example/team/strata:v1.2.3":
		t.Errorf("image %s", c.Image)
	case sc == nil || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || !*sc.RunAsNonRoot || sc.Capabilities.Drop[0] != "ALL":
		t.Errorf("container security context is not restricted: %+v", sc)
	case c.LivenessProbe == nil || c.ReadinessProbe == nil || c.Resources.Requests.Cpu().IsZero():
		t.Error("no probes or requests")
	case !strings.Contains(strings.Join(c.Args, " "), "--leader-elect --leader-election-namespace=platform") ||
		!strings.Contains(strings.Join(c.Args, " "), "--subsystems=gitops,provider-nop"):
		t.Errorf("args %v", c.Args)
	}
	b := &rbacv1.ClusterRoleBinding{}
	_ = runtime.DefaultUnstructuredConverter.FromUnstructured(byKey["ClusterRoleBinding/strata:gitops"].Object, b)
	if len(b.Subjects) != 1 || b.Subjects[0].Namespace != "platform" || b.Subjects[0].Name != install.ServiceAccount {
		t.Errorf("binding subjects %+v", b.Subjects)
	}
	if code, _, errOut := strata(t, "install", "--export", "--subsystems", "nope"); code != 2 || !strings.Contains(errOut, `unknown subsystem "nope"`) {
		t.Errorf("unknown subsystem: exit %d, %s", code, errOut)
	}
}

// TestCheckReportsMissingCRD deletes one CRD: strata check names it and
// exits 1.
func TestCheckReportsMissingCRD(t *testing.T) {
	ctx := context.Background()
	const name = "grants.mysql.sql.strata.dev"
	crds := apiextensionsclient.NewForConfigOrDie(env.Config).ApiextensionsV1().CustomResourceDefinitions()
	gone := func() error {
		if _, err := crds.Get(ctx, name, metav1.GetOptions{}); err == nil {
			return os.ErrExist
		}
		return nil
	}
	if err := crds.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		poll(t, "CRD "+name+" gone", gone)
		if _, err := install.CRDs(ctx, env.Config); err != nil {
			t.Error(err)
		}
	})
	poll(t, "CRD "+name+" deleted", gone)
	code, out, errOut := strata(t, "check")
	if code != 1 {
		t.Errorf("check: exit %d, want 1\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "✗ crd "+name+": not installed") {
		t.Errorf("check does not name the missing CRD:\n%s", out)
	}
	if !strings.Contains(out, "✔ kubernetes v") {
		t.Errorf("check does not report the Kubernetes version:\n%s", out)
	}
	if !strings.Contains(out, "✔ approval gate: 3 admission policies installed and bound") {
		t.Errorf("check does not report the approval gate:\n%s", out)
	}
	if code, out, _ := strata(t, "check", "--pre"); code != 0 || !strings.Contains(out, "you may create customresourcedefinitions") ||
		!strings.Contains(out, "you may create validatingadmissionpolicies") {
		t.Errorf("check --pre as admin: exit %d\n%s", code, out)
	}
}

func gitSync(t *testing.T, name, url, path string) {
	t.Helper()
	ctx := context.Background()
	repo := &gitopsv1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: gitopsv1.GitRepositorySpec{URL: url, Interval: metav1.Duration{Duration: time.Hour}, Ref: &gitopsv1.GitRepositoryRef{Branch: "main"}}}
	s := &gitopsv1.Sync{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: gitopsv1.SyncSpec{SourceRef: gitopsv1.SourceReference{Name: name}, Path: path, Interval: metav1.Duration{Duration: time.Hour}, Prune: gitopsv1.PruneEnabled}}
	for _, o := range []client.Object{repo, s} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = env.Client.Delete(ctx, s)
		_ = env.Client.Delete(ctx, repo)
	})
}

// TestReconcileSuspendEventsAndCompletion drives a Sync with the commands a
// user runs: completion lists it, reconcile --with-source returns after a
// new commit is applied, suspend and resume flip spec.suspend, events shows
// what the controller did, and a Sync that cannot be Ready exits 1.
func TestReconcileSuspendEventsAndCompletion(t *testing.T) {
	ctx := context.Background()
	repo := gittest.NewRepo(t, t.TempDir(), "cli-reconcile")
	repo.Commit("one", map[string]string{"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cli-reconcile}\ndata: {v: one}\n"})
	gitSync(t, "cli-reconcile", repo.URL(), "app")
	gitSync(t, "cli-broken", repo.URL(), "missing")
	poll(t, "first revision applied", func() error {
		cm := &corev1.ConfigMap{}
		return env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "cli-reconcile"}, cm)
	})

	// Completion of names from the cluster, and of kinds.
	code, out, errOut := strata(t, "__complete", "reconcile", "sync/cli-")
	if code != 0 || !strings.Contains(out, "sync/cli-reconcile\n") || !strings.Contains(out, "sync/cli-broken\n") {
		t.Errorf("completion of sync/cli-: exit %d\n%s%s", code, out, errOut)
	}
	if _, out, _ := strata(t, "__complete", "suspend", "sy"); !strings.Contains(out, "sync/\n") {
		t.Errorf("completion of kinds:\n%s", out)
	}
	if _, out, _ := strata(t, "__complete", "events", "-n", ""); !strings.Contains(out, "kube-system\n") {
		t.Errorf("completion of namespaces:\n%s", out)
	}

	// A new commit is fetched and applied by reconcile --with-source.
	rev := repo.Commit("two", map[string]string{"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cli-reconcile}\ndata: {v: two}\n"})
	code, out, errOut = strata(t, "reconcile", "sync/cli-reconcile", "--with-source")
	if code != 0 || !strings.Contains(out, "✔ Sync default/cli-reconcile revision main@sha1:"+rev) {
		t.Errorf("reconcile --with-source: exit %d\n%s%s", code, out, errOut)
	}
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "cli-reconcile"}, cm); err != nil || cm.Data["v"] != "two" {
		t.Errorf("after reconcile returned, the ConfigMap is %v (%v), want v=two", cm.Data, err)
	}

	// Not Ready: exit 1.
	code, out, errOut = strata(t, "reconcile", "sync/cli-broken")
	if code != 1 || !strings.Contains(out, "✗ Sync default/cli-broken") {
		t.Errorf("reconcile of a broken Sync: exit %d (want 1)\n%s%s", code, out, errOut)
	}

	// Suspend and resume.
	for _, c := range []struct {
		verb string
		want bool
	}{{"suspend", true}, {"resume", false}} {
		code, out, errOut := strata(t, c.verb, "sync/cli-reconcile")
		s := &gitopsv1.Sync{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "cli-reconcile"}, s); err != nil {
			t.Fatal(err)
		}
		if code != 0 || s.Spec.Suspend != c.want {
			t.Errorf("%s: exit %d, suspend=%v\n%s%s", c.verb, code, s.Spec.Suspend, out, errOut)
		}
	}
	if code, _, errOut := strata(t, "suspend", "configmap/cli-reconcile"); code != 2 || !strings.Contains(errOut, "has no spec.suspend") {
		t.Errorf("suspend of a ConfigMap: exit %d %s", code, errOut)
	}

	// Events of the Sync.
	poll(t, "events of the Sync", func() error {
		_, out, _ := strata(t, "events", "sync/cli-reconcile")
		if !strings.Contains(out, "sync/cli-reconcile") {
			return os.ErrNotExist
		}
		return nil
	})
	code, out, _ = strata(t, "events", "-o", "json")
	var list struct{ Items []corev1.Event }
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list.Items) == 0 {
		t.Errorf("events -o json: exit %d, %v, %d items", code, err, len(list.Items))
	}

	// uninstall refuses while Syncs exist, naming them.
	code, _, errOut = strata(t, "uninstall")
	if code != 1 || !strings.Contains(errOut, "Sync default/cli-reconcile") {
		t.Errorf("uninstall with Syncs: exit %d\n%s", code, errOut)
	}
}

// TestVersion prints client and API server versions as JSON.
func TestVersion(t *testing.T) {
	code, out, errOut := strata(t, "version", "-o", "json")
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil {
		t.Fatalf("version -o json: exit %d %v\n%s%s", code, err, out, errOut)
	}
	if v.Client.Version != Version || !strings.HasPrefix(v.APIServer, "v1.") {
		t.Errorf("version: %+v", v)
	}
	if code, out, _ := strata(t, "version", "--client", "--kubeconfig", "/nonexistent"); code != 0 || !strings.HasPrefix(out, "client: ") || strings.Contains(out, "api server") {
		t.Errorf("version --client: exit %d\n%s", code, out)
	}
}

// TestExitCodes: errors exit above 1, so scripts can tell them from "no".
func TestExitCodes(t *testing.T) {
	if code, _, _ := strata(t, "install", "--no-such-flag"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	if code, _, _ := strata(t, "reconcile", "sync/does-not-exist"); code != 2 {
		t.Errorf("reconcile of a missing object: exit %d, want 2", code)
	}
	if code, _, _ := strata(t, "version", "--client"); code != 0 {
		t.Errorf("version --client: exit %d", code)
	}
}

// TestInstallAndUninstall applies the install twice (server-side apply is
// idempotent) and removes it with --force --keep-crds.
func TestInstallAndUninstall(t *testing.T) {
	ctx := context.Background()
	const ns = "strata-cli-install"
	for i := 0; i < 2; i++ {
		code, out, errOut := strata(t, "install", "-n", ns, "--lockdown", "--image", "example.test/strata:v1")
		if code != 0 || !strings.Contains(out, "into namespace "+ns+" (image example.test/strata:v1)") {
			t.Fatalf("install #%d: exit %d\n%s%s", i+1, code, out, errOut)
		}
	}
	d := &appsv1.Deployment{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: install.ManagerName}, d); err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != "example.test/strata:v1" {
		t.Errorf("image %s", got)
	}
	if code, out, _ := strata(t, "version", "--manager-namespace", ns); code != 0 || !strings.Contains(out, "manager: "+Version+" (example.test/strata:v1)") {
		t.Errorf("version: exit %d\n%s", code, out)
	}
	code, out, errOut := strata(t, "uninstall", "-n", ns, "--force", "--keep-crds")
	if code != 0 || !strings.Contains(out, "deleted ") {
		t.Fatalf("uninstall: exit %d\n%s%s", code, out, errOut)
	}
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: install.ManagerName}, &appsv1.Deployment{})
	if err == nil {
		t.Error("the manager Deployment is still there")
	}
	crds := apiextensionsclient.NewForConfigOrDie(env.Config).ApiextensionsV1().CustomResourceDefinitions()
	if _, err := crds.Get(ctx, "syncs.gitops.strata.dev", metav1.GetOptions{}); err != nil {
		t.Errorf("--keep-crds deleted the CRDs: %v", err)
	}
	vap := &unstructured.Unstructured{}
	vap.SetAPIVersion("admissionregistration.k8s.io/v1")
	vap.SetKind("ValidatingAdmissionPolicyBinding")
	if err := env.Client.Get(ctx, client.ObjectKey{Name: install.ApprovalPolicyName}, vap); err != nil {
		t.Errorf("--keep-crds deleted the approval gate's admission policy: %v", err)
	}
}
