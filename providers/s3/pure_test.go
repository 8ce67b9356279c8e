package s3

import (
	"testing"

	s3v1 "github.com/strata-dev/strata/providers/s3/apis/s3/v1alpha1"
)

func TestSamePolicy(t *testing.T) {
	cases := map[string]struct {
		a, b string
		want bool
	}{
		"both empty":           {"", "", true},
		"one empty":            {`{"a":1}`, "", false},
		"whitespace and order": {`{"a": 1, "b": [1,2]}`, `{"b":[1,2],"a":1}`, true},
		"different":            {`{"a":1}`, `{"a":2}`, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := samePolicy(tc.a, tc.b); got != tc.want {
				t.Errorf("samePolicy = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestSameRulesAndBucketNames(t *testing.T) {
	f := false
	a := []s3v1.LifecycleRule{{ID: "x", ExpirationDays: 7}, {ID: "y", Prefix: "p/", ExpirationDays: 1, Enabled: &f}}
	b := []s3v1.LifecycleRule{{ID: "y", Prefix: "p/", ExpirationDays: 1, Enabled: &f}, {ID: "x", ExpirationDays: 7}}
	if !sameRules(a, b) {
		t.Error("same rules in another order differ")
	}
	if sameRules(a, b[:1]) {
		t.Error("different rules are the same")
	}
	for name, ok := range map[string]bool{"my-bucket": true, "a.b.c": true, "ab": false, "Upper": false, `a"; DROP TABLE x; --`: false} {
		if bucketName.MatchString(name) != ok {
			t.Errorf("bucket name %q valid = %t, want %t", name, !ok, ok)
		}
	}
}
