package controller

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
	"github.com/strata-dev/strata/internal/notification/deliver"
)

// Slack and Teams payloads, rendered with the Alert's templates, reach a
// loopback webhook in the shape those services accept; severity and the
// exclusion list filter events.
func TestChatPayloads(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns)
	slack, teams := newEndpoint(t), newEndpoint(t)
	create(t,
		secret(ns, "slack-url", map[string]string{"address": slack.URL + "/services/T0/B0/secret"}),
		&notificationv1.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "slack"},
			Spec: notificationv1.ProviderSpec{Type: notificationv1.ProviderSlack, Channel: "#deploys", SecretRef: &notificationv1.SecretReference{Name: "slack-url"}}},
		provider(ns, "teams", notificationv1.ProviderMSTeams, teams.URL+"/workflows/x", nil),
		alert(ns, "to-slack", "slack", func(s *notificationv1.AlertSpec) {
			s.EventSeverity = notificationv1.SeverityError
			s.ExclusionList = []string{"^ignore me"}
			s.EventMetadata = map[string]string{"cluster": "prod-eu"}
			s.Summary = `{{.InvolvedObject.Name}} failed ({{.Reason}})`
			s.Template = `{{.Message}} at {{.Revision}} [{{index .Metadata "cluster"}}]`
		}),
		alert(ns, "to-teams", "teams", nil),
	)
	for _, n := range []string{"to-slack", "to-teams"} {
		waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)
	}
	emit(t, ns, "Sync", "app", corev1.EventTypeNormal, "Applied", "revision main@sha1:aaa: created Deployment/app", nil)
	emit(t, ns, "Sync", "app", corev1.EventTypeWarning, "HealthCheckFailed", "ignore me: noise", nil)
	emit(t, ns, "Sync", "app", corev1.EventTypeWarning, "HealthCheckFailed", "Deployment/app not ready",
		map[string]string{notificationv1.RevisionAnnotation: "main@sha1:bbb"})

	got := slack.waitRequests(t, 1)
	teamsGot := teams.waitRequests(t, 2)
	// The last event is delivered once the Alert's status says so.
	eventually(t, 30*time.Second, "slack alert delivered the failure", func() (bool, string) {
		a := getAlert(t, ns, "to-slack")
		return a.Status.LastDeliveredEvent != nil && a.Status.LastDeliveredEvent.Message == "Deployment/app not ready", ""
	})
	got = slack.requests()
	if len(got) != 1 {
		t.Fatalf("slack got %d messages, want 1 (the Normal event is below severity error, the other excluded): %s", len(got), bodies(got))
	}
	if got[0].Path != "/services/T0/B0/secret" {
		t.Errorf("slack path %q", got[0].Path)
	}
	var msg struct {
		Channel     string `json:"channel"`
		Text        string `json:"text"`
		Attachments []struct {
			Color  string `json:"color"`
			Title  string `json:"title"`
			Text   string `json:"text"`
			Fields []struct{ Title, Value string }
		} `json:"attachments"`
	}
	if err := json.Unmarshal(got[0].Body, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Channel != "#deploys" || msg.Text != "app failed (HealthCheckFailed)" || len(msg.Attachments) != 1 ||
		msg.Attachments[0].Color != "danger" || msg.Attachments[0].Text != "Deployment/app not ready at main@sha1:bbb [prod-eu]" {
		t.Errorf("slack payload: %s", got[0].Body)
	}
	if !strings.Contains(string(got[0].Body), `"cluster"`) {
		t.Errorf("slack payload lacks the eventMetadata field: %s", got[0].Body)
	}

	// Teams: every event (severity info), the first an adaptive card.
	eventually(t, 30*time.Second, "teams got all three", func() (bool, string) {
		teamsGot = teams.requests()
		return len(teamsGot) == 3, bodies(teamsGot)
	})
	var card struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string `json:"contentType"`
			Content     struct {
				Type string `json:"type"`
				Body []struct {
					Type, Text string
				} `json:"body"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(teamsGot[0].Body, &card); err != nil {
		t.Fatal(err)
	}
	if card.Type != "message" || len(card.Attachments) != 1 || card.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" ||
		card.Attachments[0].Content.Type != "AdaptiveCard" || len(card.Attachments[0].Content.Body) < 2 ||
		card.Attachments[0].Content.Body[0].Text != "Sync "+ns+"/app: Applied" ||
		card.Attachments[0].Content.Body[1].Text != "revision main@sha1:aaa: created Deployment/app" {
		t.Errorf("teams payload: %s", teamsGot[0].Body)
	}
}

func bodies(rs []request) string {
	var b []string
	for _, r := range rs {
		b = append(b, string(r.Body))
	}
	return strings.Join(b, "\n")
}

// Commit statuses go to loopback servers speaking the GitHub and GitLab
// status APIs, on the commit of the event's revision.
func TestCommitStatus(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns)
	gh, gl := newEndpoint(t), newEndpoint(t)
	create(t,
		secret(ns, "gh-token", map[string]string{"token": "ghp_secret"}),
		secret(ns, "gl-token", map[string]string{"token": "glpat_secret"}),
		provider(ns, "github", notificationv1.ProviderGitHubStatus, gh.URL+"/acme/shop", &notificationv1.SecretReference{Name: "gh-token"}),
		provider(ns, "gitlab", notificationv1.ProviderGitLabStatus, gl.URL+"/acme/infra/shop", &notificationv1.SecretReference{Name: "gl-token"}),
		alert(ns, "gh", "github", nil),
		alert(ns, "gl", "gitlab", nil),
	)
	for _, n := range []string{"gh", "gl"} {
		waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)
	}
	// An event that names no commit comes first: a commit status has
	// nowhere to go for it, and it must not hold back the one after it.
	emit(t, ns, "Sync", "fresh", corev1.EventTypeWarning, "ArtifactFailed", "no revision fetched yet", nil)
	sha := "0123456789abcdef0123456789abcdef01234567"
	emit(t, ns, "Sync", "shop", corev1.EventTypeWarning, "HealthCheckFailed", "Deployment/shop not ready",
		map[string]string{notificationv1.RevisionAnnotation: "main@sha1:" + sha})
	r := gh.waitRequests(t, 1)[0]
	if r.Path != "/api/v3/repos/acme/shop/statuses/"+sha || r.Header.Get("Authorization") != "Bearer ghp_secret" {
		t.Errorf("github request %s %s auth %q", r.Method, r.Path, r.Header.Get("Authorization"))
	}
	if m := decode(t, r.Body); m["state"] != "failure" || m["context"] != "strata/sync/"+ns+"/shop" {
		t.Errorf("github status body: %s", r.Body)
	}
	r = gl.waitRequests(t, 1)[0]
	if r.Path != "/api/v4/projects/acme%2Finfra%2Fshop/statuses/"+sha || r.Header.Get("PRIVATE-TOKEN") != "glpat_secret" {
		t.Errorf("gitlab request %s %s", r.Method, r.Path)
	}
	if m := decode(t, r.Body); m["state"] != "failed" || m["name"] != "strata/sync/"+ns+"/shop" {
		t.Errorf("gitlab status body: %s", r.Body)
	}
	for _, n := range []string{"gh", "gl"} {
		waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)
	}
}

// generic-hmac signs the event JSON with the Secret's token.
func TestGenericHMAC(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns)
	ep := newEndpoint(t)
	create(t,
		secret(ns, "hmac", map[string]string{"token": "hmac-key"}),
		provider(ns, "hook", notificationv1.ProviderGenericHMAC, ep.URL+"/in", &notificationv1.SecretReference{Name: "hmac"}),
		alert(ns, "a", "hook", nil),
	)
	waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a"}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)
	emit(t, ns, "Sync", "app", corev1.EventTypeNormal, "Applied", "revision main@sha1:abc", nil)
	r := ep.waitRequests(t, 1)[0]
	if got, want := r.Header.Get("X-Signature"), deliver.Sign(r.Body, []byte("hmac-key")); got != want {
		t.Errorf("X-Signature %q, want %q", got, want)
	}
	m := decode(t, r.Body)
	obj, _ := m["involvedObject"].(map[string]any)
	if m["reason"] != "Applied" || m["severity"] != "info" || obj["kind"] != "Sync" || obj["name"] != "app" || m["revision"] != "" && m["revision"] != nil {
		t.Errorf("generic payload: %s", r.Body)
	}
}

// An endpoint that refuses is reported (condition and event
// DeliveryFailed) and the message is retried until it is delivered, not
// dropped.
func TestDeliveryFailedIsRetried(t *testing.T) {
	ns := newNamespace(t)
	startManager(t, ns)
	ep := newEndpoint(t)
	ep.status.Store(http.StatusServiceUnavailable)
	create(t, provider(ns, "hook", notificationv1.ProviderGeneric, ep.URL+"/in", nil), alert(ns, "a", "hook", nil))
	waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a"}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)
	emit(t, ns, "Sync", "app", corev1.EventTypeWarning, "ApplyFailed", "the API server refused ConfigMap/x", nil)
	c := waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a"}}, metav1.ConditionFalse, notificationv1.ReasonDeliveryFailed)
	if !strings.Contains(c.Message, "Sync/"+ns+"/app ApplyFailed") || !strings.Contains(c.Message, "503") || strings.Contains(c.Message, ep.URL) {
		t.Errorf("DeliveryFailed message %q should name the event and the status, not the address", c.Message)
	}
	eventually(t, 30*time.Second, "a DeliveryFailed event on the Alert", func() (bool, string) {
		list := &corev1.EventList{}
		if err := env.Client.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		for _, e := range list.Items {
			if e.InvolvedObject.Kind == "Alert" && e.Reason == notificationv1.EventDeliveryFailed {
				return true, ""
			}
		}
		return false, "none"
	})
	ep.status.Store(http.StatusOK)
	r := ep.waitRequests(t, 1)
	if m := decode(t, r[0].Body); m["reason"] != "ApplyFailed" {
		t.Errorf("delivered %s", r[0].Body)
	}
	waitReady(t, &notificationv1.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a"}}, metav1.ConditionTrue, notificationv1.ReasonSucceeded)
}
