// Package controller runs the composition engine in the manager: the XRD
// controller (from package xrd), the Composition controller that validates
// and snapshots Compositions into CompositionRevisions, and, for each
// established XRD, a composite (XR) controller and a claim controller.
// Rendering is delegated to package render; this package owns the clients,
// watches, server-side apply, status and events.
package controller
