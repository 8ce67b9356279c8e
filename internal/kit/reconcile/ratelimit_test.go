package reconcile_test

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrlreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/strata-dev/strata/internal/kit/reconcile"
)

func request(i int) ctrlreconcile.Request {
	return ctrlreconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team-a", Name: fmt.Sprintf("app-%d", i)}}
}

func TestRateLimiterRetryDelays(t *testing.T) {
	cases := map[string]struct {
		upTo     time.Duration // 0: RateLimiter(), else RateLimiterUpTo(upTo)
		failures int           // failures in a row before the one measured
		want     time.Duration
	}{
		"first failure":                    {failures: 0, want: 5 * time.Millisecond},
		"fifth failure doubles four times": {failures: 4, want: 80 * time.Millisecond},
		// controller-runtime's default would wait 164 s here, and 1000 s
		// after a few more.
		"fifteenth failure waits a minute": {failures: 15, want: time.Minute},
		"fortieth failure still a minute":  {failures: 40, want: time.Minute},
		"a poll interval caps it":          {upTo: 10 * time.Second, failures: 15, want: 10 * time.Second},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			l := reconcile.RateLimiter()
			if tc.upTo > 0 {
				l = reconcile.RateLimiterUpTo(tc.upTo)
			}
			for range tc.failures {
				l.When(request(0))
			}
			if got := l.When(request(0)); got != tc.want {
				t.Errorf("delay after %d failures = %s, want %s", tc.failures, got, tc.want)
			}
		})
	}
}

// One object's failures must not delay another's first retry, however many
// objects fail at once (after an API server outage, every object of a
// controller does), and a success starts an object's delays over.
func TestRateLimiterKeepsObjectsApart(t *testing.T) {
	l := reconcile.RateLimiter()
	for i := range 5000 {
		for range 10 {
			l.When(request(i))
		}
	}
	if got := l.When(request(5000)); got != reconcile.MinRetryDelay {
		t.Errorf("first retry of an object after 5000 others failed 10 times each: %s, want %s", got, reconcile.MinRetryDelay)
	}
	l.Forget(request(7))
	if got := l.When(request(7)); got != reconcile.MinRetryDelay {
		t.Errorf("first retry after a success: %s, want %s", got, reconcile.MinRetryDelay)
	}
	if n := l.NumRequeues(request(8)); n != 10 {
		t.Errorf("object 8 failed 10 times, NumRequeues = %d", n)
	}
}
