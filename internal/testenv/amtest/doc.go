// Package amtest starts a real Alertmanager (bin/alertmanager, built by
// `make tools`) for tests, with one webhook receiver that posts to a URL the
// test gives (Strata's Alertmanager endpoint). It is a test helper: imported
// only by tests, it knows nothing about Strata's controllers.
package amtest
