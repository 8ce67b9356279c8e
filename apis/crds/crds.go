// Package crds embeds the CustomResourceDefinitions that controller-gen
// generates from the API types (`make generate`), so the CLI can install them
// without files on disk.
package crds

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

//go:embed *.yaml
var files embed.FS

// All returns every embedded CRD, ordered by file name.
func All() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	names, err := fs.Glob(files, "*.yaml")
	if err != nil {
		return nil, fmt.Errorf("cannot list embedded CRDs: %w", err)
	}
	sort.Strings(names)
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, n := range names {
		data, err := files.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("cannot read embedded CRD %s: %w", n, err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(data, crd); err != nil {
			return nil, fmt.Errorf("cannot parse embedded CRD %s: %w", n, err)
		}
		if crd.Name == "" {
			return nil, fmt.Errorf("embedded CRD %s has no name", n)
		}
		out = append(out, crd)
	}
	return out, nil
}
