package rollout

import (
	"context"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/webhook"
	"github.com/strata-dev/strata/internal/testenv/amtest"
)

// TestAbortOnAlert: an alert firing in a real Alertmanager, posted to
// Strata's receiver of the Rollout's namespace, aborts the canary whose
// abortOn.alerts match it; a Rollout of another namespace with the same
// matchers is not touched.
func TestAbortOnAlert(t *testing.T) {
	startManager(t)
	ctx := context.Background()
	ns, other := namespace(t), namespace(t)
	matchers := &deliveryv1.AbortOn{Alerts: []deliveryv1.RolloutAlertMatcher{{Name: "alertname", Value: "HighErrorRate"}, {Name: "service", Operator: "=~", Value: "shop|cart"}}}
	ro := canaryRollout(ns, "shop", "shop", weight(50), pause())
	ro.Spec.AbortOn = matchers
	bystander := canaryRollout(other, "shop", "shop", weight(50), pause())
	bystander.Spec.AbortOn = matchers
	create(t, deployment(ns, "shop", 2, "shop:1"), service(ns, "shop", map[string]string{"app": "shop"}), ro,
		deployment(other, "shop", 2, "shop:1"), service(other, "shop", map[string]string{"app": "shop"}), bystander,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "am-token"}, Data: map[string][]byte{"token": []byte("am-token")}},
		&notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alerts"},
			Spec: notificationv1.ReceiverSpec{Type: notificationv1.ReceiverAlertmanager, SecretRef: notificationv1.LocalReference{Name: "am-token"}}})
	waitRollout(t, ro, "healthy", healthy)
	waitRollout(t, bystander, "healthy", healthy)
	setImage(t, ns, "shop", "shop:2")
	setImage(t, other, "shop", "shop:2")
	waitRollout(t, ro, "paused at step 1", atStep(1))
	waitRollout(t, bystander, "paused at step 1", atStep(1))

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	addrc := make(chan string, 1)
	rc := &webhook.Receiver{Reader: env.Client, Writer: env.Client, Log: logr.Discard()}
	go func() { _ = rc.Server(rctx, "127.0.0.1:0", func(a string) { addrc <- a }) }()
	base := "http://" + <-addrc
	am := amtest.Start(t, amtest.Config{WebhookURL: base + webhook.AlertPathPrefix + ns + "/alerts", BearerToken: "am-token"})
	am.Post(t, amtest.Alert{Labels: map[string]string{"alertname": "HighErrorRate", "service": "shop"}})

	waitRollout(t, ro, "aborted", phaseIs(deliveryv1.RolloutPhaseAborted))
	if a := ro.Status.Aborted; a.Reason != deliveryv1.ReasonAlertFired || !strings.Contains(a.Message, "HighErrorRate") {
		t.Errorf("aborted %+v", a)
	}
	wantPods(t, ns, "shop", map[string]int{"shop:1": 2})
	waitRollout(t, bystander, "still paused", atStep(1))
	if bystander.Annotations[deliveryv1.AbortAlertAnnotation] != "" {
		t.Errorf("the other namespace's Rollout was annotated: %v", bystander.Annotations)
	}
}
