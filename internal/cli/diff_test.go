package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFieldDiff(t *testing.T) {
	cases := map[string]struct {
		live, want map[string]any
		diff       []string
	}{
		"same":    {map[string]any{"a": 1}, map[string]any{"a": 1}, nil},
		"changed": {map[string]any{"spec": map[string]any{"replicas": 1}}, map[string]any{"spec": map[string]any{"replicas": 3}}, []string{"spec.replicas: 1 -> 3"}},
		"added and removed": {
			map[string]any{"data": map[string]any{"old": "x"}},
			map[string]any{"data": map[string]any{"new": "y"}},
			[]string{`data.new: (none) -> "y"`, `data.old: "x" -> (removed)`},
		},
		"list item": {map[string]any{"l": []any{"a", "b"}}, map[string]any{"l": []any{"a", "c"}}, []string{`l[1]: "b" -> "c"`}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if d := cmp.Diff(tc.diff, fieldDiff(tc.live, tc.want)); d != "" {
				t.Errorf("fieldDiff (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseUpSync(t *testing.T) {
	url, branch, path, err := parseUpSync("https://example.invalid/org/repo.git#clusters/local")
	if err != nil || url != "https://example.invalid/org/repo.git" || branch != "" || path != "clusters/local" {
		t.Errorf("remote: %q %q %q %v", url, branch, path, err)
	}
	if _, _, _, err := parseUpSync(t.TempDir() + "#x"); err == nil {
		t.Error("a folder that is not a Git repository was accepted")
	}
}
