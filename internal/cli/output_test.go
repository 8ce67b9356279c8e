package cli

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/internal/composition/controller"
	"github.com/strata-dev/strata/internal/composition/xrd"
	gitopscontroller "github.com/strata-dev/strata/internal/gitops/controller"
	"github.com/strata-dev/strata/internal/install"
	"github.com/strata-dev/strata/internal/managed"
	"github.com/strata-dev/strata/internal/secrets/pushsecret"
	"github.com/strata-dev/strata/internal/testenv"
)

func testTree() *traceNode {
	return &traceNode{APIVersion: "platform.strata.dev/v1alpha1", Kind: "WebApp", Namespace: "team-a", Name: "shop", Synced: "True", Ready: "False", Reason: "Creating", Message: "waiting for: db",
		Children: []*traceNode{{APIVersion: "platform.strata.dev/v1alpha1", Kind: "XWebApp", Name: "shop-x1", Synced: "True", Ready: "False", Reason: "Creating", Message: "waiting for: db",
			Children: []*traceNode{
				{APIVersion: "v1", Kind: "ConfigMap", Namespace: "team-a", Name: "shop-config", Synced: "-", Ready: "True"},
				{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "team-a", Name: "shop", Synced: "-", Ready: "False", Reason: "InProgress", Message: "Available: 1/2"},
			}}}}
}

// TestTraceOutput: every -o format of trace, on one tree.
func TestTraceOutput(t *testing.T) {
	cases := map[string]string{
		"": `NAME                         SYNCED  READY  STATUS
WebApp/shop                  True    False  waiting for: db
└─ XWebApp/shop-x1           True    False  waiting for: db
   ├─ ConfigMap/shop-config  -       True   
   └─ Deployment/shop        -       False  Available: 1/2
`,
		"wide": `NAME                                  SYNCED  READY  REASON      STATUS
WebApp/shop (team-a)                  True    False  Creating    waiting for: db
└─ XWebApp/shop-x1                    True    False  Creating    waiting for: db
   ├─ ConfigMap/shop-config (team-a)  -       True               
   └─ Deployment/shop (team-a)        -       False  InProgress  Available: 1/2
`,
		"name": `webapp.platform.strata.dev/shop
xwebapp.platform.strata.dev/shop-x1
configmap/shop-config
deployment.apps/shop
`,
	}
	for format, want := range cases {
		t.Run("format "+format, func(t *testing.T) {
			var b bytes.Buffer
			if err := printTrace(&b, testTree(), format); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, b.String()); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	for _, format := range []string{"json", "yaml"} {
		t.Run("format "+format, func(t *testing.T) {
			var b bytes.Buffer
			if err := printTrace(&b, testTree(), format); err != nil {
				t.Fatal(err)
			}
			got := &traceNode{}
			if err := yaml.Unmarshal(b.Bytes(), got); err != nil {
				t.Fatalf("%v\n%s", err, b.String())
			}
			if d := cmp.Diff(testTree(), got); d != "" {
				t.Errorf("the document does not read back as the tree (-want +got):\n%s", d)
			}
			for _, key := range []string{"apiVersion", "kind", "namespace", "name", "synced", "ready", "reason", "message", "children"} {
				if !strings.Contains(b.String(), key) {
					t.Errorf("no field %q:\n%s", key, b.String())
				}
			}
		})
	}
}

// TestDiffOutput: every -o format of diff, on one result.
func TestDiffOutput(t *testing.T) {
	d := &syncDiff{APIVersion: cliAPIVersion, Kind: "SyncDiff", Sync: objectRef{APIVersion: "gitops.strata.dev/v1alpha1", Kind: "Sync", Namespace: "apps", Name: "web"},
		Changes: []objectChange{
			{Action: diffCreate, objectRef: objectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "apps", Name: "new"}},
			{Action: diffChange, objectRef: objectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "apps", Name: "web"},
				Fields: []fieldChange{{Path: "spec.replicas", Before: json.RawMessage("1"), After: json.RawMessage("3")}, {Path: "spec.paused", After: json.RawMessage("true")}}},
			{Action: diffPrune, objectRef: objectRef{APIVersion: "v1", Kind: "Service", Namespace: "apps", Name: "old"}},
			{Action: diffKeep, objectRef: objectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "apps", Name: "kept"}, Reason: "prune disabled by annotation"},
		},
		NotReady: []objectHealth{{objectRef: objectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "apps", Name: "web"}, Status: "InProgress", Message: "Available: 1/2"}},
		Summary:  diffSummary{Create: 1, Change: 1, Prune: 1, Unchanged: 4, NotReady: 1}}
	cases := map[string]string{
		"": `+ ConfigMap/apps/new
~ Deployment/apps/web
    spec.replicas: 1 -> 3
    spec.paused: (none) -> true
- Service/apps/old
  ConfigMap/apps/kept kept (prune disabled by annotation)
? Deployment/apps/web InProgress: Available: 1/2
1 to create, 1 to change, 1 to prune, 4 unchanged, 1 not ready now
`,
		"name": "configmap/new\ndeployment.apps/web\nservice/old\n",
		"wide": `ACTION  NAMESPACE  NAME                 FIELDS                     REASON
Create  apps       configmap/new        -                          -
Change  apps       deployment.apps/web  spec.replicas,spec.paused  -
Prune   apps       service/old          -                          -
Keep    apps       configmap/kept       -                          prune disabled by annotation
`,
		"json": `{
  "apiVersion": "cli.strata.dev/v1alpha1",
  "kind": "SyncDiff",
  "sync": {
    "apiVersion": "gitops.strata.dev/v1alpha1",
    "kind": "Sync",
    "namespace": "apps",
    "name": "web"
  },
  "changes": [
    {
      "action": "Create",
      "apiVersion": "v1",
      "kind": "ConfigMap",
      "namespace": "apps",
      "name": "new"
    },
    {
      "action": "Change",
      "apiVersion": "apps/v1",
      "kind": "Deployment",
      "namespace": "apps",
      "name": "web",
      "fields": [
        {
          "path": "spec.replicas",
          "before": 1,
          "after": 3
        },
        {
          "path": "spec.paused",
          "after": true
        }
      ]
    },
    {
      "action": "Prune",
      "apiVersion": "v1",
      "kind": "Service",
      "namespace": "apps",
      "name": "old"
    },
    {
      "action": "Keep",
      "apiVersion": "v1",
      "kind": "ConfigMap",
      "namespace": "apps",
      "name": "kept",
      "reason": "prune disabled by annotation"
    }
  ],
  "notReady": [
    {
      "apiVersion": "apps/v1",
      "kind": "Deployment",
      "namespace": "apps",
      "name": "web",
      "status": "InProgress",
      "message": "Available: 1/2"
    }
  ],
  "summary": {
    "create": 1,
    "change": 1,
    "prune": 1,
    "unchanged": 4,
    "notReady": 1
  }
}
`,
	}
	for format, want := range cases {
		t.Run("format "+format, func(t *testing.T) {
			var b bytes.Buffer
			if err := printDiff(&b, d, format); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, b.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	var b bytes.Buffer
	if err := printDiff(&b, d, "yaml"); err != nil {
		t.Fatal(err)
	}
	back := &syncDiff{}
	if err := yaml.Unmarshal(b.Bytes(), back); err != nil {
		t.Fatal(err)
	}
	if back.Kind != "SyncDiff" || len(back.Changes) != 4 || string(back.Changes[1].Fields[0].After) != "3" || back.Summary.Unchanged != 4 {
		t.Errorf("yaml does not read back: %+v\n%s", back, b.String())
	}
}

// TestRenderOutput: every -o format of render, on the webapp example.
func TestRenderOutput(t *testing.T) {
	root := testenv.RepoRoot()
	td := filepath.Join("testdata", "render", "webapp")
	args := []string{"render", filepath.Join(td, "xr.yaml"), filepath.Join(root, "compositions", "webapp", "composition.yaml"), "--observed", filepath.Join(td, "observed")}

	code, out, errOut := strata(t, append(args, "-o", "name")...)
	want := "xwebapp.platform.strata.dev/shop-1a2b3\nconfigmap/shop-1a2b3-config\ndeployment.apps/shop\nhorizontalpodautoscaler.autoscaling/shop\nservice/shop\n"
	if code != 0 || out != want {
		t.Errorf("-o name: exit %d\n%s%s\nwant:\n%s", code, out, errOut, want)
	}
	code, out, errOut = strata(t, append(args, "-o", "wide")...)
	if code != 0 || !strings.Contains(out, "RESOURCE") || !strings.Contains(out, "(composite)") ||
		!regexpLine(out, `^autoscaler\s+Apply\s+False\s+horizontalpodautoscaler.autoscaling/shop\s+team-a\s+not created yet$`) {
		t.Errorf("-o wide: exit %d\n%s%s", code, out, errOut)
	}
	for _, format := range []string{"json", "yaml"} {
		code, out, errOut := strata(t, append(args, "-o", format)...)
		if code != 0 {
			t.Fatalf("-o %s: exit %d: %s", format, code, errOut)
		}
		r := &renderResult{}
		if err := yaml.Unmarshal([]byte(out), r); err != nil {
			t.Fatalf("-o %s: %v\n%s", format, err, out)
		}
		var ids []string
		for _, x := range r.Resources {
			ids = append(ids, x.ID+"="+x.State)
		}
		if r.APIVersion != cliAPIVersion || r.Kind != "RenderResult" || r.Ready || r.Composite["kind"] != "XWebApp" ||
			strings.Join(ids, ",") != "config=Apply,deployment=Apply,autoscaler=Apply,service=Apply" || r.Resources[0].Object["kind"] != "ConfigMap" {
			t.Errorf("-o %s: %+v", format, r)
		}
	}
	if code, _, errOut := strata(t, append(args, "-o", "table")...); code != 2 || !strings.Contains(errOut, `unknown output format "table"`) {
		t.Errorf("-o table: exit %d %s", code, errOut)
	}
}

func regexpLine(text, re string) bool {
	for _, l := range strings.Split(text, "\n") {
		if regexp.MustCompile(re).MatchString(strings.TrimRight(l, " ")) {
			return true
		}
	}
	return false
}

// TestValidateOutput: every -o format of validate and its exit codes: 0
// valid, 1 invalid, 2 unreadable input.
func TestValidateOutput(t *testing.T) {
	root := testenv.RepoRoot()
	x := filepath.Join(root, "compositions", "webapp", "xrd.yaml")
	good := filepath.Join(root, "compositions", "webapp", "composition.yaml")
	bad := "testdata/validate/wrong-field.yaml"

	code, out, _ := strata(t, "validate", x, good, "-o", "name")
	if code != 0 || out != "composition.apiextensions.strata.dev/webapp\n" {
		t.Errorf("-o name: exit %d %q", code, out)
	}
	code, out, _ = strata(t, "validate", x, bad, "-o", "name")
	if code != 1 || out != "" {
		t.Errorf("-o name of an invalid Composition: exit %d %q", code, out)
	}
	code, out, _ = strata(t, "validate", x, good, "-o", "wide")
	if code != 0 || !regexpLine(out, `^webapp\s+xwebapp.platform.strata.dev\s+4\s+True\s+-$`) {
		t.Errorf("-o wide: exit %d\n%s", code, out)
	}
	for _, format := range []string{"json", "yaml"} {
		code, out, errOut := strata(t, "validate", x, bad, "-o", format)
		r := &validationResult{}
		if err := yaml.Unmarshal([]byte(out), r); err != nil {
			t.Fatalf("-o %s: %v\n%s", format, err, out)
		}
		if code != 1 || r.Kind != "ValidationResult" || r.Valid || len(r.Errors) != 1 || !strings.Contains(errOut, "is invalid") {
			t.Fatalf("-o %s of an invalid Composition: exit %d %+v %s", format, code, r, errOut)
		}
		e := r.Errors[0]
		if e.Resource != "deployment" || e.Field != "template.spec.replicas" || e.Expression == "" || !strings.Contains(e.Message, "undefined field 'replica'") {
			t.Errorf("-o %s: error %+v", format, e)
		}
		code, out, _ = strata(t, "validate", x, good, "-o", format)
		r = &validationResult{}
		if err := yaml.Unmarshal([]byte(out), r); err != nil || code != 0 || !r.Valid || r.Resources != 4 || r.CompositeTypeRef.Kind != "XWebApp" || len(r.Errors) != 0 {
			t.Errorf("-o %s of a valid Composition: exit %d %+v %v", format, code, r, err)
		}
	}
	if code, _, errOut := strata(t, "validate", x, "testdata/validate/no-such-file.yaml"); code != 2 || !strings.Contains(errOut, "cannot read") {
		t.Errorf("a missing file: exit %d %s", code, errOut)
	}
}

// TestFinalizerOrphansCoverControllers fails when a controller puts a
// finalizer on objects that uninstall cannot explain (internal/install
// FinalizerOrphans), or one that is not recognised as Strata's.
func TestFinalizerOrphansCoverControllers(t *testing.T) {
	for _, f := range []string{controller.FinalizerComposite, controller.FinalizerClaim, xrd.Finalizer, gitopscontroller.Finalizer,
		managed.Finalizer, managed.InUseFinalizer, pushsecret.Finalizer} {
		if _, ok := install.FinalizerOrphans[f]; !ok {
			t.Errorf("finalizer %q is not in install.FinalizerOrphans", f)
		}
		if !install.IsStrataFinalizer(f) {
			t.Errorf("finalizer %q is not recognised as Strata's", f)
		}
	}
	for _, f := range []string{"kubernetes.io/pvc-protection", "example.com/strata.dev", "foregroundDeletion", "notstrata.dev/x"} {
		if install.IsStrataFinalizer(f) {
			t.Errorf("finalizer %q is taken for Strata's", f)
		}
	}
}

// TestKubectlNames: -o name is kubectl's kind.group/name everywhere.
func TestKubectlNames(t *testing.T) {
	objs := []*unstructured.Unstructured{
		{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "settings"}}},
		{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "web"}}},
		{Object: map[string]any{"apiVersion": "gitops.strata.dev/v1alpha1", "kind": "Sync", "metadata": map[string]any{"name": "app"}}},
	}
	var b bytes.Buffer
	if err := printObjects(&b, "name", objs); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff("configmap/settings\ndeployment.apps/web\nsync.gitops.strata.dev/app\n", b.String()); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
