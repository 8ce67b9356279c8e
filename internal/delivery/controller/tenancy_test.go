package controller

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/delivery/analysis"
	"github.com/strata-dev/strata/internal/kit/egress"
)

const victimValue = "victim-s3cret-value"

// TestArgumentsActAsTheTenant makes the attacks a tenant could try with an
// AnalysisRun's arguments: read a Secret of another namespace, or a Secret
// of its own namespace its service account may not read. Each is refused
// with reason Error naming the Secret, the value appears nowhere in the
// run, and the victim is unchanged. A Secret the account may read works and
// is masked in the recorded URL.
func TestArgumentsActAsTheTenant(t *testing.T) {
	startManager(t)
	ctx := context.Background()
	tenant, victim := namespace(t), namespace(t)
	for _, o := range []clientObject{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: victim, Name: "token"}, StringData: map[string]string{"token": victimValue}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "private"}, StringData: map[string]string{"token": victimValue}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "ok-token"}, StringData: map[string]string{"token": "tenant-token"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "analyst"}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "analyst"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{"ok-token"}},
		}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "analyst"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "analyst"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "analyst", Namespace: tenant}}},
	} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var gotTokens []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotTokens = append(gotTokens, r.URL.Query().Get("t"))
		mu.Unlock()
		_, _ = w.Write([]byte("true"))
	}))
	defer srv.Close()
	metric := deliveryv1.Metric{Name: "check", NoData: deliveryv1.NoDataFail,
		Provider: deliveryv1.MetricProvider{Web: &deliveryv1.WebMetric{URL: srv.URL + "/?t={{args.token}}"}}}
	secretArg := func(name string) []deliveryv1.Argument {
		return []deliveryv1.Argument{{Name: "token", ValueFrom: &deliveryv1.ArgumentValueFrom{SecretKeyRef: &deliveryv1.KeySelector{Name: name, Key: "token"}}}}
	}

	// The attack through a field the API does not have: a namespace on
	// secretKeyRef. The API server drops it; the run reads its own
	// namespace, as its service account, and is refused.
	cross := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": deliveryv1.GroupVersion.String(), "kind": "AnalysisRun",
		"metadata": map[string]any{"namespace": tenant, "name": "cross-namespace"},
		"spec": map[string]any{
			"serviceAccountName": "analyst",
			"args":               []any{map[string]any{"name": "token", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "token", "namespace": victim, "key": "token"}}}},
			"metrics":            []any{map[string]any{"name": "check", "noData": "Fail", "provider": map[string]any{"web": map[string]any{"url": srv.URL + "/?t={{args.token}}"}}}},
		},
	}}
	if err := env.Client.Create(ctx, cross); err != nil {
		t.Fatal(err)
	}
	own := &deliveryv1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "forbidden-secret"},
		Spec: deliveryv1.AnalysisRunSpec{ServiceAccountName: "analyst", Args: secretArg("private"), Metrics: []deliveryv1.Metric{metric}}}
	allowed := &deliveryv1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "allowed-secret"},
		Spec: deliveryv1.AnalysisRunSpec{ServiceAccountName: "analyst", Args: secretArg("ok-token"), Metrics: []deliveryv1.Metric{metric}}}
	for _, r := range []*deliveryv1.AnalysisRun{own, allowed} {
		if err := env.Client.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	for _, name := range []string{"cross-namespace", "forbidden-secret"} {
		run := waitDone(t, &deliveryv1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: name}})
		ready := conditions.Get(run, conditions.Ready)
		if run.Status.Phase != deliveryv1.PhaseError || ready == nil || ready.Reason != deliveryv1.ReasonError {
			t.Errorf("%s: phase %s, Ready %+v; want Error", name, run.Status.Phase, ready)
		}
		if !strings.Contains(run.Status.Message, "cannot read Secret "+tenant+"/") || !strings.Contains(run.Status.Message, "forbidden") {
			t.Errorf("%s: message %q should name the Secret and the refusal", name, run.Status.Message)
		}
		b, _ := json.Marshal(run)
		if strings.Contains(string(b), victimValue) {
			t.Errorf("%s: the victim's value is in the run", name)
		}
	}
	mu.Lock()
	for _, tok := range gotTokens {
		if tok == victimValue {
			t.Error("the victim's value was sent to the tenant's server")
		}
	}
	mu.Unlock()
	v := &corev1.Secret{}
	if err := env.Client.Get(ctx, keyOf(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: victim, Name: "token"}}), v); err != nil || string(v.Data["token"]) != victimValue {
		t.Errorf("victim Secret changed or gone: %v", err)
	}

	run := waitDone(t, allowed)
	if run.Status.Phase != deliveryv1.PhaseSuccessful {
		t.Fatalf("allowed: phase %s (%s)", run.Status.Phase, run.Status.Message)
	}
	if q := run.Status.MetricResults[0].Measurements[0].Query; q != srv.URL+"/?t="+analysis.Masked {
		t.Errorf("recorded URL %q should mask the Secret-sourced argument", q)
	}
}

// Attack: a tenant's AnalysisRun whose web metric points where the manager
// can reach and the tenant cannot (the cloud's instance metadata service,
// the manager's loopback) would read the answer into the run's status.
// The connection is refused before anything is sent, the run ends in Error
// naming the denied network, and no measurement holds what the server
// would have answered. 127.0.0.2 stands for the denied network, so the
// test needs no other machine.
func TestWebMetricCannotReachDeniedNetworks(t *testing.T) {
	startManagerWith(t, Options{Workers: 4, Egress: egress.MustParse("127.0.0.2/32")})
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"AccessKeyId": "node-credentials"})
	}))
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	ns := namespace(t)
	run := runOf(ns, "imds", nil, nil, deliveryv1.Metric{
		Name: "steal", Interval: every(200 * time.Millisecond), Count: ptr.To[int32](3), ConsecutiveErrorLimit: ptr.To[int32](1),
		NoData: deliveryv1.NoDataPass, SuccessCondition: "true",
		Provider: deliveryv1.MetricProvider{Web: &deliveryv1.WebMetric{URL: srv.URL + "/latest/meta-data/iam", JSONPath: "{.AccessKeyId}"}},
	})
	if err := env.Client.Create(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	run = waitDone(t, run)
	if run.Status.Phase != deliveryv1.PhaseError {
		t.Fatalf("phase %s (%s), want Error", run.Status.Phase, run.Status.Message)
	}
	for _, m := range run.Status.MetricResults[0].Measurements {
		if strings.Contains(m.Value+m.Message, "node-credentials") {
			t.Errorf("measurement holds the server's answer: %+v", m)
		}
		if !strings.Contains(m.Message, "127.0.0.2/32; its --egress-denied-networks") {
			t.Errorf("measurement message %q does not name the denied network", m.Message)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the denied server got %d requests", n)
	}
}
