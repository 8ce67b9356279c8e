package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/scheme"
	"github.com/strata-dev/strata/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	os.Exit(testenv.Main(m, &env, testenv.Start))
}

// startManager runs the notification controllers for namespace ns only,
// until the returned stop is called (it waits for the manager to end) or
// the test ends.
func startManager(t *testing.T, ns string) (stop func()) {
	t.Helper()
	return startManagerWith(t, ns, Options{Workers: 2})
}

// startManagerWith is startManager with the subsystem's options.
func startManagerWith(t *testing.T, ns string, o Options) (stop func()) {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := Setup(mgr, o); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager stopped: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

var nsCounter atomic.Int64

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("n%d-%d", time.Now().Unix()%100000, nsCounter.Add(1))
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return ns
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("cannot create %T %s: %v", o, o.GetName(), err)
		}
	}
}

var eventCounter atomic.Int64

// emit records a Kubernetes Event about a Strata object, as a controller's
// recorder would (micro-second eventTime, so order is kept).
func emit(t *testing.T, ns, kind, name, typ, reason, msg string, annotations map[string]string) *corev1.Event {
	t.Helper()
	apiVersion := "gitops.strata.dev/v1alpha1"
	now := time.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s.%d", name, eventCounter.Add(1)), Annotations: annotations},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name, UID: types.UID("uid-" + name),
		},
		Type: typ, Reason: reason, Message: msg,
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: "strata.dev/test", ReportingInstance: "test", Action: "Reconcile",
	}
	create(t, ev)
	return ev
}

// request is one request a loopback endpoint received.
type request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// endpoint is a loopback HTTP server that records requests and answers
// with status (200 unless changed).
type endpoint struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []request
	status atomic.Int32
	// before, when set, runs after a request is taken and before it is
	// answered.
	before atomic.Pointer[func()]
}

func newEndpoint(t *testing.T) *endpoint { return newEndpointAt(t, "127.0.0.1:0") }

// newEndpointAt is newEndpoint listening on addr.
func newEndpointAt(t *testing.T, addr string) *endpoint {
	e := &endpoint{}
	e.status.Store(http.StatusOK)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	e.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		code := int(e.status.Load())
		if code == http.StatusOK {
			e.mu.Lock()
			e.reqs = append(e.reqs, request{Method: r.Method, Path: r.URL.EscapedPath(), Header: r.Header.Clone(), Body: b})
			e.mu.Unlock()
		}
		if f := e.before.Load(); f != nil {
			(*f)()
		}
		w.WriteHeader(code)
	}))
	e.Listener = l
	e.Start()
	t.Cleanup(e.Close)
	return e
}

func (e *endpoint) requests() []request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]request(nil), e.reqs...)
}

// waitRequests waits until the endpoint has at least n requests.
func (e *endpoint) waitRequests(t *testing.T, n int) []request {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("%d requests", n), func() (bool, string) {
		got := e.requests()
		return len(got) >= n, fmt.Sprintf("%d requests", len(got))
	})
	return e.requests()
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not true within %s; last: %s", what, timeout, last)
}

func getAlert(t *testing.T, ns, name string) *notificationv1.Alert {
	t.Helper()
	a := &notificationv1.Alert{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, a); err != nil {
		t.Fatal(err)
	}
	return a
}

// waitReady waits for obj's Ready condition to have status and reason.
func waitReady(t *testing.T, obj interface {
	client.Object
	conditions.Setter
}, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	var got *metav1.Condition
	eventually(t, 30*time.Second, fmt.Sprintf("%T %s Ready=%s %s", obj, obj.GetName(), status, reason), func() (bool, string) {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		got = conditions.Get(obj, conditions.Ready)
		if got == nil {
			return false, "no Ready condition"
		}
		return got.Status == status && got.Reason == reason, fmt.Sprintf("%s %s: %s", got.Status, got.Reason, got.Message)
	})
	return got
}

func secret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func provider(ns, name, typ, address string, secretRef *notificationv1.SecretReference) *notificationv1.Provider {
	return &notificationv1.Provider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       notificationv1.ProviderSpec{Type: typ, Address: address, SecretRef: secretRef},
	}
}

func alert(ns, name, providerName string, mutate func(*notificationv1.AlertSpec)) *notificationv1.Alert {
	a := &notificationv1.Alert{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: notificationv1.AlertSpec{
			ProviderRef:  notificationv1.LocalReference{Name: providerName},
			EventSources: []notificationv1.EventSource{{Kind: "Sync", Name: "*"}},
		},
	}
	if mutate != nil {
		mutate(&a.Spec)
	}
	return a
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, b)
	}
	return m
}
