// Package ownership decides whether a writer Strata acts for (a composite
// resource, a Sync) may write an existing object, and names the field manager
// each writer applies with. The rule is the same everywhere: create what does
// not exist, update what the writer controls, adopt only what its current
// owner handed over with the adopt annotation, and refuse everything else with
// a ResourceConflict error naming the object and its owner.
//
// It knows nothing about how a writer renders or applies objects.
package ownership
