package controller

import (
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"time"
)

// jitter spreads periodic reconciles by up to 10% so many objects with the
// same interval do not all wake at once.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		d = time.Minute
	}
	return kitreconcile.Jitter(d)
}

// retryAfter is the wait after a failure: the interval, but at most 30s so
// a fixed credential or a pushed branch is picked up soon.
func retryAfter(interval time.Duration) time.Duration {
	if interval <= 0 || interval > 30*time.Second {
		return 30 * time.Second
	}
	return interval
}
