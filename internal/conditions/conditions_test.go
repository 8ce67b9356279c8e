package conditions

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type obj struct {
	gen   int64
	conds []metav1.Condition
}

func (o *obj) GetGeneration() int64               { return o.gen }
func (o *obj) GetConditions() *[]metav1.Condition { return &o.conds }

func TestTransitions(t *testing.T) {
	cases := map[string]struct {
		mark            func(Setter)
		wantReady       metav1.ConditionStatus
		wantReconciling bool
		wantStalled     bool
	}{
		"new object reads as in progress": {mark: EnsureInitialized, wantReady: metav1.ConditionFalse, wantReconciling: true},
		"ready clears progress":           {mark: func(o Setter) { MarkProgressing(o, "A", "a"); MarkReady(o, "B", "b") }, wantReady: metav1.ConditionTrue},
		"stalled clears reconciling":      {mark: func(o Setter) { MarkProgressing(o, "A", "a"); MarkStalled(o, "C", "c") }, wantReady: metav1.ConditionFalse, wantStalled: true},
		"failed is neither":               {mark: func(o Setter) { MarkStalled(o, "C", "c"); MarkFailed(o, "D", "d") }, wantReady: metav1.ConditionFalse},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := &obj{gen: 3}
			tc.mark(o)
			r := Get(o, Ready)
			if r == nil || r.Status != tc.wantReady || r.ObservedGeneration != 3 {
				t.Fatalf("Ready = %+v, want status %s at generation 3", r, tc.wantReady)
			}
			if got := IsTrue(o, Reconciling); got != tc.wantReconciling {
				t.Errorf("Reconciling = %v, want %v", got, tc.wantReconciling)
			}
			if got := IsTrue(o, Stalled); got != tc.wantStalled {
				t.Errorf("Stalled = %v, want %v", got, tc.wantStalled)
			}
		})
	}
}

func TestEnsureInitializedKeepsExisting(t *testing.T) {
	o := &obj{}
	MarkReady(o, ReasonAvailable, "ok")
	EnsureInitialized(o)
	if !IsTrue(o, Ready) {
		t.Fatal("EnsureInitialized overwrote an existing Ready condition")
	}
}
