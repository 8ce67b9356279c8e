package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-dev/strata/internal/testenv"
)

const module = "github.com/strata-dev/strata"

// Layers, as docs/architecture.md describes them.
const (
	layerAPI       = "api"       // apis/, and any .../apis/... (provider and managed API types)
	layerKit       = "kit"       // internal/kit/, internal/conditions, internal/kubeclient: the shared runtime
	layerSupport   = "support"   // internal/install, internal/cluster: CRD install, local control plane
	layerSubsystem = "subsystem" // internal/composition, internal/gitops, internal/managed + providers
	layerScheme    = "scheme"    // internal/scheme: the API groups wired into one scheme
	layerWiring    = "wiring"    // internal/manager: the subsystems wired into one manager
	layerCLI       = "cli"       // internal/cli
	layerCmd       = "cmd"       // cmd/
	layerTestKit   = "testkit"   // internal/testenv, .../gittest, test/: only tests import them
)

// subsystems maps a path prefix to the subsystem it belongs to. Providers
// belong to the managed-resource subsystem.
var subsystems = []struct{ prefix, name string }{
	{"internal/composition", "composition"},
	{"internal/gitops", "gitops"},
	{"internal/managed", "managed"},
	{"providers", "managed"},
	{"internal/secrets", "secrets"},           // external secret stores (secrets.strata.dev)
	{"internal/delivery", "delivery"},         // analysis, rollouts, promotion (delivery.strata.dev)
	{"internal/notification", "notification"}, // providers and alerts (notification.strata.dev)
}

// rank orders the layers: a package may import packages of its own layer
// or lower ones, never higher ones. Subsystems are further kept apart from
// each other (see check).
var rank = map[string]int{
	layerAPI: 0, layerKit: 1, layerSupport: 2, layerSubsystem: 3, layerScheme: 3,
	layerWiring: 4, layerCLI: 5, layerCmd: 6,
}

func under(p, prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }

// classify returns the layer and, for a subsystem, its name, of a package
// path relative to the module. ok is false for a package no rule places.
func classify(p string) (layer, subsystem string, ok bool) {
	switch {
	case under(p, "apis") || strings.Contains("/"+p+"/", "/apis/"):
		return layerAPI, "", true
	case under(p, "internal/testenv") || under(p, "test") || strings.HasSuffix(p, "test") && strings.Contains(p, "/"):
		// internal/testenv/..., test/..., and test helper packages named
		// *test (gittest, managedtest...).
		return layerTestKit, "", true
	case under(p, "internal/kit") || under(p, "internal/conditions") || under(p, "internal/kubeclient"):
		return layerKit, "", true
	case under(p, "internal/install") || under(p, "internal/cluster"):
		return layerSupport, "", true
	case under(p, "internal/scheme"):
		return layerScheme, "", true
	case under(p, "internal/manager"):
		return layerWiring, "", true
	case under(p, "internal/cli"):
		return layerCLI, "", true
	case under(p, "cmd"):
		return layerCmd, "", true
	}
	for _, s := range subsystems {
		if under(p, s.prefix) {
			return layerSubsystem, s.name, true
		}
	}
	return "", "", false
}

// check returns why importing imp from pkg breaks the layering, or "".
// Both are paths relative to the module.
func check(pkg, imp string) string {
	pl, ps, ok := classify(pkg)
	if !ok {
		return fmt.Sprintf("%s is in no layer: place it in docs/architecture.md and in classify", pkg)
	}
	il, is, ok := classify(imp)
	if !ok {
		return fmt.Sprintf("%s is in no layer: place it in docs/architecture.md and in classify", imp)
	}
	switch {
	case pl == layerTestKit:
		return "" // test helpers may import anything
	case il == layerTestKit:
		return fmt.Sprintf("%s imports the test helper %s: only tests may", pkg, imp)
	case under(pkg, "apis") && !under(imp, "apis"):
		return fmt.Sprintf("%s imports %s: apis/ is a leaf and imports nothing of Strata's outside apis/", pkg, imp)
	case pl == layerAPI && il != layerAPI:
		return fmt.Sprintf("API package %s imports %s: API types import only other API types", pkg, imp)
	case pl == layerScheme && il != layerAPI:
		return fmt.Sprintf("%s imports %s: the scheme wires API types only", pkg, imp)
	case pl == layerSubsystem && il == layerScheme:
		return fmt.Sprintf("%s imports %s: a subsystem gets its scheme from the manager", pkg, imp)
	case rank[il] > rank[pl]:
		return fmt.Sprintf("%s (%s) imports %s (%s), a higher layer", pkg, pl, imp, il)
	case pl == layerSubsystem && il == layerSubsystem && ps != is:
		return fmt.Sprintf("%s (subsystem %s) imports %s (subsystem %s): share through internal/kit instead", pkg, ps, imp, is)
	case under(pkg, "internal/managed") && under(imp, "providers"):
		return fmt.Sprintf("%s imports the provider %s: the managed runtime knows no provider", pkg, imp)
	}
	return ""
}

func TestRules(t *testing.T) {
	cases := map[string]struct {
		pkg, imp string
		refused  bool
	}{
		"apis imports its own group":                 {"apis/crds", "apis/gitops/v1alpha1", false},
		"apis imports internal":                      {"apis/gitops/v1alpha1", "internal/conditions", true},
		"apis imports a provider's API types":        {"apis", "providers/nop/apis/nop/v1alpha1", true},
		"apis imports the managed API types":         {"apis/gitops/v1alpha1", "internal/managed/apis/v1alpha1", true},
		"apis imports a provider controller":         {"apis", "providers/nop", true},
		"apis imports the scheme":                    {"apis", "internal/scheme", true},
		"provider API types embed managed API types": {"providers/s3/apis/s3/v1alpha1", "internal/managed/apis/v1alpha1", false},
		"provider API types import the runtime":      {"providers/s3/apis/s3/v1alpha1", "internal/managed", true},
		"kit imports kit":                            {"internal/kit/ownership", "internal/kit/eventmsg", false},
		"kit imports a subsystem":                    {"internal/kit/health", "internal/gitops/health", true},
		"kit imports the managed runtime":            {"internal/kit/patch", "internal/managed", true},
		"kit imports a provider":                     {"internal/kit/celenv", "providers/sql", true},
		"kit imports the manager":                    {"internal/kit/reconcile", "internal/manager", true},
		"provider imports the managed runtime":       {"providers/sql/postgresql", "internal/managed", false},
		"provider imports the kit":                   {"providers/sql/postgresql", "internal/kit/reconcile", false},
		"provider imports compositions":              {"providers/sql/postgresql", "internal/composition/render", true},
		"provider imports gitops":                    {"providers/s3", "internal/gitops/controller", true},
		"composition imports the gitops controller":  {"internal/composition/controller", "internal/gitops/controller", true},
		"gitops imports the composition controller":  {"internal/gitops/apply", "internal/composition/controller", true},
		"gitops imports managed":                     {"internal/gitops/controller", "internal/managed", true},
		"composition imports its own packages":       {"internal/composition/controller", "internal/composition/render", false},
		"the managed runtime imports a provider":     {"internal/managed", "providers/nop", true},
		"a subsystem imports the scheme":             {"internal/gitops/controller", "internal/scheme", true},
		"a subsystem imports the CLI":                {"internal/gitops/controller", "internal/cli", true},
		"a subsystem imports support":                {"internal/gitops/apply", "internal/install", false},
		"the manager wires subsystems":               {"internal/manager", "providers/sql", false},
		"the manager imports the CLI":                {"internal/manager", "internal/cli", true},
		"the CLI imports the manager":                {"internal/cli", "internal/manager", false},
		"cmd imports the CLI":                        {"cmd/strata", "internal/cli", false},
		"production code imports testenv":            {"internal/cli", "internal/testenv", true},
		"production code imports gittest":            {"internal/gitops/controller", "internal/gitops/gittest", true},
		"a test helper imports the scheme":           {"internal/testenv/managedtest", "internal/scheme", false},
		"delivery imports gitops":                    {"internal/delivery/analysis", "internal/gitops/controller", true},
		"gitops imports delivery":                    {"internal/gitops/controller", "internal/delivery/analysis", true},
		"secrets imports the kit":                    {"internal/secrets/controller", "internal/kit/patch", false},
		"an unplaced package":                        {"internal/newthing", "internal/kit/reconcile", true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			why := check(tc.pkg, tc.imp)
			if (why != "") != tc.refused {
				t.Errorf("check(%s, %s) = %q, refused want %t", tc.pkg, tc.imp, why, tc.refused)
			}
		})
	}
}

type goPackage struct {
	ImportPath string
	Imports    []string
}

// listPackages runs `go list -json ./...` at the repository root and
// returns each package's direct (non-test) imports within the module.
func listPackages(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = testenv.RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	pkgs := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("cannot parse go list output: %v", err)
		}
		rel, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			continue
		}
		var imps []string
		for _, i := range p.Imports {
			if r, ok := strings.CutPrefix(i, module+"/"); ok {
				imps = append(imps, r)
			}
		}
		pkgs[rel] = imps
	}
	return pkgs
}

// TestLayering checks every import of every package in the tree.
func TestLayering(t *testing.T) {
	pkgs := listPackages(t)
	if _, ok := pkgs["internal/managed"]; !ok || len(pkgs) < 20 {
		t.Fatalf("go list found %d packages, without internal/managed: not run at the repository root?", len(pkgs))
	}
	var broken []string
	for p, imps := range pkgs {
		if _, _, ok := classify(p); !ok {
			broken = append(broken, check(p, p))
			continue
		}
		for _, i := range imps {
			if why := check(p, i); why != "" {
				broken = append(broken, why)
			}
		}
	}
	sort.Strings(broken)
	if diff := cmp.Diff([]string(nil), broken); diff != "" {
		t.Errorf("imports that break the layering of docs/architecture.md (-want +got):\n%s", diff)
	}
}
