//go:build tools

// Package tools pins the version of versitygw that `make tools` builds.
package tools

import _ "github.com/versity/versitygw/cmd/versitygw"
