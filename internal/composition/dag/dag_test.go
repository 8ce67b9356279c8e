package dag

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSort(t *testing.T) {
	cases := map[string]struct {
		g         Graph
		want      []string
		wantCycle []string
		wantErr   bool
	}{
		"empty":       {g: Graph{}, want: nil},
		"independent": {g: Graph{"b": nil, "a": nil}, want: []string{"a", "b"}},
		"chain":       {g: Graph{"app": {"db"}, "db": {"role"}, "role": nil}, want: []string{"role", "db", "app"}},
		"diamond": {g: Graph{"d": {"b", "c"}, "b": {"a"}, "c": {"a"}, "a": nil},
			want: []string{"a", "b", "c", "d"}},
		"cycle":   {g: Graph{"a": {"b"}, "b": {"c"}, "c": {"a"}}, wantCycle: []string{"a", "b", "c", "a"}},
		"self":    {g: Graph{"a": {"a"}}, wantCycle: []string{"a", "a"}},
		"unknown": {g: Graph{"a": {"zz"}}, wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Sort(tc.g)
			var ce *CycleError
			switch {
			case tc.wantCycle != nil:
				if !errors.As(err, &ce) {
					t.Fatalf("err = %v, want a cycle", err)
				}
				if d := cmp.Diff(tc.wantCycle, ce.Cycle); d != "" {
					t.Errorf("cycle (-want +got):\n%s", d)
				}
				return
			case tc.wantErr:
				if err == nil {
					t.Fatal("want an error")
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("Sort (-want +got):\n%s", d)
			}
		})
	}
}

func TestReverse(t *testing.T) {
	if d := cmp.Diff([]string{"app", "db", "role"}, Reverse([]string{"role", "db", "app"})); d != "" {
		t.Error(d)
	}
}
