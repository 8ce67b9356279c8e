// Package promotion runs promotion pipelines: the Stage controller watches
// each stage's Sync (and the stage's own AnalysisRuns) to learn which
// revisions are verified there, and moves revisions verified upstream into
// the stage through its gates (soak, approvals, windows), one Promotion at a
// time, by pinning the stage's GitRepository or by committing to its Git
// branch. It acts with the Stage namespace's rights. It knows the gitops and
// analysis APIs (it reads Syncs, writes GitRepositories and creates
// AnalysisRuns), never the code of the controllers that run them.
package promotion
