// Package webhook is the receiver for Git push events: GitHub (HMAC-SHA256
// in X-Hub-Signature-256), GitLab (X-Gitlab-Token) and a generic HMAC form
// (X-Signature: sha256=<hex>). A verified request asks the matching
// GitRepository to fetch now; anything unsigned or wrongly signed gets 401
// and changes nothing. It knows nothing about fetching or applying.
package webhook
