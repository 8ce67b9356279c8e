// Command strata-image builds Strata's container image from a static strata
// binary (see internal/install/image); `make image` runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/strata-dev/strata/internal/install/image"
)

func main() {
	var o image.Options
	var out, ref string
	flag.StringVar(&o.Binary, "binary", "", "static linux strata binary")
	flag.StringVar(&o.Version, "version", "", "version label")
	flag.StringVar(&o.Commit, "commit", "", "commit label")
	flag.StringVar(&o.Date, "date", "", "build date label (RFC 3339)")
	flag.StringVar(&o.Arch, "arch", "amd64", "architecture of the binary")
	flag.StringVar(&out, "out", "build/image", "output folder: <out>/oci (OCI layout) and <out>/strata.tar")
	flag.StringVar(&ref, "ref", "ghcr.io/strata-dev/strata:dev", "image reference recorded in the layout and tarball")
	flag.Parse()
	img, err := image.Build(o)
	if err == nil {
		err = image.WriteLayout(img, filepath.Join(out, "oci"), ref)
	}
	if err == nil {
		err = image.WriteTarball(img, filepath.Join(out, "strata.tar"), ref)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "strata-image: %v\n", err)
		os.Exit(1)
	}
	d, _ := img.Digest()
	fmt.Printf("built %s (%s) in %s\n", ref, d, out)
}
