package cli

import (
	"encoding/json"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/spf13/cobra"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/controller"
	"github.com/strata-dev/strata/internal/composition/render"
	"github.com/strata-dev/strata/internal/composition/xrd"
)

func init() { extraCommands = append(extraCommands, newValidateCommand) }

func newValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate XRD.yaml COMPOSITION.yaml [CRD.yaml...]",
		Short: "Run a Composition's publish-time checks offline",
		Long: `validate runs the checks the Composition controller runs when a Composition is
published: the XRD must make valid CRDs, and every expression of the
Composition must compile and type-check against the XRD's schema, reference
only known variables and fields, and the resources must not form a cycle.
With CRD files, templates of those kinds are checked against their schemas
too: every field must exist and whole-value expressions must give the
field's type. Errors name the resource, the field and the expression.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			x := &v1alpha1.CompositeResourceDefinition{}
			if err := readKind(args[0], "CompositeResourceDefinition", x); err != nil {
				return err
			}
			if _, err := xrd.CompositeCRD(x); err != nil {
				return fmt.Errorf("XRD %s: %w", x.Name, err)
			}
			if _, err := xrd.ClaimCRD(x); err != nil {
				return fmt.Errorf("XRD %s: %w", x.Name, err)
			}
			c := &v1alpha1.Composition{}
			if err := readKind(args[1], "Composition", c); err != nil {
				return err
			}
			schemas, err := crdSchemas(args[2:])
			if err != nil {
				return err
			}
			if err := controller.Validate(x, &c.Spec, schemas); err != nil {
				return fmt.Errorf("composition %s is invalid: %w", c.Name, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "composition %s is valid for %s (%d resources)\n", c.Name, x.Spec.Names.Kind, len(c.Spec.Resources))
			return nil
		},
	}
}

// crdSchemas reads the schemas of every version of the given CRDs.
func crdSchemas(paths []string) (render.MapSchemaSource, error) {
	out := render.MapSchemaSource{}
	for _, p := range paths {
		objs, err := readObjects(p)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if o.GetKind() != "CustomResourceDefinition" {
				continue
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			j, err := o.MarshalJSON()
			if err != nil {
				return nil, err
			}
			if err := json.Unmarshal(j, crd); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			for _, v := range crd.Spec.Versions {
				if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
					continue
				}
				b, err := json.Marshal(v.Schema.OpenAPIV3Schema)
				if err != nil {
					return nil, err
				}
				s := &spec.Schema{}
				if err := json.Unmarshal(b, s); err != nil {
					return nil, fmt.Errorf("%s: schema of %s: %w", p, v.Name, err)
				}
				out[schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}] = s
			}
		}
	}
	return out, nil
}
