// Package render is the pure heart of the composition engine: given a
// composite resource, a Composition and the observed composed resources it
// computes the desired composed resources, their readiness, the XR's status
// fields and connection details. It also runs the publish-time checks of a
// Composition. It has no Kubernetes client, so `strata render` and
// `strata validate` run exactly the code the controllers run.
package render
