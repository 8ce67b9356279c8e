package controller_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/controller"
	"github.com/strata-dev/strata/internal/kubeclient"
	"github.com/strata-dev/strata/internal/scheme"
	"github.com/strata-dev/strata/internal/testenv"
)

var (
	env    *testenv.Env
	hook   testenv.RequestHook
	k      client.Client
	engine *controller.Engine
)

func TestMain(m *testing.M) {
	// The manager's logs are not what these tests look at; without a
	// logger controller-runtime prints a stack trace into the output.
	ctrl.SetLogger(logr.Discard())
	os.Exit(testenv.Main(m, &env, startWithManager))
}

func startWithManager() (*testenv.Env, error) {
	e, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	// The manager's requests pass through hook (race tests).
	mgr, err := ctrl.NewManager(hook.Hooked(e.Config), ctrl.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		e.Stop()
		return nil, err
	}
	if engine, err = controller.SetupEngine(mgr, time.Minute, 4, kubeclient.Limit{}); err != nil {
		e.Stop()
		return nil, err
	}
	go func() {
		if err := mgr.Start(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	k = mgr.GetClient()
	return e, nil
}

func apply(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		t.Fatal(err)
	}
	// A claim or XR kind is served only once the XRD controller has
	// established its CRD, a moment after the XRD is applied: until then
	// the API server (and the client's REST mapper) do not know the kind.
	// When an earlier test removed the XRD and this one applies it again,
	// the REST mapper still knows the kind while the API server serves no
	// such resource until the new CRD is established: an apply, which
	// creates what does not exist, is then answered NotFound.
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = env.Client.Patch(context.Background(), u, client.Apply, client.FieldOwner("test"), client.ForceOwnership)
		if !(meta.IsNoMatchError(err) || apierrors.IsNotFound(err)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return u
}

// eventually polls fn until it returns nil or the bound passes.
func eventually(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, d, err)
}

func get(kind schema.GroupVersionKind, ns, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(kind)
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u)
	return u, err
}

// waitValid waits until Composition name reports Valid=status with a message
// that contains every one of wants.
func waitValid(t *testing.T, what, name, status string, wants ...string) {
	t.Helper()
	eventually(t, 30*time.Second, what, func() error {
		c, err := get(compGVK, "", name)
		if err != nil {
			return err
		}
		s, _, m := condition(c, "Valid")
		if s != status {
			return fmt.Errorf("Valid=%s %q", s, m)
		}
		for _, w := range wants {
			if !strings.Contains(m, w) {
				return fmt.Errorf("Valid=%s %q does not say %q", s, m, w)
			}
		}
		return nil
	})
}

func condition(u *unstructured.Unstructured, typ string) (status, reason, message string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m := c.(map[string]any)
		if m["type"] == typ {
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			msg, _ := m["message"].(string)
			return s, r, msg
		}
	}
	return "", "", ""
}

var (
	claimGVK = schema.GroupVersionKind{Group: "test.strata.dev", Version: "v1alpha1", Kind: "App"}
	xrGVK    = schema.GroupVersionKind{Group: "test.strata.dev", Version: "v1alpha1", Kind: "XApp"}
	cmGVK    = schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	xrdGVK   = v1alpha1.GroupVersion.WithKind("CompositeResourceDefinition")
	compGVK  = v1alpha1.GroupVersion.WithKind("Composition")
)

const xrdYAML = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xapps.test.strata.dev}
spec:
  group: test.strata.dev
  names: {kind: XApp, plural: xapps}
  claimNames: {kind: App, plural: apps}
  connectionSecretKeys: [url]
  versions:
  - name: v1alpha1
    served: true
    referenceable: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [message]
            properties:
              message: {type: string}
              extra: {type: boolean}
          status:
            type: object
            properties:
              url: {type: string}
`

const compYAML = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: app}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XApp}
  resources:
  - name: db
    readyWhen: ['${db.data.?ready.orValue("") == "yes"}']
    template:
      apiVersion: v1
      kind: ConfigMap
      data: {message: "${xr.spec.message}"}
  - name: web
    template:
      apiVersion: v1
      kind: ConfigMap
      data:
        dbName: ${db.metadata.name}
        message: "web says ${xr.spec.message}"
  - name: creds
    template: {apiVersion: v1, kind: Secret, stringData: {user: "${xr.metadata.name}"}}
  - name: extra
    includeWhen: ["${has(xr.spec.extra) && xr.spec.extra}"]
    template: {apiVersion: v1, kind: ConfigMap, data: {x: "1"}}
  status:
    url: "http://${web.metadata.name}"
  connectionDetails:
    url: "http://${web.metadata.name}"
`

func TestClaimLifecycle(t *testing.T) {
	ctx := context.Background()
	apply(t, xrdYAML)
	eventually(t, 30*time.Second, "XRD established and offered", func() error {
		x, err := get(xrdGVK, "", "xapps.test.strata.dev")
		if err != nil {
			return err
		}
		for _, c := range []string{"Established", "Offered", "Ready"} {
			if s, _, m := condition(x, c); s != "True" {
				return fmt.Errorf("%s=%s %s", c, s, m)
			}
		}
		return nil
	})
	apply(t, compYAML)
	waitValid(t, "composition valid", "app", "True")
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1ObjectMeta("team-a")}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	created := apply(t, `
apiVersion: test.strata.dev/v1alpha1
kind: App
metadata: {name: shop, namespace: team-a}
spec:
  message: hello
  writeConnectionSecretToRef: {name: shop-conn}
`)
	// The claim reads as in progress from the start (its kind's default
	// status), before the controller has written anything, so kstatus
	// (kubectl wait, a Sync's health check) never takes it for done.
	if s, r, _ := condition(created, "Ready"); s != "False" || r != "Creating" {
		t.Errorf("new claim: Ready=%s %s, want False Creating", s, r)
	}
	if res, err := kstatus.Compute(created); err != nil || res.Status != kstatus.InProgressStatus {
		t.Errorf("new claim: kstatus %v %v, want InProgress", res, err)
	}
	xrName := controller.XRName("team-a", "shop")
	// db is created first and web waits for it.
	eventually(t, 30*time.Second, "claim waits for db", func() error {
		c, err := get(claimGVK, "team-a", "shop")
		if err != nil {
			return err
		}
		if s, r, m := condition(c, "Ready"); s != "False" || r != "Creating" || !strings.Contains(m, "waiting for: db (not ready), web (waiting for db)") {
			return fmt.Errorf("Ready=%s %s %q", s, r, m)
		}
		return nil
	})
	db, err := get(cmGVK, "team-a", xrName+"-db")
	if err != nil {
		t.Fatalf("db ConfigMap: %v", err)
	}
	if db.GetLabels()["strata.dev/claim-name"] != "shop" || db.GetLabels()["strata.dev/resource-name"] != "db" || db.GetOwnerReferences()[0].Name != xrName {
		t.Errorf("db labels/owner: %v %v", db.GetLabels(), db.GetOwnerReferences())
	}
	if _, err := get(cmGVK, "team-a", xrName+"-web"); !apierrors.IsNotFound(err) {
		t.Fatalf("web must not exist before db is ready: %v", err)
	}
	// db becomes ready: web is created and the claim becomes Ready.
	apply(t, fmt.Sprintf("{apiVersion: v1, kind: ConfigMap, metadata: {name: %s-db, namespace: team-a}, data: {ready: 'yes'}}", xrName))
	eventually(t, 30*time.Second, "claim ready", func() error {
		c, err := get(claimGVK, "team-a", "shop")
		if err != nil {
			return err
		}
		if s, r, m := condition(c, "Ready"); s != "True" {
			return fmt.Errorf("Ready=%s %s %q", s, r, m)
		}
		if url, _, _ := unstructured.NestedString(c.Object, "status", "url"); url != "http://"+xrName+"-web" {
			return fmt.Errorf("status.url = %q", url)
		}
		return nil
	})
	web, err := get(cmGVK, "team-a", xrName+"-web")
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := unstructured.NestedString(web.Object, "data", "dbName"); got != xrName+"-db" {
		t.Errorf("web dbName = %q", got)
	}
	sec := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "shop-conn"}, sec); err != nil {
		t.Fatalf("connection secret: %v", err)
	}
	if string(sec.Data["url"]) != "http://"+xrName+"-web" {
		t.Errorf("secret url = %q", sec.Data["url"])
	}

	// Drift is corrected.
	apply(t, fmt.Sprintf("{apiVersion: v1, kind: ConfigMap, metadata: {name: %s-web, namespace: team-a}, data: {message: drifted}}", xrName))
	eventually(t, 30*time.Second, "drift corrected", func() error {
		w, err := get(cmGVK, "team-a", xrName+"-web")
		if err != nil {
			return err
		}
		if m, _, _ := unstructured.NestedString(w.Object, "data", "message"); m != "web says hello" {
			return fmt.Errorf("message = %q", m)
		}
		return nil
	})

	// The connection Secret is not mistaken for a composed Secret and pruned.
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "shop-conn"}, sec); err != nil {
		t.Fatalf("connection secret after more reconciles: %v", err)
	}
	if _, err := get(schema.GroupVersionKind{Version: "v1", Kind: "Secret"}, "team-a", xrName+"-creds"); err != nil {
		t.Fatalf("composed Secret: %v", err)
	}

	// A change of the claim reaches the composed resources; includeWhen adds one.
	apply(t, `
apiVersion: test.strata.dev/v1alpha1
kind: App
metadata: {name: shop, namespace: team-a}
spec:
  message: bye
  extra: true
  writeConnectionSecretToRef: {name: shop-conn}
`)
	eventually(t, 30*time.Second, "change applied", func() error {
		w, err := get(cmGVK, "team-a", xrName+"-web")
		if err != nil {
			return err
		}
		if m, _, _ := unstructured.NestedString(w.Object, "data", "message"); m != "web says bye" {
			return fmt.Errorf("message = %q", m)
		}
		_, err = get(cmGVK, "team-a", xrName+"-extra")
		return err
	})
	// includeWhen turning false deletes the resource.
	apply(t, `
apiVersion: test.strata.dev/v1alpha1
kind: App
metadata: {name: shop, namespace: team-a}
spec:
  message: bye
  extra: false
  writeConnectionSecretToRef: {name: shop-conn}
`)
	eventually(t, 30*time.Second, "excluded resource deleted", func() error {
		if _, err := get(cmGVK, "team-a", xrName+"-extra"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("extra still there: %v", err)
		}
		return nil
	})

	// Deleting the XRD is refused while the claim exists.
	x, _ := get(xrdGVK, "", "xapps.test.strata.dev")
	if err := env.Client.Delete(ctx, x); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "XRD deletion refused", func() error {
		x, err := get(xrdGVK, "", "xapps.test.strata.dev")
		if err != nil {
			return err
		}
		if _, r, m := condition(x, "Ready"); r != "Terminating" || !strings.Contains(m, "App/team-a/shop") {
			return fmt.Errorf("Ready %s %q", r, m)
		}
		return nil
	})

	// Deleting the claim deletes the XR and every composed resource.
	claim, _ := get(claimGVK, "team-a", "shop")
	if err := env.Client.Delete(ctx, claim); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "everything deleted", func() error {
		for _, n := range []string{"-db", "-web"} {
			if _, err := get(cmGVK, "team-a", xrName+n); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%s still there: %v", n, err)
			}
		}
		if _, err := get(xrGVK, "", xrName); !apierrors.IsNotFound(err) {
			return fmt.Errorf("XR still there: %v", err)
		}
		if _, err := get(claimGVK, "team-a", "shop"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("claim still there: %v", err)
		}
		return nil
	})
	eventually(t, 30*time.Second, "XRD and its CRDs gone", func() error {
		if _, err := get(xrdGVK, "", "xapps.test.strata.dev"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("XRD still there: %v", err)
		}
		return nil
	})
}
