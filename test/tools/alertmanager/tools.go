//go:build tools

// Package tools pins the version of Alertmanager that `make tools` builds for
// the notification tests (v0.31.1: later versions embed a UI build that the
// module zip lacks).
package tools

import _ "github.com/prometheus/alertmanager/cmd/alertmanager"
