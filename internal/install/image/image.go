package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed layout.
const (
	// Entrypoint is where the binary lives in the image.
	Entrypoint = "/usr/local/bin/strata"
	// UID and GID of the non-root user the image runs as ("nonroot", as in
	// distroless images).
	UID = 65532
	// User is the image config's User: numeric, so Kubernetes can verify
	// runAsNonRoot without a passwd lookup.
	User = "65532:65532"
	// Source is the org.opencontainers.image.source label.
	Source = "https://github.com/strata-dev/strata"
)

// Options say what goes into the image.
type Options struct {
	// Binary is the path of a statically linked linux strata binary.
	Binary string
	// Version, Commit and Date are stamped into the OCI labels and
	// annotations (the binary carries them through -ldflags -X).
	Version, Commit, Date string
	// OS and Arch of the binary (default linux/amd64).
	OS, Arch string
}

// Build returns the image for the binary in o.
func Build(o Options) (v1.Image, error) {
	if o.OS == "" {
		o.OS = "linux"
	}
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	created := time.Unix(0, 0).UTC()
	if o.Date != "" {
		t, err := time.Parse(time.RFC3339, o.Date)
		if err != nil {
			return nil, fmt.Errorf("cannot parse build date %q (want RFC 3339): %w", o.Date, err)
		}
		created = t.UTC()
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("cannot read binary: %w", err)
	}
	layerTar, err := rootfs(bin, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("cannot build layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Author: "strata", Created: v1.Time{Time: created}, CreatedBy: "strata image builder",
		Comment: "strata binary, passwd for the nonroot user, /tmp",
	}})
	if err != nil {
		return nil, fmt.Errorf("cannot add layer: %w", err)
	}
	labels := Labels(o)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = o.OS, o.Arch
	cf.Created = v1.Time{Time: created}
	cf.Author = "strata"
	cf.Config.Entrypoint = []string{Entrypoint}
	cf.Config.Cmd = []string{"manager"}
	cf.Config.User = User
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"PATH=/usr/local/bin", "HOME=/tmp", "SSL_CERT_DIR=/etc/ssl/certs"}
	cf.Config.Labels = labels
	cf.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}, "8081/tcp": {}, "9292/tcp": {}}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("cannot set image config: %w", err)
	}
	return mutate.Annotations(img, labels).(v1.Image), nil
}

// Labels are the OCI labels (and manifest annotations) of the image.
func Labels(o Options) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "strata",
		"org.opencontainers.image.description": "Kubernetes-native infrastructure composition and delivery",
		"org.opencontainers.image.source":      Source,
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.revision":    o.Commit,
		"org.opencontainers.image.created":     o.Date,
	}
	for k, v := range l {
		if v == "" {
			delete(l, k)
		}
	}
	return l
}

// rootfs is the one layer: directories, the binary, passwd/group and /tmp
// (sticky, world-writable; a read-only root filesystem mounts an emptyDir
// over it).
func rootfs(bin []byte, mod time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: mod, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mod, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/tmp:/sbin/nologin\n", UID, UID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", UID)
	steps := []func() error{
		func() error { return dir("etc/", 0o755) },
		func() error { return file("etc/passwd", 0o644, []byte(passwd)) },
		func() error { return file("etc/group", 0o644, []byte(group)) },
		func() error { return dir("tmp/", 0o1777) },
		func() error { return dir("usr/", 0o755) },
		func() error { return dir("usr/local/", 0o755) },
		func() error { return dir("usr/local/bin/", 0o755) },
		func() error { return file(Entrypoint[1:], 0o755, bin) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, fmt.Errorf("cannot write layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("cannot write layer: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteLayout writes img as the only image of an OCI image layout in dir
// (replacing what was there), tagged with ref in the
// org.opencontainers.image.ref.name annotation.
func WriteLayout(img v1.Image, dir, ref string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("cannot clear %s: %w", dir, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("cannot create image layout %s: %w", dir, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		return fmt.Errorf("cannot write image to %s: %w", dir, err)
	}
	return nil
}

// WriteTarball writes img as a tarball named ref (docker load, crane push).
func WriteTarball(img v1.Image, path, ref string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
