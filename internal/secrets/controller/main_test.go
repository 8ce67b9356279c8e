package controller

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/egress"
	"github.com/strata-dev/strata/internal/scheme"
	"github.com/strata-dev/strata/internal/secrets/provider/all"
	"github.com/strata-dev/strata/internal/testenv"
)

var (
	env     *testenv.Env
	hook    testenv.RequestHook
	clients *Clients
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, startWithManager))
}

// startWithManager starts the API server and a manager running only the
// external-secrets controllers; it runs until the test binary exits.
func startWithManager() (*testenv.Env, error) {
	ctrl.SetLogger(logr.Discard())
	e, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	// The manager's requests pass through hook (race tests).
	mgr, err := ctrl.NewManager(hook.Hooked(e.Config), ctrl.Options{Scheme: scheme.New(),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		e.Stop()
		return nil, err
	}
	clients = NewClients(all.Constructors, mgr.GetClient(), mgr.GetConfig())
	// 127.0.0.2 stands for a network SecretStores may not reach
	// (TestSecretStoreCannotReachDeniedNetworks); the other tests serve on
	// 127.0.0.1.
	clients.Egress = egress.MustParse("127.0.0.2/32")
	if err := Setup(mgr, Options{Workers: 4, Clients: clients}); err != nil {
		e.Stop()
		return nil, err
	}
	go func() {
		if err := mgr.Start(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "manager stopped: %v\n", err)
		}
	}()
	return e, nil
}

// eventually polls cond every 100ms until it returns true or timeout passes.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

func namespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "es-", Labels: labels}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("cannot create %T %s: %v", o, o.GetName(), err)
		}
	}
}

func fakeStore(ns, name string, data ...secretsv1.FakeProviderData) *secretsv1.SecretStore {
	return &secretsv1.SecretStore{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       secretsv1.SecretStoreSpec{Provider: secretsv1.SecretStoreProvider{Fake: &secretsv1.FakeProvider{Data: data}}},
	}
}

func externalSecret(ns, name, store string, data ...secretsv1.ExternalSecretData) *secretsv1.ExternalSecret {
	return &secretsv1.ExternalSecret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: secretsv1.ExternalSecretSpec{
			SecretStoreRef:  secretsv1.SecretStoreRef{Name: store},
			RefreshInterval: &metav1.Duration{Duration: time.Hour},
			Data:            data,
		},
	}
}

func item(secretKey, key, property string) secretsv1.ExternalSecretData {
	return secretsv1.ExternalSecretData{SecretKey: secretKey, RemoteRef: secretsv1.ExternalSecretDataRemoteRef{Key: key, Property: property}}
}

// ready waits until obj's Ready condition has the status and reason, and
// returns its message.
func ready(t *testing.T, obj interface {
	client.Object
	conditions.Setter
}, status metav1.ConditionStatus, reason string) string {
	t.Helper()
	msg := ""
	eventually(t, fmt.Sprintf("%T %s Ready=%s %s", obj, obj.GetName(), status, reason), func() (bool, string) {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		c := conditions.Get(obj, conditions.Ready)
		if c == nil {
			return false, "no Ready condition"
		}
		msg = c.Message
		return c.Status == status && c.Reason == reason, c.Reason + ": " + c.Message
	})
	return msg
}

func secretData(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	s := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		t.Fatalf("cannot read Secret %s/%s: %v", ns, name, err)
	}
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out
}

// refresh asks for an immediate refresh with the manual annotation.
func refresh(t *testing.T, obj client.Object) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[secretsv1.ReconcileRequestAnnotation] = time.Now().Format(time.RFC3339Nano)
	obj.SetAnnotations(a)
	if err := env.Client.Update(ctx, obj); err != nil {
		t.Fatal(err)
	}
}

// setFake replaces a fake store's data.
func setFake(t *testing.T, st *secretsv1.SecretStore, data ...secretsv1.FakeProviderData) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(st), st); err != nil {
		t.Fatal(err)
	}
	st.Spec.Provider.Fake.Data = data
	if err := env.Client.Update(ctx, st); err != nil {
		t.Fatal(err)
	}
}

// noValueLeaks fails when a value appears in the events of a namespace or
// in the conditions of obj.
func noValueLeaks(t *testing.T, ns string, values ...string) {
	t.Helper()
	var l eventsv1.EventList
	if err := env.Client.List(context.Background(), &l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var cl corev1.EventList
	if err := env.Client.List(context.Background(), &cl, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, e := range l.Items {
		texts = append(texts, e.Note)
	}
	for _, e := range cl.Items {
		texts = append(texts, e.Message)
	}
	var esl secretsv1.ExternalSecretList
	if err := env.Client.List(context.Background(), &esl, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, es := range esl.Items {
		for _, c := range es.Status.Conditions {
			texts = append(texts, c.Message)
		}
	}
	var ssl secretsv1.SecretStoreList
	if err := env.Client.List(context.Background(), &ssl, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, st := range ssl.Items {
		for _, c := range st.Status.Conditions {
			texts = append(texts, c.Message)
		}
	}
	for _, txt := range texts {
		for _, v := range values {
			if strings.Contains(txt, v) {
				t.Errorf("a value appears in %q", txt)
			}
		}
	}
}

func namespaceObj(t *testing.T, name string) *corev1.Namespace {
	t.Helper()
	ns := &corev1.Namespace{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

// event waits for an event with reason about the object named name in ns.
func event(t *testing.T, ns, name, reason string) {
	t.Helper()
	eventually(t, "event "+reason+" on "+name, func() (bool, string) {
		var l eventsv1.EventList
		if err := env.Client.List(context.Background(), &l, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		for _, e := range l.Items {
			if e.Regarding.Name == name && e.Reason == reason {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(l.Items))
	})
}
