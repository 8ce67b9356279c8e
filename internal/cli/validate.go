package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/controller"
	"github.com/strata-dev/strata/internal/composition/xrd"
)

func init() { extraCommands = append(extraCommands, newValidateCommand) }

func newValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate XRD.yaml COMPOSITION.yaml",
		Short: "Run a Composition's publish-time checks offline",
		Long: `validate runs the checks the Composition controller runs when a Composition is
published: the XRD must make valid CRDs, and every expression of the
Composition must compile and type-check against the XRD's schema, reference
only known variables and fields, and the resources must not form a cycle.
Errors name the resource, the field and the expression.`,
		Args: cobra.ExactArgs(2),
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
			if err := controller.Validate(x, &c.Spec); err != nil {
				return fmt.Errorf("composition %s is invalid: %w", c.Name, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "composition %s is valid for %s (%d resources)\n", c.Name, x.Spec.Names.Kind, len(c.Spec.Resources))
			return nil
		},
	}
}
