package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/testenv"
)

// waitForOutput polls a kubectl query until its output contains want.
func waitForOutput(t *testing.T, dir string, d time.Duration, want string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(d)
	var out string
	for time.Now().Before(deadline) {
		out, _ = kubectlErr(dir, args...)
		if strings.Contains(out, want) {
			return out
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("kubectl %s: no %q within %s; last output:\n%s", strings.Join(args, " "), want, d, out)
	return ""
}

func TestCompositionWebApp(t *testing.T) {
	parallel(t)
	dir := t.TempDir()
	startUp(t, dir)
	root := testenv.RepoRoot()

	// Publish the XRD and the Composition.
	kubectl(t, dir, "apply", "-f", filepath.Join(root, "compositions", "webapp"))
	kubectl(t, dir, "wait", "--for=condition=Established", "--timeout=60s", "compositeresourcedefinition/xwebapps.platform.strata.dev")
	kubectl(t, dir, "wait", "--for=condition=Offered", "--timeout=60s", "compositeresourcedefinition/xwebapps.platform.strata.dev")
	kubectl(t, dir, "wait", "--for=condition=Valid", "--timeout=60s", "composition/webapp")

	// Claim it and wait until it is Ready.
	kubectl(t, dir, "apply", "-f", filepath.Join(root, "examples", "webapp", "claim.yaml"))
	kubectl(t, dir, "wait", "--for=condition=Ready", "--timeout=180s", "-n", "default", "webapp/shop")

	// The composed objects exist with the claim's values, and the connection secret.
	if got := kubectl(t, dir, "get", "deployment", "shop", "-n", "default", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.metadata.labels.strata\\.dev/claim-name}"); got != "2 nginx:1.27 shop" {
		t.Errorf("deployment = %q", got)
	}
	kubectl(t, dir, "get", "service", "shop", "-n", "default")
	cm := kubectl(t, dir, "get", "configmap", "-n", "default", "-l", "strata.dev/claim-name=shop,strata.dev/resource-name=config", "-o", "jsonpath={.items[0].data.GREETING}")
	if cm != "hello" {
		t.Errorf("config GREETING = %q", cm)
	}
	if got := kubectl(t, dir, "get", "secret", "shop-connection", "-n", "default", "-o", "jsonpath={.data.url}"); got == "" {
		t.Error("connection secret has no url")
	}
	if _, err := kubectlErr(dir, "get", "hpa", "shop", "-n", "default"); err == nil {
		t.Error("autoscaler exists although autoscaling is off")
	}
	if got := kubectl(t, dir, "get", "webapp", "shop", "-n", "default"); !strings.Contains(got, "SYNCED") || !strings.Contains(got, "CONNECTION-SECRET") || !strings.Contains(got, "shop-connection") {
		t.Errorf("kubectl get webapp:\n%s", got)
	}
	// Events tell what happened, on the claim and on its XR.
	if d := kubectl(t, dir, "describe", "webapp", "shop", "-n", "default"); !strings.Contains(d, "BindCompositeResource") {
		t.Errorf("kubectl describe webapp shows no BindCompositeResource event:\n%s", d)
	}
	xrName := strings.TrimSpace(kubectl(t, dir, "get", "webapp", "shop", "-n", "default", "-o", "jsonpath={.status.resourceRef.name}"))
	xrDesc := kubectl(t, dir, "describe", "xwebapp", xrName)
	// The claim chooses the XR's composition when it creates the XR (one
	// request, no SelectComposition event); describe shows the choice and
	// the composed resources.
	for _, want := range []string{"Composition Revision Ref", "webapp-", "Available", "PublishConnectionSecret", "Deployment"} {
		if !strings.Contains(xrDesc, want) {
			t.Errorf("kubectl describe xwebapp does not show %s:\n%s", want, xrDesc)
		}
	}
	out, err := strata(t, "trace", "webapp/shop", "-n", "default", "--kubeconfig", filepath.Join(dir, "kubeconfig"))
	if err != nil || !strings.Contains(out, "XWebApp/shop-") || !strings.Contains(out, "Deployment/shop") || !strings.Contains(out, "Service/shop") {
		t.Errorf("strata trace: %v\n%s", err, out)
	}

	// A change of the claim reaches the composed objects.
	kubectl(t, dir, "patch", "webapp", "shop", "-n", "default", "--type=merge", "-p", `{"spec":{"replicas":3,"autoscaling":{"enabled":true}}}`)
	waitForOutput(t, dir, time.Minute, "3", "get", "deployment", "shop", "-n", "default", "-o", "jsonpath={.spec.replicas}")
	waitForOutput(t, dir, time.Minute, "shop", "get", "hpa", "shop", "-n", "default", "-o", "name")
	kubectl(t, dir, "wait", "--for=condition=Ready", "--timeout=180s", "-n", "default", "webapp/shop")

	// Deleting the claim deletes every composed object.
	kubectl(t, dir, "delete", "webapp", "shop", "-n", "default", "--timeout=120s")
	for _, kind := range []string{"deployment", "service", "hpa", "configmap", "secret"} {
		out := kubectl(t, dir, "get", kind, "-n", "default", "-l", "strata.dev/claim-name=shop", "-o", "name")
		if strings.TrimSpace(out) != "" {
			t.Errorf("%s left after deleting the claim: %s", kind, out)
		}
	}
	if out := kubectl(t, dir, "get", "xwebapps", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("composite left: %s", out)
	}

	// A Composition with a bad expression: describe names field and expression.
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(broken, []byte(`apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: webapp-broken}
spec:
  compositeTypeRef: {apiVersion: platform.strata.dev/v1alpha1, kind: XWebApp}
  resources:
  - name: config
    template:
      apiVersion: v1
      kind: ConfigMap
      data: {image: "${xr.spec.imagee}"}
---
apiVersion: platform.strata.dev/v1alpha1
kind: WebApp
metadata: {name: broken, namespace: default}
spec:
  image: nginx
  compositionRef: {name: webapp-broken}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl(t, dir, "apply", "-f", broken)
	waitForOutput(t, dir, time.Minute, "False", "get", "composition", "webapp-broken", "-o", "jsonpath={.status.conditions[?(@.type=='Valid')].status}")
	desc := waitForOutput(t, dir, time.Minute, "template.data.image", "describe", "webapp", "broken", "-n", "default")
	for _, want := range []string{"CompositionInvalid", `xr.spec.imagee`, "undefined field 'imagee'"} {
		if !strings.Contains(desc, want) {
			t.Errorf("kubectl describe does not show %q:\n%s", want, desc)
		}
	}
	kubectl(t, dir, "delete", "-f", broken, "--timeout=60s")
}

func TestCompositionTeamNamespace(t *testing.T) {
	parallel(t)
	dir := t.TempDir()
	startUp(t, dir)
	root := testenv.RepoRoot()
	kubectl(t, dir, "apply", "-f", filepath.Join(root, "compositions", "team-namespace"))
	kubectl(t, dir, "wait", "--for=condition=Offered", "--timeout=60s", "compositeresourcedefinition/xteamenvironments.platform.strata.dev")
	kubectl(t, dir, "wait", "--for=condition=Valid", "--timeout=60s", "composition/team-namespace")
	kubectl(t, dir, "apply", "-f", filepath.Join(root, "examples", "team-namespace", "claim.yaml"))
	kubectl(t, dir, "wait", "--for=condition=Ready", "--timeout=120s", "-n", "default", "teamenvironment/payments")
	if got := kubectl(t, dir, "get", "rolebindings", "-n", "team-payments", "-o", "name"); !strings.Contains(got, "member-alice-at-example-com") || !strings.Contains(got, "member-bob-at-example-com") {
		t.Errorf("rolebindings:\n%s", got)
	}
	kubectl(t, dir, "get", "resourcequota", "team-quota", "-n", "team-payments")
	kubectl(t, dir, "get", "networkpolicy", "same-namespace-only", "-n", "team-payments")
	if got := kubectl(t, dir, "get", "teamenvironment", "payments", "-n", "default", "-o", "jsonpath={.status.namespace} {.status.members}"); got != "team-payments 2" {
		t.Errorf("status = %q", got)
	}
	// Removing a member removes its RoleBinding.
	kubectl(t, dir, "patch", "teamenvironment", "payments", "-n", "default", "--type=merge", "-p", `{"spec":{"members":["alice@example.com"]}}`)
	deadline := time.Now().Add(time.Minute)
	for {
		got := kubectl(t, dir, "get", "rolebindings", "-n", "team-payments", "-o", "name")
		if !strings.Contains(got, "bob") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's RoleBinding was not removed:\n%s", got)
		}
		time.Sleep(250 * time.Millisecond)
	}
	kubectl(t, dir, "delete", "teamenvironment", "payments", "-n", "default", "--timeout=120s")
}
