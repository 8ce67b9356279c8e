package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-dev/strata/internal/install"
	"github.com/strata-dev/strata/internal/testenv"
)

// kubectl runs bin/kubectl against the package's API server (KUBECONFIG)
// with stdin, and returns its exit status and output.
func kubectl(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	bin := filepath.Join(testenv.BinDir(), "kubectl")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("kubectl not found in %s: run `make tools`", testenv.BinDir())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return code, out.String(), errOut.String()
}

// TestInstallExportThroughKubectl pipes `strata install --export` into the
// real kubectl, as a user would: the API server accepts every object on a
// server-side dry run, `kubectl apply -f -` creates them (CRDs, RBAC,
// Deployment, Services, PDB, NetworkPolicy), a second apply changes nothing,
// and the installed RBAC grants the ServiceAccount its subsystems' rights
// and not more.
func TestInstallExportThroughKubectl(t *testing.T) {
	ctx := context.Background()
	const ns = "strata-kubectl"
	// --lockdown: without the full-rights role aggregated into
	// strata:reconciler, the ServiceAccount's rights are exactly its
	// subsystems' (the API server has no aggregation controller to show
	// the difference otherwise).
	code, manifests, errOut := strata(t, "install", "--export", "-n", ns, "--image", "example.test/strata:v1", "--lockdown")
	if code != 0 {
		t.Fatalf("install --export: exit %d: %s", code, errOut)
	}
	objs, err := install.Objects(install.Options{Namespace: ns, Image: "example.test/strata:v1", Lockdown: true})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, o := range objs {
		kinds[o.GetKind()] = true
	}
	for _, k := range []string{"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
		"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"} {
		if !kinds[k] {
			t.Errorf("the export has no %s", k)
		}
	}

	// The default export (with the full-rights reconciler role) on a
	// server-side dry run; into a namespace that exists, as a dry run does
	// not create the namespace the other objects go into.
	code, dryExport, errOut := strata(t, "install", "--export", "-n", "default")
	if code != 0 {
		t.Fatalf("install --export -n default: exit %d: %s", code, errOut)
	}
	if code, out, errOut := kubectl(t, dryExport, "apply", "--dry-run=server", "-f", "-"); code != 0 {
		t.Fatalf("kubectl apply --dry-run=server: exit %d\n%s%s", code, out, errOut)
	}

	t.Cleanup(func() {
		if code, out, errOut := strata(t, "uninstall", "-n", ns, "--force", "--keep-crds"); code != 0 {
			t.Errorf("uninstall: exit %d\n%s%s", code, out, errOut)
		}
	})
	code, out, errOut := kubectl(t, manifests, "apply", "-f", "-")
	if code != 0 {
		t.Fatalf("kubectl apply: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"namespace/" + ns + " created", "serviceaccount/strata-manager created", "clusterrole.rbac.authorization.k8s.io/strata:gitops created",
		"clusterrolebinding.rbac.authorization.k8s.io/strata:gitops created", "deployment.apps/strata-manager created", "networkpolicy.networking.k8s.io/strata-manager created",
		"customresourcedefinition.apiextensions.k8s.io/syncs.gitops.strata.dev "} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply did not say %q:\n%s", want, out)
		}
	}
	if n := strings.Count(strings.TrimSpace(out), "\n") + 1; n != len(objs) {
		t.Errorf("kubectl applied %d objects, the export has %d:\n%s", n, len(objs), out)
	}
	// Every object is there, as kubectl reads the same manifests back.
	code, out, errOut = kubectl(t, manifests, "get", "-f", "-", "-o", "name")
	if code != 0 || strings.Count(strings.TrimSpace(out), "\n")+1 != len(objs) {
		t.Errorf("kubectl get -f -: exit %d, %d names for %d objects\n%s%s", code, strings.Count(out, "\n"), len(objs), out, errOut)
	}
	crds := apiextensionsclient.NewForConfigOrDie(env.Config).ApiextensionsV1().CustomResourceDefinitions()
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		crd, err := crds.Get(ctx, o.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		established := false
		for _, c := range crd.Status.Conditions {
			established = established || (c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue)
		}
		if !established {
			t.Errorf("CRD %s is not Established", crd.Name)
		}
	}
	// A second apply changes nothing: no object is written again (kubectl
	// says "configured" for the PodDisruptionBudget all the same, as its
	// selector's patch strategy is "replace"; the resourceVersions show
	// that nothing changed).
	versions := func() string {
		t.Helper()
		code, out, errOut := kubectl(t, manifests, "get", "-f", "-", "-o", `jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion}{"\n"}{end}`)
		if code != 0 {
			t.Fatalf("kubectl get: exit %d %s", code, errOut)
		}
		return out
	}
	before := versions()
	if strings.Count(before, "=") != len(objs) {
		t.Fatalf("resourceVersions of %d objects:\n%s", len(objs), before)
	}
	code, out, errOut = kubectl(t, manifests, "apply", "-f", "-")
	if code != 0 || strings.Contains(out, " created") {
		t.Errorf("second kubectl apply: exit %d\n%s%s", code, out, errOut)
	}
	if after := versions(); after != before {
		t.Errorf("a second kubectl apply changed objects:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The RBAC that came with it: the ServiceAccount has its subsystems'
	// rights, and not cluster-admin's.
	sa := "system:serviceaccount:" + ns + ":" + install.ServiceAccount
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "syncs.gitops.strata.dev", "--all-namespaces"}, "yes"},
		{[]string{"update", "syncs.gitops.strata.dev/status", "-n", "team"}, "yes"},
		{[]string{"create", "leases.coordination.k8s.io", "-n", ns}, "yes"},
		{[]string{"create", "clusterrolebindings"}, "no"},
		{[]string{"delete", "namespaces"}, "no"},
		{[]string{"create", "leases.coordination.k8s.io", "-n", "kube-system"}, "no"},
	} {
		_, out, errOut := kubectl(t, "", append([]string{"auth", "can-i", "--as", sa}, c.args...)...)
		if strings.TrimSpace(out) != c.want {
			t.Errorf("kubectl auth can-i %s as the ServiceAccount: %q, want %q %s", strings.Join(c.args, " "), strings.TrimSpace(out), c.want, errOut)
		}
	}
}
