// Package deliver turns one event into the HTTP request a provider type
// expects (generic JSON, generic-hmac, Slack, Microsoft Teams, Alertmanager,
// GitHub and GitLab commit statuses) and sends it. It has no Kubernetes
// client: the caller resolves addresses and tokens. Errors never contain the
// address (it may be a credential) or the token.
package deliver
