package reconcile

import (
	"errors"
	"math/rand/v2"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Spread is how far Jitter stretches an interval: up to a tenth of it.
const Spread = 10

// Jitter returns d stretched by a random amount of up to d/Spread, so many
// objects requeued with the same interval do not all wake at once. It never
// returns less than d; d <= 0 is returned unchanged.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + time.Duration(rand.Int64N(int64(d)/Spread+1))
}

// terminalMarker is what makes errors.Is(err, reconcile.TerminalError(nil))
// true for a Terminal error, so controller-runtime does not requeue it.
var terminalMarker = ctrlreconcile.TerminalError(errors.New("user error"))

// terminal is a user error: retrying cannot fix it, only a change by the
// user can. Its message is the wrapped error's, without the "terminal
// error: " prefix controller-runtime's own type adds, so conditions read
// as the cause.
type terminal struct {
	reason string
	err    error
}

func (t *terminal) Error() string   { return t.err.Error() }
func (t *terminal) Unwrap() []error { return []error{t.err, terminalMarker} }

// Terminal marks err as a user error with the condition reason to report
// (e.g. "CompositionInvalid"). controller-runtime does not retry it (it is a
// reconcile.TerminalError to errors.Is); the object is expected to be marked
// Stalled with ReasonOf(err) until its spec changes. Terminal(reason, nil)
// is nil. Wrapping the result with %w keeps both properties.
func Terminal(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &terminal{reason: reason, err: err}
}

// IsTerminal reports whether err, or an error it wraps, is a user error:
// one made by Terminal or by controller-runtime's reconcile.TerminalError.
func IsTerminal(err error) bool {
	return err != nil && errors.Is(err, ctrlreconcile.TerminalError(nil))
}

// reasoned is an error the controller retries (with backoff) but reports
// with a specific condition reason.
type reasoned struct {
	reason string
	err    error
}

func (r *reasoned) Error() string { return r.err.Error() }
func (r *reasoned) Unwrap() error { return r.err }

// Reasoned attaches a condition reason to err without making it terminal:
// controller-runtime retries it with backoff, and ReasonOf(err) names the
// reason to report meanwhile. Reasoned(reason, nil) is nil.
func Reasoned(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &reasoned{reason: reason, err: err}
}

// ReasonOf returns the reason given to Terminal or Reasoned for err (the outermost one
// when several are wrapped), or "" when err carries none.
func ReasonOf(err error) string {
	var t *terminal
	if errors.As(err, &t) {
		return t.reason
	}
	var r *reasoned
	if errors.As(err, &r) {
		return r.reason
	}
	return ""
}

// IsStale reports whether err is a write the API server refused because the
// object changed since it was read (a 409 Conflict from an optimistic lock or
// a delete precondition): the reconcile should start again from a fresh read
// and report nothing, since what it decided came from an old state. A
// server-side apply that conflicts with another field manager is also a 409,
// but it is not stale: a fresh read decides the same, so it is reported (it
// carries a FieldManagerConflict cause). A Terminal error is never stale.
func IsStale(err error) bool {
	if err == nil || IsTerminal(err) || !apierrors.IsConflict(err) {
		return false
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		if d := status.Status().Details; d != nil {
			for _, c := range d.Causes {
				if c.Type == metav1.CauseTypeFieldManagerConflict {
					return false
				}
			}
		}
	}
	return true
}
