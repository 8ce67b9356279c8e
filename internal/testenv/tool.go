package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ToolsWaitEnv, set to 1, says that `make test` is building the servers the
// tests start (Vault, Prometheus, ...) in the background while the tests run:
// Tool then waits for that build instead of failing at once.
const ToolsWaitEnv = "STRATA_TOOLS_WAIT"

// toolGroups maps a binary to the test/tools/build.sh group that builds it,
// for the binaries `make test` may still be building when a test needs them.
var toolGroups = map[string]string{
	"alertmanager": "alertmanager",
	"prometheus":   "prometheus",
	"sops":         "sops",
	"vault":        "vault",
	// Vault's Kubernetes auth method, an external plugin of the minimal
	// Vault build (vaulttest registers it).
	"vault-plugin-auth-kubernetes": "vault",
	"versitygw":                    "versitygw",
}

// Tool returns the path of a binary `make tools` builds into BinDir. When it
// is missing the error says how to build it; under `make test`
// (ToolsWaitEnv=1) Tool first runs test/tools/build.sh for its group, which
// waits for the background build of that group (the script holds a lock per
// group) and links the result, or builds it if no build is running.
func Tool(name string) (string, error) {
	p := filepath.Join(BinDir(), name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	group, ok := toolGroups[name]
	if !ok || os.Getenv(ToolsWaitEnv) != "1" {
		return "", fmt.Errorf("%s not found in %s: run `make tools` (it builds %s)", name, BinDir(), name)
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "testenv: waiting for the build of %s (test/tools/build.sh %s)\n", name, group)
	var out bytes.Buffer
	cmd := exec.Command("bash", filepath.Join(RepoRoot(), "test", "tools", "build.sh"), BinDir(), group)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("cannot build %s with test/tools/build.sh: %w\n%s", name, err, strings.TrimSpace(out.String()))
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found in %s after test/tools/build.sh %s:\n%s", name, BinDir(), group, strings.TrimSpace(out.String()))
	}
	fmt.Fprintf(os.Stderr, "testenv: %s ready after %s\n", name, time.Since(start).Round(time.Second))
	return p, nil
}
