package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-dev/strata/internal/gitops/apply"
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

func TestMaskSecretValues(t *testing.T) {
	type obj = map[string]any
	cases := map[string]struct {
		live, want         obj
		maskedLive, masked obj
		diff               []string
	}{
		"same value": {
			obj{"data": obj{"a": "eA=="}}, obj{"data": obj{"a": "eA=="}},
			obj{"data": obj{"a": "***"}}, obj{"data": obj{"a": "***"}}, nil,
		},
		"changed value": {
			obj{"data": obj{"a": "eA=="}}, obj{"data": obj{"a": "eQ=="}},
			obj{"data": obj{"a": "*** (before)"}}, obj{"data": obj{"a": "*** (after)"}},
			[]string{`data.a: "*** (before)" -> "*** (after)"`},
		},
		"added and removed keys": {
			obj{"data": obj{"old": "eA=="}}, obj{"data": obj{"new": "eQ=="}},
			obj{"data": obj{"old": "***"}}, obj{"data": obj{"new": "***"}},
			[]string{`data.new: (none) -> "***"`, `data.old: "***" -> (removed)`},
		},
		"data appears": {
			obj{}, obj{"data": obj{"a": "eA=="}},
			obj{}, obj{"data": obj{"a": "***"}},
			[]string{`data.a: (none) -> "***"`},
		},
		"stringData": {
			obj{"stringData": obj{"a": "x"}}, obj{"stringData": obj{"a": "y"}},
			obj{"stringData": obj{"a": "*** (before)"}}, obj{"stringData": obj{"a": "*** (after)"}},
			[]string{`stringData.a: "*** (before)" -> "*** (after)"`},
		},
		"last-applied annotation, other annotations and type untouched": {
			obj{"type": "Opaque", "metadata": obj{"annotations": obj{lastApplied: `{"data":{"a":"eA=="}}`, "team": "a"}}},
			obj{"type": "Opaque", "metadata": obj{"annotations": obj{lastApplied: `{"data":{"a":"eQ=="}}`, "team": "b"}}},
			obj{"type": "Opaque", "metadata": obj{"annotations": obj{lastApplied: "*** (before)", "team": "a"}}},
			obj{"type": "Opaque", "metadata": obj{"annotations": obj{lastApplied: "*** (after)", "team": "b"}}},
			[]string{`metadata.annotations.kubectl.kubernetes.io/last-applied-configuration: "*** (before)" -> "*** (after)"`, `metadata.annotations.team: "a" -> "b"`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			maskSecretValues(tc.live, tc.want)
			if d := cmp.Diff(tc.maskedLive, tc.live); d != "" {
				t.Errorf("live (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.masked, tc.want); d != "" {
				t.Errorf("want (-want +got):\n%s", d)
			}
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

// TestHealthNote: diff reads an object's health with kit/health, as the Sync
// controller and trace do.
func TestHealthNote(t *testing.T) {
	e := apply.Entry{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "ns", Name: "web"}
	cases := map[string]struct {
		obj  string
		ok   bool
		want string
	}{
		"config map is ready": {obj: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web","namespace":"ns"}}`, ok: true},
		"deployment not yet observed": {
			obj:  `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"ns","generation":2},"status":{"observedGeneration":1}}`,
			want: "Deployment/ns/web InProgress",
		},
		"deployment available": {
			obj: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"ns","generation":1},"spec":{"replicas":1},
				"status":{"observedGeneration":1,"replicas":1,"updatedReplicas":1,"readyReplicas":1,"availableReplicas":1,
				"conditions":[{"type":"Available","status":"True"},{"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable"}]}}`,
			ok: true,
		},
		"claim without Ready waits (Strata's rule)": {
			obj:  `{"apiVersion":"example.org/v1","kind":"PostgreSQLInstance","metadata":{"name":"web","namespace":"ns"},"spec":{"compositionRef":{"name":"x"}}}`,
			want: "Deployment/ns/web InProgress",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON([]byte(tc.obj)); err != nil {
				t.Fatal(err)
			}
			note, ok := healthNote(e, u)
			if ok != tc.ok || !strings.HasPrefix(note, tc.want) {
				t.Errorf("healthNote() = %q, %v; want prefix %q, %v", note, ok, tc.want, tc.ok)
			}
		})
	}
}
