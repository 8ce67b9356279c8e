// Package ssa is the one server-side apply helper every Strata writer uses:
// it applies with the writer's own field manager (ownership.Owner.FieldManager),
// forces ownership only when the writer's ownership decision says the object
// is its own, skips an apply that would change nothing (ownership.Unchanged),
// and moves the fields an older Strata applied with the shared "strata" field
// manager to the writer's own (MoveManagers, Migrate), so they are neither
// orphaned nor owned twice. An apply can name the UID of the object the
// writer read (Options.UID): an object deleted and made again by someone
// else in between is then refused (IsReplaced), not taken over.
//
// It knows nothing about what a writer renders or which objects it may touch:
// the caller decides that with kit/ownership and passes the Policy.
//
// Why not github.com/fluxcd/pkg/ssa (v0.78.0 builds with this Go): its
// ResourceManager.Apply reads the object, dry-runs the apply and then applies
// (three requests per object, where the composition engine skips an
// unchanged object with none), always forces ownership (Strata refuses what
// another owner holds, and creates without force), and its package imports
// Flux's fork of cli-utils (a second kstatus beside sigs.k8s.io/cli-utils,
// which kit/health uses) and kubectl. Its managed-fields merge
// (PatchReplaceFieldsManagers) is the idea MoveManagers implements on
// structured-merge-diff, already a dependency.
package ssa
