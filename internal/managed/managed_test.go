package managed_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/managed"
	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
	"github.com/strata-dev/strata/internal/scheme"
	"github.com/strata-dev/strata/internal/testenv"
	"github.com/strata-dev/strata/providers/nop"
	nopv1 "github.com/strata-dev/strata/providers/nop/apis/nop/v1alpha1"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env, testenv.Start)) }

// startManager runs a manager with the given setup until the test ends.
func startManager(t *testing.T, setup func(ctrl.Manager) error) {
	t.Helper()
	skip := true
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:     scheme.New(),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := setup(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// eventually polls f every 100ms until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func condition(r *nopv1.NopResource, typ string) metav1.Condition {
	if c := conditions.Get(r, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

func waitCondition(t *testing.T, name, typ string, status metav1.ConditionStatus, reason string) *nopv1.NopResource {
	t.Helper()
	r := &nopv1.NopResource{}
	eventually(t, 20*time.Second, fmt.Sprintf("%s %s=%s (%s)", name, typ, status, reason), func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, r); err != nil {
			return err
		}
		c := condition(r, typ)
		if c.Status != status || (reason != "" && c.Reason != reason) {
			return fmt.Errorf("%s is %s (%s): %s", typ, c.Status, c.Reason, c.Message)
		}
		return nil
	})
	return r
}

func waitGone(t *testing.T, obj client.Object) {
	t.Helper()
	eventually(t, 20*time.Second, obj.GetName()+" deleted", func() error {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (err %v)", err)
	})
}

func eventReasons(t *testing.T, name string) string {
	t.Helper()
	l := &corev1.EventList{}
	if err := env.Client.List(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range l.Items {
		if e.InvolvedObject.Name == name {
			out = append(out, e.Reason)
		}
	}
	return strings.Join(out, ",")
}

func TestNopResourceLifecycle(t *testing.T) {
	startManager(t, func(m ctrl.Manager) error { return nop.Setup(m, managed.Options{}) })
	ctx := context.Background()
	r := &nopv1.NopResource{
		ObjectMeta: metav1.ObjectMeta{Name: "lifecycle"},
		Spec: nopv1.NopResourceSpec{ResourceSpec: managedv1.ResourceSpec{
			WriteConnectionSecretToReference: &managedv1.SecretReference{Name: "lifecycle-conn", Namespace: "default"},
		}},
	}
	if err := env.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, r.Name, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable)
	if c := condition(got, conditions.Synced); c.Status != metav1.ConditionTrue || c.Reason != conditions.ReasonReconcileSuccess {
		t.Errorf("Synced = %s/%s, want True/ReconcileSuccess", c.Status, c.Reason)
	}
	if got.Status.ObservedGeneration != got.Generation {
		t.Errorf("observedGeneration = %d, want %d", got.Status.ObservedGeneration, got.Generation)
	}
	if got.Annotations[managed.AnnotationExternalName] != "lifecycle" {
		t.Errorf("external-name annotation = %q, want the object's name", got.Annotations[managed.AnnotationExternalName])
	}
	if got.Annotations[managed.AnnotationCreatePending] == "" {
		t.Errorf("create intent annotation missing: %v", got.Annotations)
	}
	if got.Status.CreatedAt == nil {
		t.Error("status.createdAt not set after the create")
	}
	if len(got.Finalizers) != 1 || got.Finalizers[0] != managed.Finalizer {
		t.Errorf("finalizers = %v, want [%s]", got.Finalizers, managed.Finalizer)
	}
	if got.Spec.DeletionPolicy != managedv1.DeletionDelete || got.Spec.ProviderConfigReference.Name != "default" ||
		len(got.Spec.ManagementPolicies) != 1 || got.Spec.ManagementPolicies[0] != managedv1.ManagementAll {
		t.Errorf("defaults not applied: %+v", got.Spec.ResourceSpec)
	}
	sec := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "lifecycle-conn"}, sec); err != nil {
		t.Fatalf("connection secret: %v", err)
	}
	if string(sec.Data["username"]) != "nop" || string(sec.Data["endpoint"]) != "nop.strata.dev" || sec.Type != managed.SecretTypeConnection {
		t.Errorf("connection secret = %v (%s)", sec.Data, sec.Type)
	}
	if len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].UID != got.UID {
		t.Errorf("connection secret owner = %v, want the NopResource", sec.OwnerReferences)
	}
	eventually(t, 10*time.Second, "CreatedExternalResource event", func() error {
		if ev := eventReasons(t, r.Name); !strings.Contains(ev, managed.EventCreated) {
			return fmt.Errorf("events: %s", ev)
		}
		return nil
	})

	if err := env.Client.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	waitGone(t, got)
	waitGone(t, sec)

	// Per-kind metrics.
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == "NopResource.nop.strata.dev" {
					found[f.GetName()] = true
				}
			}
		}
	}
	for _, n := range []string{"strata_managed_reconciles_total", "strata_managed_external_calls_total", "strata_managed_time_to_ready_seconds"} {
		if !found[n] {
			t.Errorf("metric %s has no series for NopResource", n)
		}
	}
}

func TestNopConditionAfter(t *testing.T) {
	startManager(t, func(m ctrl.Manager) error { return nop.Setup(m, managed.Options{}) })
	ctx := context.Background()
	r := &nopv1.NopResource{
		ObjectMeta: metav1.ObjectMeta{Name: "after"},
		Spec: nopv1.NopResourceSpec{ForProvider: nopv1.NopParameters{ConditionAfter: []nopv1.ConditionAfter{
			{Time: metav1.Duration{Duration: 3 * time.Second}, ConditionType: "Ready", ConditionStatus: metav1.ConditionTrue},
			{Time: metav1.Duration{Duration: 0}, ConditionType: "Custom", ConditionStatus: metav1.ConditionTrue},
		}}},
	}
	if err := env.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, r) })
	got := waitCondition(t, r.Name, "Custom", metav1.ConditionTrue, "Nop")
	if c := condition(got, conditions.Ready); c.Status == metav1.ConditionTrue {
		t.Fatalf("Ready became True before conditionAfter's 3s: %+v", c)
	}
	got = waitCondition(t, r.Name, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable)
	if d := condition(got, conditions.Ready).LastTransitionTime.Sub(got.CreationTimestamp.Time); d < 2*time.Second {
		t.Errorf("Ready after %s, want about 3s", d)
	}
}

// memory is an in-memory external system for testing the runtime itself:
// it counts calls and holds one string value per external name.
type memory struct {
	mu      sync.Mutex
	store   map[string]string
	creates atomic.Int32
	updates atomic.Int32
	deletes atomic.Int32
	down    atomic.Bool
	// raced, when set, is a name someone else creates in the moment
	// between a managed resource's observation and its create.
	raced string
}

func newMemory() *memory { return &memory{store: map[string]string{}} }

func (m *memory) value(r *nopv1.NopResource) string {
	if r.Spec.ForProvider.Fields == nil {
		return ""
	}
	return string(r.Spec.ForProvider.Fields.Raw)
}

func (m *memory) Connect(context.Context, managed.Managed) (managed.External, error) {
	if m.down.Load() {
		return nil, fmt.Errorf("cannot connect to memory at 127.0.0.1:1: connection refused")
	}
	return m, nil
}

func (m *memory) Observe(_ context.Context, mg managed.Managed) (managed.Observation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.store[managed.ExternalName(mg)]
	if !ok {
		return managed.Observation{}, nil
	}
	want := m.value(mg.(*nopv1.NopResource))
	o := managed.Observation{Exists: true, UpToDate: v == want}
	if !o.UpToDate {
		o.Drift = fmt.Sprintf("value is %s, want %s", v, want)
	}
	return o, nil
}

func (m *memory) Create(_ context.Context, mg managed.Managed) (managed.Creation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.creates.Add(1)
	name := managed.ExternalName(mg)
	if name == m.raced {
		m.store[name] = `{"v":"someone else's"}`
	}
	if _, ok := m.store[name]; ok {
		return managed.Creation{}, managed.AlreadyExists(fmt.Errorf("memory: %q exists", name))
	}
	m.store[name] = m.value(mg.(*nopv1.NopResource))
	return managed.Creation{}, nil
}

func (m *memory) Update(_ context.Context, mg managed.Managed) (managed.Update, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.updates.Add(1)
	m.store[managed.ExternalName(mg)] = m.value(mg.(*nopv1.NopResource))
	return managed.Update{}, nil
}

func (m *memory) Delete(_ context.Context, mg managed.Managed) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deletes.Add(1)
	delete(m.store, managed.ExternalName(mg))
	return nil
}

func (m *memory) get(name string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.store[name]
	return v, ok
}

func (m *memory) set(name, v string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.store[name] = v
}

func startMemory(t *testing.T) *memory {
	mem := newMemory()
	startManager(t, func(m ctrl.Manager) error {
		return managed.Setup(m, managed.Options{PollInterval: time.Minute}, managed.Kind{
			New:       func() managed.Managed { return &nopv1.NopResource{} },
			Connector: mem,
		})
	})
	return mem
}

func fields(s string) *nopv1.NopParameters {
	p := &nopv1.NopParameters{}
	p.Fields = &apiextJSON{Raw: []byte(s)}
	return p
}

func newNop(name, value string, mutate ...func(*nopv1.NopResource)) *nopv1.NopResource {
	r := &nopv1.NopResource{ObjectMeta: metav1.ObjectMeta{Name: name}}
	r.Spec.ForProvider = *fields(value)
	for _, f := range mutate {
		f(r)
	}
	return r
}

func TestCreateUpdateDeleteAndPolicies(t *testing.T) {
	mem := startMemory(t)
	ctx := context.Background()

	// Drift is corrected at the next poll (forced here by a short
	// strata.dev/poll-interval).
	r := newNop("drift", `{"a":1}`, func(r *nopv1.NopResource) {
		r.Annotations = map[string]string{managed.AnnotationPollInterval: "500ms"}
	})
	if err := env.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, r.Name, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable)
	mem.set("drift", `{"a":2}`)
	eventually(t, 10*time.Second, "drift corrected", func() error {
		if v, _ := mem.get("drift"); v != `{"a":1}` {
			return fmt.Errorf("value %s", v)
		}
		return nil
	})
	eventually(t, 10*time.Second, "UpdatedExternalResource event", func() error {
		if ev := eventReasons(t, r.Name); !strings.Contains(ev, managed.EventUpdated) {
			return fmt.Errorf("events: %s", ev)
		}
		return nil
	})
	// Polled several times since its create: a create that went through
	// is never taken for one a crash interrupted.
	if ev := eventReasons(t, r.Name); strings.Contains(ev, managed.EventAdoptedAfterCrash) {
		t.Errorf("a completed create was reported as interrupted: events %s", ev)
	}

	// Observe only: drift is reported, never corrected.
	mem.set("observed", `{"b":2}`)
	o := newNop("observed", `{"b":1}`, func(r *nopv1.NopResource) {
		r.Annotations = map[string]string{managed.AnnotationPollInterval: "500ms"}
		r.Spec.ManagementPolicies = managedv1.ManagementPolicies{managedv1.ManagementObserve}
	})
	if err := env.Client.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, o.Name, conditions.Synced, metav1.ConditionTrue, managed.ReasonDriftDetected)
	if msg := condition(got, conditions.Synced).Message; !strings.Contains(msg, `value is {"b":2}, want {"b":1}`) {
		t.Errorf("drift message = %q", msg)
	}
	if v, _ := mem.get("observed"); v != `{"b":2}` {
		t.Errorf("Observe-only resource was changed to %s", v)
	}
	// Observe only and missing: reported, never created.
	missing := newNop("missing", `{}`, func(r *nopv1.NopResource) {
		r.Spec.ManagementPolicies = managedv1.ManagementPolicies{managedv1.ManagementObserve}
	})
	if err := env.Client.Create(ctx, missing); err != nil {
		t.Fatal(err)
	}
	got = waitCondition(t, missing.Name, conditions.Synced, metav1.ConditionFalse, conditions.ReasonReconcileError)
	if msg := condition(got, conditions.Synced).Message; !strings.Contains(msg, "does not exist and managementPolicies do not allow Create") {
		t.Errorf("message = %q", msg)
	}
	if _, ok := mem.get("missing"); ok {
		t.Error("Observe-only resource was created")
	}
	// Deleting an Observe-only resource leaves the external resource.
	if err := env.Client.Delete(ctx, o); err != nil {
		t.Fatal(err)
	}
	waitGone(t, o)
	if _, ok := mem.get("observed"); !ok {
		t.Error("deleting an Observe-only resource deleted the external resource")
	}
	if err := env.Client.Delete(ctx, missing); err != nil {
		t.Fatal(err)
	}
	waitGone(t, missing)

	// Orphan leaves it; Delete removes it.
	orphan := newNop("orphan", `{}`, func(r *nopv1.NopResource) { r.Spec.DeletionPolicy = managedv1.DeletionOrphan })
	if err := env.Client.Create(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, orphan.Name, conditions.Ready, metav1.ConditionTrue, "")
	for _, x := range []*nopv1.NopResource{orphan, r} {
		if err := env.Client.Delete(ctx, x); err != nil {
			t.Fatal(err)
		}
		waitGone(t, x)
	}
	if _, ok := mem.get("orphan"); !ok {
		t.Error("deletionPolicy Orphan deleted the external resource")
	}
	if _, ok := mem.get("drift"); ok {
		t.Error("deletionPolicy Delete left the external resource")
	}
}

func TestExternalNameAndInterruptedCreate(t *testing.T) {
	mem := startMemory(t)
	ctx := context.Background()
	// A create was interrupted after the external call: intent recorded,
	// no success. The runtime adopts the external resource instead of
	// creating it again.
	mem.set("ext-1", `{}`)
	r := newNop("interrupted", `{}`, func(r *nopv1.NopResource) {
		r.Annotations = map[string]string{
			managed.AnnotationExternalName:  "ext-1",
			managed.AnnotationCreatePending: time.Now().UTC().Format(time.RFC3339),
		}
	})
	if err := env.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, r.Name, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable)
	if n := mem.creates.Load(); n != 0 {
		t.Errorf("Create called %d times for an adopted resource", n)
	}
	if got.Status.CreatedAt == nil {
		t.Error("adopted resource has no status.createdAt")
	}
	if !strings.Contains(eventReasons(t, r.Name), managed.EventAdoptedAfterCrash) {
		t.Errorf("no %s event", managed.EventAdoptedAfterCrash)
	}
	if err := env.Client.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	waitGone(t, got)
	if _, ok := mem.get("ext-1"); ok {
		t.Error("external resource named by the annotation was not deleted")
	}
}

func TestUnreachableAndRecovery(t *testing.T) {
	mem := startMemory(t)
	ctx := context.Background()
	r := newNop("unreachable", `{}`, func(r *nopv1.NopResource) {
		r.Annotations = map[string]string{managed.AnnotationPollInterval: "300ms"}
	})
	if err := env.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, r) })
	waitCondition(t, r.Name, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable)
	mem.down.Store(true)
	got := waitCondition(t, r.Name, conditions.Ready, metav1.ConditionFalse, conditions.ReasonUnavailable)
	if msg := condition(got, conditions.Ready).Message; msg != "cannot connect to memory at 127.0.0.1:1: connection refused" {
		t.Errorf("Ready message = %q", msg)
	}
	if c := condition(got, conditions.Synced); c.Status != metav1.ConditionFalse || c.Reason != conditions.ReasonReconcileError {
		t.Errorf("Synced = %+v", c)
	}
	eventually(t, 5*time.Second, "CannotConnectToProvider event", func() error {
		if ev := eventReasons(t, r.Name); !strings.Contains(ev, managed.EventCannotConnect) {
			return fmt.Errorf("events: %s", ev)
		}
		return nil
	})
	mem.down.Store(false)
	waitCondition(t, r.Name, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable)
	waitCondition(t, r.Name, conditions.Synced, metav1.ConditionTrue, conditions.ReasonReconcileSuccess)
	if n := mem.creates.Load(); n != 1 {
		t.Errorf("Create called %d times, want 1", n)
	}
}

// TestConnectionSecretOfAnotherOwnerIsRefused is the hostile case of the
// connection-Secret publisher: a resource whose writeConnectionSecretToRef
// names a Secret another controller owns. The resource stalls with
// ResourceConflict naming the Secret and its owner; the Secret keeps its
// values and owner, and deleting the resource leaves it in place.
func TestConnectionSecretOfAnotherOwnerIsRefused(t *testing.T) {
	startManager(t, func(m ctrl.Manager) error { return nop.Setup(m, managed.Options{}) })
	ctx := context.Background()
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "victim-app"}}
	if err := env.Client.Create(ctx, owner); err != nil {
		t.Fatal(err)
	}
	yes := true
	victim := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "victim-conn",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "victim-app", UID: owner.UID, Controller: &yes}}},
		Data: map[string][]byte{"username": []byte("victim-user"), "password": []byte("victim-pw-1234")}}
	if err := env.Client.Create(ctx, victim); err != nil {
		t.Fatal(err)
	}
	r := &nopv1.NopResource{
		ObjectMeta: metav1.ObjectMeta{Name: "grab-conn"},
		Spec: nopv1.NopResourceSpec{ResourceSpec: managedv1.ResourceSpec{
			WriteConnectionSecretToReference: &managedv1.SecretReference{Name: "victim-conn", Namespace: "default"},
		}},
	}
	if err := env.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, r.Name, conditions.Stalled, metav1.ConditionTrue, ownership.ReasonResourceConflict)
	msg := condition(got, conditions.Stalled).Message
	for _, want := range []string{"Secret default/victim-conn", "ConfigMap victim-app"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Stalled message %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, "victim-pw") || strings.Contains(msg, "victim-user") {
		t.Errorf("Stalled message shows a value: %q", msg)
	}
	assertVictim := func() {
		t.Helper()
		s := &corev1.Secret{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(victim), s); err != nil {
			t.Fatalf("victim Secret: %v", err)
		}
		if string(s.Data["username"]) != "victim-user" || string(s.Data["password"]) != "victim-pw-1234" || len(s.Data) != 2 ||
			len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != owner.UID {
			t.Errorf("victim Secret changed: keys %d owners %+v", len(s.Data), s.OwnerReferences)
		}
		for _, f := range s.ManagedFields {
			if strings.HasPrefix(f.Manager, "strata") {
				t.Errorf("victim Secret has fields of %s", f.Manager)
			}
		}
	}
	assertVictim()
	if err := env.Client.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	waitGone(t, got)
	assertVictim()
}

// TestExistingExternalResourceIsNotTakenOver is the attack on external
// resources: a managed resource whose external name (chosen, say, by a
// claimant's parameter) is that of a resource someone else made must not
// update it, nor delete it when it goes. Only a hand-over annotation, or
// managementPolicies without Create (an import), lets it manage one.
func TestExistingExternalResourceIsNotTakenOver(t *testing.T) {
	mem := startMemory(t)
	ctx := context.Background()
	mem.set("theirs", `{"v":"theirs"}`)
	hostile := newNop("hostile", `{"v":"mine"}`, func(r *nopv1.NopResource) {
		r.Annotations = map[string]string{managed.AnnotationExternalName: "theirs", managed.AnnotationPollInterval: "300ms"}
	})
	if err := env.Client.Create(ctx, hostile); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, hostile.Name, conditions.Synced, metav1.ConditionFalse, managed.ReasonResourceConflict)
	if msg := condition(got, conditions.Synced).Message; !strings.Contains(msg, `external resource "theirs" already exists and this resource did not create it`) ||
		!strings.Contains(msg, managed.AnnotationAdoptExternal) {
		t.Errorf("Synced message = %q, want it to name the resource and the hand-over annotation", msg)
	}
	if c := condition(got, conditions.Ready); c.Status != metav1.ConditionFalse || !conditions.IsTrue(got, conditions.Stalled) {
		t.Errorf("Ready = %+v, Stalled = %v; want Ready=False and Stalled", c, conditions.IsTrue(got, conditions.Stalled))
	}
	time.Sleep(time.Second) // three polls
	if v, _ := mem.get("theirs"); v != `{"v":"theirs"}` || mem.updates.Load() != 0 || mem.creates.Load() != 0 {
		t.Errorf("someone else's resource was written: value %s, %d updates, %d creates", v, mem.updates.Load(), mem.creates.Load())
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(hostile), got); err != nil {
		t.Fatal(err)
	}
	if len(got.Finalizers) != 0 || got.Annotations[managed.AnnotationCreatePending] != "" {
		t.Errorf("a refused resource holds finalizers %v, annotations %v", got.Finalizers, got.Annotations)
	}
	if ev := eventReasons(t, hostile.Name); strings.Count(ev, managed.EventConflict) != 1 {
		t.Errorf("events %s, want one %s however often it is polled", ev, managed.EventConflict)
	}
	if err := env.Client.Delete(ctx, hostile); err != nil {
		t.Fatal(err)
	}
	waitGone(t, hostile)
	if _, ok := mem.get("theirs"); !ok || mem.deletes.Load() != 0 {
		t.Fatal("deleting the refused resource deleted someone else's")
	}

	// A resource an earlier Strata took over without asking (finalizer,
	// no create of its own): refused now, and its deletion leaves it.
	mem.set("legacy", `{"v":"theirs"}`)
	legacy := newNop("legacy", `{"v":"theirs"}`, func(r *nopv1.NopResource) {
		r.Annotations = map[string]string{managed.AnnotationExternalName: "legacy"}
		r.Finalizers = []string{managed.Finalizer}
	})
	if err := env.Client.Create(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, legacy.Name, conditions.Synced, metav1.ConditionFalse, managed.ReasonResourceConflict)
	if err := env.Client.Delete(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	waitGone(t, legacy)
	if _, ok := mem.get("legacy"); !ok {
		t.Error("deleting a resource that never created its external resource deleted it")
	}
	if ev := eventReasons(t, legacy.Name); !strings.Contains(ev, managed.EventKept) {
		t.Errorf("events %s, want %s", ev, managed.EventKept)
	}

	// Someone creates the name between the observation and the create:
	// the intent is withdrawn, so the resource is not taken for the
	// creator, and its deletion leaves the other's.
	mem.mu.Lock()
	mem.raced = "raced"
	mem.mu.Unlock()
	racer := newNop("raced", `{"v":"mine"}`)
	if err := env.Client.Create(ctx, racer); err != nil {
		t.Fatal(err)
	}
	got = waitCondition(t, racer.Name, conditions.Synced, metav1.ConditionFalse, managed.ReasonResourceConflict)
	if got.Annotations[managed.AnnotationCreatePending] != "" {
		t.Errorf("the create intent stayed after the create was refused: %v", got.Annotations)
	}
	if err := env.Client.Delete(ctx, racer); err != nil {
		t.Fatal(err)
	}
	waitGone(t, racer)
	if v, _ := mem.get("raced"); v != `{"v":"someone else's"}` {
		t.Errorf("the racing creator's resource is %q after the loser's deletion", v)
	}

	// Handed over: managed like its own, deleted with it.
	handed := newNop("handed", `{"v":"mine"}`, func(r *nopv1.NopResource) {
		r.Annotations = map[string]string{managed.AnnotationExternalName: "theirs", managed.AnnotationAdoptExternal: "true"}
	})
	if err := env.Client.Create(ctx, handed); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, handed.Name, conditions.Ready, metav1.ConditionTrue, conditions.ReasonAvailable)
	if v, _ := mem.get("theirs"); v != `{"v":"mine"}` {
		t.Errorf("handed-over resource not updated: %s", v)
	}
	if err := env.Client.Delete(ctx, handed); err != nil {
		t.Fatal(err)
	}
	waitGone(t, handed)
	if _, ok := mem.get("theirs"); ok {
		t.Error("deleting the resource it was handed left the external resource")
	}
}
