//go:build tools

// Package tools pins the Gateway API release whose CRDs (HTTPRoute, Gateway,
// GatewayClass, ...) `make tools` copies out of the module into the tools
// cache, as it does kwok's stages. `strata up` installs them, so Rollouts that
// route traffic with Gateway API weights have HTTPRoutes to act on. Nothing is
// built from this module.
package tools

import _ "sigs.k8s.io/gateway-api/apis/v1"
