// Package ssa is the one server-side apply helper every Strata writer uses:
// it applies with the writer's own field manager (ownership.Owner.FieldManager),
// forces ownership only when the writer's ownership decision says the object
// is its own, skips an apply that would change nothing (ownership.Unchanged),
// and moves the fields an older Strata applied with the shared "strata" field
// manager to the writer's own (MoveManagers, Migrate), so they are neither
// orphaned nor owned twice.
//
// It knows nothing about what a writer renders or which objects it may touch:
// the caller decides that with kit/ownership and passes the Policy.
package ssa
