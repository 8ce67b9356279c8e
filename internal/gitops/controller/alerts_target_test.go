package controller

import (
	"testing"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
)

func TestAlertRollbackTarget(t *testing.T) {
	ok := gitopsv1.ReasonReconciliationSucceeded
	cases := map[string]struct {
		status gitopsv1.SyncStatus
		want   string
	}{
		"verified first":          {gitopsv1.SyncStatus{LastVerifiedRevision: "v", LastHealthyRevision: "h"}, "v"},
		"verified is the bad one": {gitopsv1.SyncStatus{LastVerifiedRevision: "bad", LastHealthyRevision: "h"}, "h"},
		"healthy":                 {gitopsv1.SyncStatus{LastHealthyRevision: "h"}, "h"},
		"history when healthy is bad": {gitopsv1.SyncStatus{LastHealthyRevision: "bad", History: []gitopsv1.HistoryEntry{
			{Revision: "bad", Result: ok}, {Revision: "x", Result: gitopsv1.ReasonApplyFailed}, {Revision: "old", Result: ok}}}, "old"},
		"nothing earlier": {gitopsv1.SyncStatus{LastHealthyRevision: "bad", History: []gitopsv1.HistoryEntry{{Revision: "bad", Result: ok}}}, ""},
	}
	for name, tc := range cases {
		if got := alertRollbackTarget(&gitopsv1.Sync{Status: tc.status}, "bad"); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}
