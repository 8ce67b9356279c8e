// Package verify tests Sync verification end to end inside one process: the
// gitops and delivery subsystems against a real API server, a real
// Prometheus scraping an exporter the test controls, and Git repositories
// on disk. It is the only place both subsystems meet, through the API
// server, as they do in the manager.
package verify
