package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
)

// GatewayAPICRDsFile is the file in the tools folder (bin/) that `make tools`
// fills with the standard CRDs of the pinned Gateway API release
// (sigs.k8s.io/gateway-api, see test/tools/gateway-api): HTTPRoute, Gateway,
// GatewayClass and the other routes.
const GatewayAPICRDsFile = "gateway-api-crds.yaml"

// GatewayAPICRDs applies the Gateway API CRDs found in binDir and waits until
// each is Established, so Rollouts that set HTTPRoute backend weights have
// HTTPRoutes in the local cluster. It returns how many it applied; found is
// false (and nothing is applied) when binDir has no such file.
func GatewayAPICRDs(ctx context.Context, cfg *rest.Config, binDir string) (n int, found bool, err error) {
	path := filepath.Join(binDir, GatewayAPICRDsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("cannot read Gateway API CRDs: %w", err)
	}
	list, err := ParseCRDs(data)
	if err != nil {
		return 0, true, fmt.Errorf("cannot parse %s: %w", path, err)
	}
	return len(list), true, Apply(ctx, cfg, list)
}

// ParseCRDs reads a multi-document YAML stream of CustomResourceDefinitions.
// A document of another kind, or a CRD without a name, is an error naming
// its position.
func ParseCRDs(data []byte) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*apiextensionsv1.CustomResourceDefinition
	for i := 1; ; i++ {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := dec.Decode(crd); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if crd.Kind == "" && crd.Name == "" {
			continue // an empty document
		}
		if crd.Kind != "CustomResourceDefinition" || crd.Name == "" {
			return nil, fmt.Errorf("document %d is a %q named %q, not a named CustomResourceDefinition", i, crd.Kind, crd.Name)
		}
		out = append(out, crd)
	}
}
