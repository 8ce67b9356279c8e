// Package controller runs AnalysisRuns: it resolves a run's templates and
// arguments, takes each metric's measurements on schedule with the run's
// service account (Jobs, live objects, Secrets and ConfigMaps are read and
// created with the tenant's rights), records every measurement and decides
// the verdict with internal/delivery/analysis. It knows nothing about who
// created the run; Syncs, rollouts and promotions read the verdict from the
// run's status.
package controller
