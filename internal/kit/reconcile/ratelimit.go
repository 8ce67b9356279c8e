package reconcile

import (
	"time"

	"k8s.io/client-go/util/workqueue"
	ctrlreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// The retry delays of a failed reconcile. controller-runtime's own default
// doubles from 5 ms up to 1000 s: after about fifteen failures in a row (an
// API server outage, a conflict repeated while another controller scales a
// Deployment) an object waited minutes, and up to a quarter of an hour,
// after its cause had gone. With these bounds it waits at most MaxRetryDelay.
const (
	// MinRetryDelay is the delay after the first failure; each further
	// failure in a row doubles it.
	MinRetryDelay = 5 * time.Millisecond
	// MaxRetryDelay is the longest a failing object waits for its next try.
	MaxRetryDelay = 60 * time.Second
)

// RateLimiter is the retry policy every Strata controller's queue uses (its
// controller.Options.RateLimiter): per object, MinRetryDelay doubled on each
// failure in a row up to MaxRetryDelay, and reset by a success. There is no
// limit shared by all objects: one object's failures never delay another's
// retry (the API server protects itself with API Priority and Fairness).
func RateLimiter() workqueue.TypedRateLimiter[ctrlreconcile.Request] {
	return RateLimiterUpTo(MaxRetryDelay)
}

// RateLimiterUpTo is RateLimiter with another longest delay, for a
// controller whose objects poll an outside system: max is then its poll
// interval, so an object recovers within a poll of the system coming back.
func RateLimiterUpTo(max time.Duration) workqueue.TypedRateLimiter[ctrlreconcile.Request] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[ctrlreconcile.Request](MinRetryDelay, max)
}
