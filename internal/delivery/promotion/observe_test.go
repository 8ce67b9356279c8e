package promotion

import (
	"testing"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
)

// TestSyncVerified: a Stage takes a revision as verified by its Sync only
// from the Sync's record of it, never from a verdict about it that is not a
// success, and names the run when the verdict is about that revision.
func TestSyncVerified(t *testing.T) {
	const c1, c2 = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	rev := func(c string) string { return "main@sha1:" + c }
	verdict := func(c, phase string) *gitopsv1.VerificationStatus {
		return &gitopsv1.VerificationStatus{Revision: rev(c), RunName: "app-verify-" + c[:4], Phase: phase}
	}
	cases := []struct {
		name         string
		lastVerified string
		verification *gitopsv1.VerificationStatus
		wantRun      string
		wantOK       bool
	}{
		{name: "verified by its run", lastVerified: rev(c1), verification: verdict(c1, deliveryv1.PhaseSuccessful), wantRun: "app-verify-1111", wantOK: true},
		{name: "its run still running", lastVerified: rev(c2), verification: verdict(c1, deliveryv1.PhaseRunning)},
		// The state a merge patch from a stale read once left: the newer
		// run's phase beside a record of its success.
		{name: "recorded verified but its verdict is not a success", lastVerified: rev(c1), verification: verdict(c1, deliveryv1.PhaseRunning)},
		{name: "its run failed", lastVerified: rev(c2), verification: verdict(c1, deliveryv1.PhaseFailed)},
		{name: "rolled back to a revision verified before", lastVerified: rev(c1), verification: verdict(c2, deliveryv1.PhaseFailed), wantOK: true},
		{name: "never verified", verification: nil},
		{name: "another revision verified", lastVerified: rev(c2), verification: verdict(c2, deliveryv1.PhaseSuccessful)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &gitopsv1.Sync{}
			s.Status.LastVerifiedRevision = tc.lastVerified
			s.Status.Verification = tc.verification
			run, ok := syncVerified(s, c1)
			if run != tc.wantRun || ok != tc.wantOK {
				t.Errorf("syncVerified = %q, %v; want %q, %v", run, ok, tc.wantRun, tc.wantOK)
			}
		})
	}
}
