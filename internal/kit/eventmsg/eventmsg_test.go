package eventmsg

import (
	"fmt"
	"strings"
	"testing"
)

func TestList(t *testing.T) {
	var many []string
	for i := range 500 {
		many = append(many, fmt.Sprintf("ConfigMap team-a/config-%03d", i))
	}
	cases := map[string]struct {
		items    []string
		wantTail string
		wantAll  bool
	}{
		"short list whole": {items: many[:3], wantAll: true},
		"long list cut":    {items: many, wantTail: "more"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := List("pruned ", tc.items)
			if len(got) > MaxLen {
				t.Fatalf("message is %d long, over %d", len(got), MaxLen)
			}
			if tc.wantAll && got != "pruned "+strings.Join(tc.items, ", ") {
				t.Fatalf("List() = %q", got)
			}
			if tc.wantTail != "" {
				var shown, more int
				i := strings.LastIndex(got, " … and ")
				if i < 0 {
					t.Fatalf("List() = %q, want a '… and N more' tail", got)
				}
				fmt.Sscanf(got[i:], " … and %d more", &more)
				shown = strings.Count(got[:i], "ConfigMap")
				if shown+more != len(tc.items) {
					t.Fatalf("shows %d and says %d more, want %d in all", shown, more, len(tc.items))
				}
			}
		})
	}
	if got := Truncate(strings.Repeat("é", 1000)); len(got) > MaxLen {
		t.Fatalf("Truncate() is %d long", len(got))
	}
}
