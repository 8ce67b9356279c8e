package image_test

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/strata-dev/strata/internal/install/image"
	"github.com/strata-dev/strata/internal/testenv"
)

// TestImage builds the image the way `make image` does (a static, version
// stamped strata binary, then image.Build), reads the OCI layout and the
// tarball back, checks the config, and runs the binary from the layer to
// see the stamped version.
func TestImage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "strata")
	const pkg = "github.com/strata-dev/strata/internal/cli"
	ldflags := "-X " + pkg + ".Version=v9.8.7 -X " + pkg + ".Commit=abc123 -X " + pkg + ".Date=2026-01-02T03:04:05Z"
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, "./cmd/strata")
	build.Dir = testenv.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	img, err := image.Build(image.Options{Binary: bin, Version: "v9.8.7", Commit: "abc123", Date: "2026-01-02T03:04:05Z", Arch: runtime.GOARCH})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "image")
	ref := "example.test/strata:v9.8.7"
	if err := image.WriteLayout(img, filepath.Join(out, "oci"), ref); err != nil {
		t.Fatal(err)
	}
	if err := image.WriteTarball(img, filepath.Join(out, "strata.tar"), ref); err != nil {
		t.Fatal(err)
	}

	// Read the layout back, as a registry client would.
	p, err := layout.FromPath(filepath.Join(out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != ref {
		t.Fatalf("layout index: want one image named %s, got %+v", ref, im.Manifests)
	}
	got, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{image.Entrypoint}, cf.Config.Entrypoint); d != "" {
		t.Errorf("entrypoint (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"manager"}, cf.Config.Cmd); d != "" {
		t.Errorf("cmd (-want +got):\n%s", d)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user: want 65532:65532 (numeric non-root), got %q", cf.Config.User)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.version":  "v9.8.7",
		"org.opencontainers.image.revision": "abc123",
		"org.opencontainers.image.created":  "2026-01-02T03:04:05Z",
		"org.opencontainers.image.source":   image.Source,
		"org.opencontainers.image.title":    "strata",
	}
	for k, v := range wantLabels {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s: want %q, got %q", k, v, cf.Config.Labels[k])
		}
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform: got %s/%s", cf.OS, cf.Architecture)
	}
	m, err := got.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Annotations["org.opencontainers.image.version"] != "v9.8.7" {
		t.Errorf("manifest annotations: %v", m.Annotations)
	}

	// The tarball holds the same image.
	tb, err := tarball.ImageFromPath(filepath.Join(out, "strata.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// (A tarball stores the config and layers, not the OCI manifest: compare
	// those.)
	c1, _ := got.ConfigName()
	c2, _ := tb.ConfigName()
	if c1 != c2 {
		t.Errorf("tarball config %s differs from the layout's %s", c2, c1)
	}

	// The layer: the binary at the entrypoint, passwd naming the user, a
	// sticky /tmp. Run the binary from it.
	layers, err := got.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("want one layer, got %d (%v)", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	extracted := filepath.Join(dir, "extracted-strata")
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files["/"+h.Name] = h
		if "/"+h.Name == image.Entrypoint {
			f, err := os.OpenFile(extracted, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	for name, mode := range map[string]int64{image.Entrypoint: 0o755, "/etc/passwd": 0o644, "/tmp/": 0o1777} {
		h, ok := files[name]
		if !ok {
			t.Errorf("layer has no %s", name)
			continue
		}
		if h.Mode != mode {
			t.Errorf("%s: mode %o, want %o", name, h.Mode, mode)
		}
	}
	if runtime.GOOS == "linux" {
		out, err := exec.Command(extracted, "version", "--client", "-o", "json").CombinedOutput()
		if err != nil {
			t.Fatalf("strata version from the image: %v\n%s", err, out)
		}
		var v struct {
			Client struct{ Version, Commit, Date string }
		}
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("strata version -o json: %v\n%s", err, out)
		}
		if v.Client.Version != "v9.8.7" || v.Client.Commit != "abc123" || v.Client.Date != "2026-01-02T03:04:05Z" {
			t.Errorf("binary in the image is not stamped: %s", out)
		}
	}
}
