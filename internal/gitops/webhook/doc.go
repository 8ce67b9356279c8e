// Package webhook is the receiver for Git push events: GitHub (HMAC-SHA256
// in X-Hub-Signature-256), GitLab (X-Gitlab-Token) and a generic HMAC form
// (X-Signature: sha256=<hex>). A verified request asks the matching
// GitRepository to fetch now; anything unsigned or wrongly signed gets 401
// and changes nothing. It knows nothing about fetching or applying.
//
// It answers only these status codes: 202 (fetch requested, or a fetch
// requested earlier and not yet handled absorbs this delivery), 400 (the
// body cannot be read), 401 (unknown repository, no webhook secret, bad or
// missing signature: the same answer, so repositories cannot be probed),
// 404 (a path that names no repository), 405 (not POST), 413 (a body over
// MaxBody), 429 (more than the per-repository rate, with Retry-After) and
// 500 (the GitRepository could not be annotated).
//
// It also serves Alertmanager's webhook at AlertPathPrefix +
// "<namespace>/<name>" of a Receiver (notification.strata.dev), authenticated
// by the Receiver's token as a bearer token or X-Signature HMAC: a firing
// alert marks the Syncs of that namespace whose spec.rollback.onAlerts
// matchers match it (gitopsv1.AlertRollbackAnnotation); the Sync controller
// rolls them back; and it marks the Rollouts (delivery.strata.dev) of that
// namespace whose spec.abortOn.alerts match it, with a canary in progress
// (deliveryv1.AbortAlertAnnotation); the Rollout controller aborts them. It
// never touches another namespace.
package webhook
