// Package rollout benchmarks progressive delivery on a local cluster
// (`strata up` in a subprocess, as users run it): N Rollouts (default 100)
// step through a 3-step canary (setWeight 25, pause, setWeight 75, then
// promotion) at once after one burst of template changes. It reports the
// time each step takes beyond its pause (median and 95th percentile over the
// Rollouts) and the API writes per Rollout per step, next to the lower bound
// of the same API server patching as many objects directly. Results go to
// docs/benchmarks.md.
package rollout
