// Package composition is the root of Strata's composition engine: XRDs,
// CEL Compositions, composite resources and claims. The work is split by
// concern into subpackages: cel (expressions), dag (ordering), render (pure
// XR + Composition + observed -> desired), xrd (XRD -> CRDs) and controller
// (the XR, claim and Composition reconcilers).
package composition
