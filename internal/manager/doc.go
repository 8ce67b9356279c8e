// Package manager builds Strata's controller-runtime manager: one scheme with
// every Strata API, shared options, and the list of subsystems (composition,
// providers, delivery) that register their controllers with it. The same
// manager runs inside `strata up` and as `strata manager` in a real cluster.
// It holds no controller logic of its own.
package manager
