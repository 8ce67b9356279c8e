// Package scheme is the wiring that puts every Strata API group (apis/ and
// each provider's apis/) and the built-in Kubernetes kinds into one
// runtime.Scheme for the manager, the CLI and tests. It holds no API types
// and no controller logic; a new API group adds its AddToScheme here, which
// keeps apis/ a leaf that imports nothing of Strata's.
package scheme
