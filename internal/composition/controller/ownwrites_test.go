package controller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestOwnWrites: an object read with a resourceVersion older than the
// engine's own last write of it lags; one as new or newer (someone wrote it
// since), or one the engine never wrote, does not.
func TestOwnWrites(t *testing.T) {
	obj := func(uid, rv string) *metav1.ObjectMeta {
		return &metav1.ObjectMeta{UID: types.UID(uid), ResourceVersion: rv}
	}
	w := newOwnWrites()
	w.record(obj("a", "100"))
	cases := map[string]struct {
		read *metav1.ObjectMeta
		want bool
	}{
		"older than the write lags":                    {obj("a", "99"), true},
		"the write itself does not":                    {obj("a", "100"), false},
		"a later write does not":                       {obj("a", "150"), false},
		"an object never written does not":             {obj("b", "1"), false},
		"a version that is no number trusts the cache": {obj("a", "x"), false},
	}
	for name, tc := range cases {
		if got := w.lags(tc.read); got != tc.want {
			t.Errorf("%s: lags = %v, want %v", name, got, tc.want)
		}
	}
	w.forget("a")
	if w.lags(obj("a", "99")) {
		t.Error("a forgotten object still lags")
	}
}
