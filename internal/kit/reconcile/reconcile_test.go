package reconcile_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrlreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/strata-dev/strata/internal/kit/reconcile"
)

func TestJitter(t *testing.T) {
	cases := map[string]struct {
		d        time.Duration
		min, max time.Duration
	}{
		"zero stays zero":         {d: 0, min: 0, max: 0},
		"negative is unchanged":   {d: -time.Second, min: -time.Second, max: -time.Second},
		"a nanosecond":            {d: 1, min: 1, max: 1},
		"a minute up to 10% more": {d: time.Minute, min: time.Minute, max: time.Minute + 6*time.Second},
		"two seconds":             {d: 2 * time.Second, min: 2 * time.Second, max: 2200 * time.Millisecond},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 1000 {
				got := reconcile.Jitter(tc.d)
				if got < tc.min || got > tc.max {
					t.Fatalf("Jitter(%s) = %s, want within [%s, %s]", tc.d, got, tc.min, tc.max)
				}
				seen[got] = true
			}
			if tc.max > tc.min && len(seen) < 2 {
				t.Errorf("Jitter(%s) gave the same value 1000 times: no spread", tc.d)
			}
		})
	}
}

func TestTerminal(t *testing.T) {
	cause := errors.New("composition \"x\" not found")
	cases := map[string]struct {
		err        error
		terminal   bool
		reason     string
		message    string
		wrapsCause bool
	}{
		"nil": {err: reconcile.Terminal("CompositionInvalid", nil)},
		"plain error is transient": {
			err: cause, reason: "", message: cause.Error(), wrapsCause: true,
		},
		"terminal keeps the message and the reason": {
			err: reconcile.Terminal("CompositionInvalid", cause), terminal: true,
			reason: "CompositionInvalid", message: cause.Error(), wrapsCause: true,
		},
		"wrapped terminal stays terminal": {
			err:      fmt.Errorf("cannot select: %w", reconcile.Terminal("CompositionInvalid", cause)),
			terminal: true, reason: "CompositionInvalid",
			message: "cannot select: " + cause.Error(), wrapsCause: true,
		},
		"outermost reason wins": {
			err:      reconcile.Terminal("Outer", fmt.Errorf("x: %w", reconcile.Terminal("Inner", cause))),
			terminal: true, reason: "Outer", message: "x: " + cause.Error(), wrapsCause: true,
		},
		"reasoned is retried but keeps its reason": {
			err:      fmt.Errorf("cannot bind: %w", reconcile.Reasoned("ClaimNotAllowed", cause)),
			terminal: false, reason: "ClaimNotAllowed",
			message: "cannot bind: " + cause.Error(), wrapsCause: true,
		},
		"reasoned nil is nil": {err: reconcile.Reasoned("ClaimNotAllowed", nil)},
		"controller-runtime's terminal error has no reason": {
			err: ctrlreconcile.TerminalError(cause), terminal: true, reason: "",
			message: "terminal error: " + cause.Error(), wrapsCause: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := reconcile.IsTerminal(tc.err); got != tc.terminal {
				t.Errorf("IsTerminal = %v, want %v", got, tc.terminal)
			}
			// controller-runtime decides "do not requeue" with exactly this test.
			if tc.err != nil {
				if got := errors.Is(tc.err, ctrlreconcile.TerminalError(nil)); got != tc.terminal {
					t.Errorf("errors.Is(err, reconcile.TerminalError(nil)) = %v, want %v", got, tc.terminal)
				}
			}
			if diff := cmp.Diff(tc.reason, reconcile.ReasonOf(tc.err)); diff != "" {
				t.Errorf("ReasonOf (-want +got):\n%s", diff)
			}
			if tc.err == nil {
				return
			}
			if diff := cmp.Diff(tc.message, tc.err.Error()); diff != "" {
				t.Errorf("Error() (-want +got):\n%s", diff)
			}
			if got := errors.Is(tc.err, cause); got != tc.wrapsCause {
				t.Errorf("errors.Is(err, cause) = %v, want %v", got, tc.wrapsCause)
			}
		})
	}
}

func TestIsStale(t *testing.T) {
	gr := schema.GroupResource{Group: "delivery.strata.dev", Resource: "rollouts"}
	optimistic := apierrors.NewConflict(gr, "web", errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	fieldManager := apierrors.NewApplyConflict([]metav1.StatusCause{{
		Type:    metav1.CauseTypeFieldManagerConflict,
		Message: `conflict with "kubectl-edit" using v1: .spec.replicas`,
		Field:   ".spec.replicas",
	}}, `Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .spec.replicas`)
	cases := map[string]struct {
		err  error
		want bool
	}{
		"nil":                                {err: nil, want: false},
		"an optimistic-lock conflict":        {err: optimistic, want: true},
		"a wrapped optimistic-lock conflict": {err: fmt.Errorf("cannot patch ReplicaSet web-abc: %w", optimistic), want: true},
		"an apply conflict with another field manager": {err: fieldManager, want: false},
		"a terminal error wrapping a conflict":         {err: reconcile.Terminal("Conflict", optimistic), want: false},
		"a reasoned error wrapping a conflict":         {err: reconcile.Reasoned("ApplyFailed", optimistic), want: true},
		"not found":                                    {err: apierrors.NewNotFound(gr, "web"), want: false},
		"a plain error":                                {err: errors.New("connection refused"), want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := reconcile.IsStale(tc.err); got != tc.want {
				t.Errorf("IsStale(%v) = %t, want %t", tc.err, got, tc.want)
			}
		})
	}
}
