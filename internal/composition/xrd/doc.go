// Package xrd turns a CompositeResourceDefinition into the CRDs of its
// composite and claim kinds (adding Strata's reserved fields and printer
// columns) and runs the controller that keeps those CRDs applied and reports
// Established and Offered. It knows nothing about Compositions or rendering.
package xrd
