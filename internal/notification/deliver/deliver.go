package deliver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
	"github.com/strata-dev/strata/internal/kit/egress"
	"github.com/strata-dev/strata/internal/notification/event"
)

// Target is a resolved Provider.
type Target struct {
	// Type is the provider type.
	Type string
	// Address is the endpoint URL.
	Address string
	// Token is the secret's token (may be empty).
	Token string
	// Channel for Slack.
	Channel string
	// Timeout of one request; zero means 15s.
	Timeout time.Duration
	// CA, when set, is the PEM bundle the endpoint's certificate must chain to.
	CA []byte
	// Proxy uses the environment's proxy settings.
	Proxy bool
	// Egress is the networks the client may not connect to (checked on
	// every connection, after DNS; not for the proxy).
	Egress egress.Policy
}

// Client returns the HTTP client for t.
func (t *Target) Client() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if t.Proxy {
		tr.Proxy = http.ProxyFromEnvironment
	}
	if len(t.CA) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(t.CA) {
			return nil, errors.New("ca.crt holds no PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	timeout := t.Timeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	return &http.Client{Transport: t.Egress.Guard(tr), Timeout: timeout}, nil
}

// Error is a failed delivery. Its message never contains the address or
// token.
type Error struct {
	// Status is the HTTP status when the endpoint answered.
	Status int
	msg    string
	// err is the cause, for errors.As (an egress.DeniedError); its text
	// may hold the address and is not shown.
	err error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.err }

// NeedsCommit says whether a provider type sets a status on a commit, so
// that only events naming a commit (Event.CommitSHA) can be delivered to it.
func NeedsCommit(providerType string) bool {
	return providerType == notificationv1.ProviderGitHubStatus || providerType == notificationv1.ProviderGitLabStatus
}

// Send delivers ev (with body, the rendered template) to t.
func Send(ctx context.Context, hc *http.Client, t *Target, ev *event.Event, body string) error {
	req, err := Request(ctx, t, ev, body)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var denied *egress.DeniedError
		if errors.As(err, &denied) {
			// Refused before anything was sent; the address it resolved to
			// is the tenant's own business, the network's name says why.
			return &Error{msg: fmt.Sprintf("%s endpoint not contacted: it resolves into a network the manager does not send to for tenants (%s; its --egress-denied-networks)", t.Type, denied.Network), err: denied}
		}
		return &Error{msg: fmt.Sprintf("%s endpoint did not answer: %s", t.Type, redact(err.Error(), t)), err: err}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &Error{Status: resp.StatusCode, msg: fmt.Sprintf("%s endpoint answered %s", t.Type, resp.Status)}
	}
	return nil
}

func redact(s string, t *Target) string {
	if t.Address != "" {
		s = strings.ReplaceAll(s, t.Address, "<address>")
		if u, err := url.Parse(t.Address); err == nil {
			if u.Path != "" && u.Path != "/" {
				s = strings.ReplaceAll(s, u.Path, "<path>")
			}
		}
	}
	if t.Token != "" {
		s = strings.ReplaceAll(s, t.Token, "<token>")
	}
	return s
}

// Request builds the HTTP request for ev.
func Request(ctx context.Context, t *Target, ev *event.Event, body string) (*http.Request, error) {
	var (
		method   = http.MethodPost
		endpoint = t.Address
		payload  any
		headers  = http.Header{}
	)
	headers.Set("Content-Type", "application/json")
	switch t.Type {
	case notificationv1.ProviderGeneric, notificationv1.ProviderGenericHMAC:
		payload = Generic{Event: ev, Body: body}
		if t.Type == notificationv1.ProviderGeneric && t.Token != "" {
			headers.Set("Authorization", "Bearer "+t.Token)
		}
	case notificationv1.ProviderSlack:
		payload = slack(t, ev, body)
		if t.Token != "" {
			headers.Set("Authorization", "Bearer "+t.Token)
		}
	case notificationv1.ProviderMSTeams:
		payload = teams(ev, body)
	case notificationv1.ProviderAlertmanager:
		endpoint = strings.TrimSuffix(t.Address, "/") + "/api/v2/alerts"
		payload = alertmanager(ev, body)
		if t.Token != "" {
			headers.Set("Authorization", "Bearer "+t.Token)
		}
	case notificationv1.ProviderGitHubStatus:
		sha := ev.CommitSHA()
		if sha == "" {
			return nil, &Error{msg: "the event names no commit (no revision): a commit status needs one"}
		}
		base, repo, err := github(t.Address)
		if err != nil {
			return nil, err
		}
		endpoint = base + "/repos/" + repo + "/statuses/" + sha
		payload = githubStatus(ev, body)
		headers.Set("Accept", "application/vnd.github+json")
		headers.Set("Authorization", "Bearer "+t.Token)
	case notificationv1.ProviderGitLabStatus:
		sha := ev.CommitSHA()
		if sha == "" {
			return nil, &Error{msg: "the event names no commit (no revision): a commit status needs one"}
		}
		base, project, err := gitlab(t.Address)
		if err != nil {
			return nil, err
		}
		endpoint = base + "/api/v4/projects/" + url.PathEscape(project) + "/statuses/" + sha
		payload = gitlabStatus(ev, body)
		headers.Set("PRIVATE-TOKEN", t.Token)
	default:
		return nil, &Error{msg: fmt.Sprintf("unknown provider type %q", t.Type)}
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the %s payload: %w", t.Type, err)
	}
	if t.Type == notificationv1.ProviderGenericHMAC {
		if t.Token == "" {
			return nil, &Error{msg: "generic-hmac needs a token in secretRef"}
		}
		headers.Set("X-Signature", Sign(data, []byte(t.Token)))
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, bytes.NewReader(data))
	if err != nil {
		return nil, &Error{msg: fmt.Sprintf("%s address is not a valid URL", t.Type)}
	}
	req.Header = headers
	req.Header.Set("User-Agent", "strata-notification")
	return req, nil
}

// Sign is the X-Signature of generic-hmac: sha256=<hex HMAC-SHA256 of body>.
func Sign(body, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Generic is the generic and generic-hmac payload: the event schema plus
// the rendered body.
type Generic struct {
	*event.Event
	Body string `json:"body"`
}

func color(ev *event.Event) string {
	if ev.Failed() {
		return "danger"
	}
	return "good"
}

func facts(ev *event.Event) [][2]string {
	out := [][2]string{{"object", ev.InvolvedObject.String()}}
	if ev.Revision != "" {
		out = append(out, [2]string{"revision", ev.Revision})
	}
	keys := make([]string, 0, len(ev.Metadata))
	for k := range ev.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, [2]string{k, ev.Metadata[k]})
	}
	return out
}

func slack(t *Target, ev *event.Event, body string) map[string]any {
	var fields []map[string]any
	for _, f := range facts(ev) {
		fields = append(fields, map[string]any{"title": f[0], "value": f[1], "short": true})
	}
	m := map[string]any{
		"username": "Strata",
		"text":     ev.Summary,
		"attachments": []map[string]any{{
			"color":     color(ev),
			"title":     ev.Summary,
			"text":      body,
			"fields":    fields,
			"mrkdwn_in": []string{"text"},
		}},
	}
	if t.Channel != "" {
		m["channel"] = t.Channel
	}
	return m
}

func teams(ev *event.Event, body string) map[string]any {
	var fs []map[string]string
	for _, f := range facts(ev) {
		fs = append(fs, map[string]string{"title": f[0], "value": f[1]})
	}
	titleColor := "good"
	if ev.Failed() {
		titleColor = "attention"
	}
	return map[string]any{
		"type": "message",
		"attachments": []map[string]any{{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"content": map[string]any{
				"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
				"type":    "AdaptiveCard",
				"version": "1.4",
				"body": []map[string]any{
					{"type": "TextBlock", "text": ev.Summary, "weight": "bolder", "size": "medium", "wrap": true, "color": titleColor},
					{"type": "TextBlock", "text": body, "wrap": true},
					{"type": "FactSet", "facts": fs},
				},
			},
		}},
	}
}

func alertmanager(ev *event.Event, body string) []map[string]any {
	labels := map[string]string{
		"alertname": "Strata" + ev.Reason,
		"severity":  ev.Severity,
		"reason":    ev.Reason,
		"kind":      ev.InvolvedObject.Kind,
		"name":      ev.InvolvedObject.Name,
		"namespace": ev.InvolvedObject.Namespace,
	}
	for k, v := range ev.Metadata {
		if _, taken := labels[k]; !taken {
			labels[k] = v
		}
	}
	a := map[string]any{
		"labels":      labels,
		"annotations": map[string]string{"summary": ev.Summary, "message": body, "revision": ev.Revision},
		"startsAt":    ev.Timestamp.Format(time.RFC3339Nano),
	}
	if !ev.Failed() {
		// An informational event or a recovery: resolved at once.
		a["endsAt"] = ev.Timestamp.Format(time.RFC3339Nano)
	}
	return []map[string]any{a}
}

func statusContext(ev *event.Event) string {
	return "strata/" + strings.ToLower(ev.InvolvedObject.Kind) + "/" + ev.InvolvedObject.Namespace + "/" + ev.InvolvedObject.Name
}

func description(ev *event.Event) string {
	d := ev.Summary
	if len(d) > 140 {
		d = d[:137] + "..."
	}
	return d
}

func githubStatus(ev *event.Event, _ string) map[string]string {
	state := "success"
	if ev.Failed() {
		state = "failure"
	}
	return map[string]string{"state": state, "context": statusContext(ev), "description": description(ev)}
}

func gitlabStatus(ev *event.Event, _ string) map[string]string {
	state := "success"
	if ev.Failed() {
		state = "failed"
	}
	return map[string]string{"state": state, "name": statusContext(ev), "description": description(ev)}
}

// github splits a repository URL into the API base and owner/repo:
// https://github.com/o/r → https://api.github.com, o/r; any other host is
// GitHub Enterprise: https://host/api/v3.
func github(address string) (string, string, error) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSuffix(address, "/"), ".git"))
	if err != nil || u.Host == "" {
		return "", "", &Error{msg: "github-status address is not a repository URL"}
	}
	repo := strings.Trim(u.Path, "/")
	if strings.Count(repo, "/") != 1 {
		return "", "", &Error{msg: "github-status address must be https://<host>/<owner>/<repository>"}
	}
	if u.Host == "github.com" {
		return "https://api.github.com", repo, nil
	}
	return u.Scheme + "://" + u.Host + "/api/v3", repo, nil
}

// gitlab splits a project URL into the host and the project path.
func gitlab(address string) (string, string, error) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSuffix(address, "/"), ".git"))
	if err != nil || u.Host == "" {
		return "", "", &Error{msg: "gitlab-status address is not a project URL"}
	}
	project := strings.Trim(u.Path, "/")
	if !strings.Contains(project, "/") {
		return "", "", &Error{msg: "gitlab-status address must be https://<host>/<group>/<project>"}
	}
	return u.Scheme + "://" + u.Host, project, nil
}
