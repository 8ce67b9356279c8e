// Package v1alpha1 is the composition API (group apiextensions.strata.dev):
// CompositeResourceDefinition defines a composite kind and its claim,
// Composition says how to compose it with CEL templates, CompositionRevision
// snapshots a Composition, and EnvironmentConfig holds shared data.
// It holds only types; the engine lives in internal/composition.
package v1alpha1
