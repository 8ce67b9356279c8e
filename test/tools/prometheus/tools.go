//go:build tools

// Package tools pins the version of Prometheus that `make tools` builds. The
// HTTP API works without the npm-built UI, and the remove_all_sd build tag
// drops the service-discovery plugins the tests never use.
package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
