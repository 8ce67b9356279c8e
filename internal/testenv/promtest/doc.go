// Package promtest runs a real Prometheus (bin/prometheus from `make tools`)
// for integration tests, scraping loopback /metrics endpoints that the test
// itself serves every second, so a test decides what a query returns. It is
// imported only by tests and knows nothing about Strata's kinds.
package promtest
