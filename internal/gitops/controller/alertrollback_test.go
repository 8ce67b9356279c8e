package controller

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/gitops/webhook"
	"github.com/strata-dev/strata/internal/testenv/amtest"
	"github.com/strata-dev/strata/internal/testenv/promtest"
)

func versioned(name, version string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  version: %q\n", name, version)
}

// appWithTwoRevisions makes a repository, a Sync with onAlerts matchers and
// pushes a second revision; it returns both revisions once the second is
// applied.
func appWithTwoRevisions(t *testing.T, ns string, matchers []gitopsv1.AlertMatcher) (*gittest.Repo, string, string) {
	t.Helper()
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h1 := repo.Commit("one", map[string]string{"cm.yaml": versioned("app", "1")})
	createRepo(t, ns, "src", repo.URL(), nil, "")
	waitRepo(t, ns, "src", metav1.ConditionTrue, h1)
	createSync(t, ns, "app", "src", "", func(s *gitopsv1.Sync) {
		s.Spec.Rollback = &gitopsv1.Rollback{OnAlerts: matchers}
	})
	waitSync(t, ns, "app", metav1.ConditionTrue, h1)
	r2 := push(t, repo, ns, "src", "two", map[string]string{"cm.yaml": versioned("app", "2")})
	waitSync(t, ns, "app", metav1.ConditionTrue, r2)
	return repo, "main@sha1:" + h1, r2
}

func configMapVersion(t *testing.T, ns string) string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data["version"]
}

// End to end: a Prometheus alert rule over the app's error ratio fires into
// a real Alertmanager, which posts to Strata's receiver (bearer token of a Receiver object), and the Sync whose
// rollback.onAlerts matchers match it rolls back to the earlier revision,
// reporting RolledBack/AlertFiring with the alert's name. A Sync of another
// namespace with the same matchers is not touched, and the tenant's token
// opens no other namespace's receiver. A new commit ends the rollback.
func TestAlertmanagerRollsSyncBack(t *testing.T) {
	ns, victim := newNamespace(t), newNamespace(t)
	ctx := context.Background()
	repo, r1, r2 := appWithTwoRevisions(t, ns, []gitopsv1.AlertMatcher{
		{Name: "alertname", Value: "HighErrorRate"}, {Name: "service", Operator: "=~", Value: "shop|app"}})
	_, _, v2 := appWithTwoRevisions(t, victim, []gitopsv1.AlertMatcher{{Name: "alertname", Value: "HighErrorRate"}})

	token := "receiver-token"
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "am-token"}, Data: map[string][]byte{"token": []byte(token)}},
		&notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alerts"},
			Spec: notificationv1.ReceiverSpec{Type: notificationv1.ReceiverAlertmanager, SecretRef: notificationv1.LocalReference{Name: "am-token"}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: victim, Name: "am-token"}, Data: map[string][]byte{"token": []byte("victim-token")}},
		&notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Namespace: victim, Name: "alerts"},
			Spec: notificationv1.ReceiverSpec{SecretRef: notificationv1.LocalReference{Name: "am-token"}}},
	} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	addrc := make(chan string, 1)
	rc := &webhook.Receiver{Reader: env.Client, Writer: env.Client, Log: logr.Discard()}
	go func() { _ = rc.Server(rctx, "127.0.0.1:0", func(a string) { addrc <- a }) }()
	base := "http://" + <-addrc

	// The tenant's token does not open the victim's receiver.
	body := []byte(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"HighErrorRate"}}]}`)
	req, _ := http.NewRequest(http.MethodPost, base+webhook.AlertPathPrefix+victim+"/alerts", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tenant token on the victim's receiver: %d, want 401", resp.StatusCode)
	}

	// The app's error ratio, served on loopback for Prometheus to scrape;
	// the alert rule fires into Alertmanager once it is above 5%.
	app := promtest.NewTarget(t)
	ratio := app.Gauge("shop_error_ratio", "service")
	ratio.WithLabelValues("shop").Set(0.01)
	am := amtest.Start(t, amtest.Config{WebhookURL: base + webhook.AlertPathPrefix + ns + "/alerts", BearerToken: token})
	amtest.StartPrometheus(t, am, `groups:
- name: shop
  interval: 1s
  rules:
  - alert: HighErrorRate
    expr: shop_error_ratio > 0.05
    labels: {severity: page}
    annotations: {summary: "5xx above 5%"}
`, app.Addr)
	// While the ratio is low nothing fires (the Sync stays at r2); the
	// rise is what rolls back.
	if s := getSync(t, ns, "app"); s.Status.LastAppliedRevision != r2 || s.Status.AlertRollback != nil {
		t.Fatalf("rolled back before any alert: %+v", s.Status.AlertRollback)
	}
	ratio.WithLabelValues("shop").Set(0.4)

	var s *gitopsv1.Sync
	eventually(t, 60*time.Second, "Sync rolled back on the alert", func() (bool, string) {
		s = getSync(t, ns, "app")
		c := conditions.Get(s, gitopsv1.RolledBack)
		if c == nil {
			return false, "no RolledBack condition; annotations " + fmt.Sprint(s.Annotations)
		}
		return c.Status == metav1.ConditionTrue && s.Status.LastAppliedRevision == r1, c.Reason + ": " + c.Message
	})
	c := conditions.Get(s, gitopsv1.RolledBack)
	if c.Reason != gitopsv1.ReasonAlertFiring || !strings.Contains(c.Message, "alert HighErrorRate fired for revision "+r2+"; rolled back to "+r1) {
		t.Errorf("RolledBack condition %s: %s", c.Reason, c.Message)
	}
	if st, reason, _ := readyOf(s); st != metav1.ConditionFalse || reason != gitopsv1.ReasonRolledBack {
		t.Errorf("Ready=%s %s, want False RolledBack", st, reason)
	}
	if v := configMapVersion(t, ns); v != "1" {
		t.Errorf("ConfigMap version %q after rollback, want 1", v)
	}

	// The victim's Sync matches the alert's labels but is in another
	// namespace: unchanged.
	vs := getSync(t, victim, "app")
	if vs.Status.LastAppliedRevision != v2 || vs.Status.AlertRollback != nil || vs.Annotations[gitopsv1.AlertRollbackAnnotation] != "" || configMapVersion(t, victim) != "2" {
		t.Errorf("victim Sync changed: applied %s, rollback %+v, annotations %v", vs.Status.LastAppliedRevision, vs.Status.AlertRollback, vs.Annotations)
	}

	// A new commit ends the rollback.
	r3 := push(t, repo, ns, "src", "three", map[string]string{"cm.yaml": versioned("app", "3")})
	s = waitSync(t, ns, "app", metav1.ConditionTrue, r3)
	if s.Status.AlertRollback != nil || conditions.Get(s, gitopsv1.RolledBack) != nil || configMapVersion(t, ns) != "3" {
		t.Errorf("after a new commit: rollback %+v, RolledBack %+v, version %s", s.Status.AlertRollback, conditions.Get(s, gitopsv1.RolledBack), configMapVersion(t, ns))
	}
}
