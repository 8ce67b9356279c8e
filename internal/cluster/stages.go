package cluster

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// CrashLoopAnnotation, set to "true" on a pod (in a Deployment's pod
// template), makes the local cluster's kwok start the pod as a container in
// CrashLoopBackOff would: Running with an IP, never Ready. Tests use it as a
// bad image that the local cluster cannot otherwise simulate.
const CrashLoopAnnotation = "kwok.strata.dev/crash-loop"

// stages are Strata's own kwok stages, added to the ones `make tools` copies
// out of the kwok module.
//
//go:embed stages/*.yaml
var stages embed.FS

// writeStages writes Strata's kwok stages into the state directory, as one
// file for kwok's --config, and returns its path.
func (c *Cluster) writeStages() (string, error) {
	names, err := fs.Glob(stages, "stages/*.yaml")
	if err != nil {
		return "", fmt.Errorf("cannot list kwok stages: %w", err)
	}
	sort.Strings(names)
	var out []byte
	for _, n := range names {
		data, err := stages.ReadFile(n)
		if err != nil {
			return "", fmt.Errorf("cannot read kwok stage %s: %w", n, err)
		}
		out = append(out, "---\n"...)
		out = append(out, data...)
	}
	path := filepath.Join(c.cfg.StateDir, "kwok-stages-strata.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return "", fmt.Errorf("cannot write kwok stages: %w", err)
	}
	return path, nil
}
