package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

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
	var output string
	cmd := &cobra.Command{
		Use:   "validate XRD.yaml COMPOSITION.yaml [CRD.yaml...]",
		Short: "Run a Composition's publish-time checks offline",
		Long: `validate runs the checks the Composition controller runs when a Composition is
published: the XRD must make valid CRDs, and every expression of the
Composition must compile and type-check against the XRD's schema, reference
only known variables and fields, and the resources must not form a cycle.
With CRD files, templates of those kinds are checked against their schemas
too: every field must exist and whole-value expressions must give the
field's type. Errors name the resource, the field and the expression.

-o json|yaml prints a ValidationResult document (docs/cli.md), -o name the
Composition (kind.group/name) when it is valid, -o wide a table.

Exit status: 0 when the Composition is valid, 1 when it is not, 2 when the
files cannot be read.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutputFormat(output, outputFormats...); err != nil {
				return err
			}
			r, err := runValidate(args[0], args[1], args[2:])
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if err := printValidation(cmd.OutOrStdout(), r, output); err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if !r.Valid {
				return &ExitError{Code: 1, Err: r.err}
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// validationResult is what validate finds, and the document -o json|yaml
// prints (kind ValidationResult, docs/cli.md).
type validationResult struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Valid      bool   `json:"valid"`
	// CompositeResourceDefinition and Composition are the names checked.
	CompositeResourceDefinition string `json:"compositeResourceDefinition"`
	Composition                 string `json:"composition,omitempty"`
	// CompositeTypeRef is the kind the Composition composes for.
	CompositeTypeRef v1alpha1.TypeReference `json:"compositeTypeRef"`
	// Resources is the number of resources of the Composition.
	Resources int `json:"resources"`
	// Errors say what is invalid (empty when valid).
	Errors []validationError `json:"errors,omitempty"`

	err error
}

// validationError is one failed check; resource, field and expression are
// set when the check names them.
type validationError struct {
	Resource   string `json:"resource,omitempty"`
	Field      string `json:"field,omitempty"`
	Expression string `json:"expression,omitempty"`
	Message    string `json:"message"`
}

// runValidate checks a Composition against its XRD (and CRDs). An error is
// an input that cannot be read; a failed check is in the result.
func runValidate(xrdPath, compPath string, crdPaths []string) (*validationResult, error) {
	x := &v1alpha1.CompositeResourceDefinition{}
	if err := readKind(xrdPath, "CompositeResourceDefinition", x); err != nil {
		return nil, err
	}
	c := &v1alpha1.Composition{}
	if err := readKind(compPath, "Composition", c); err != nil {
		return nil, err
	}
	schemas, err := crdSchemas(crdPaths)
	if err != nil {
		return nil, err
	}
	r := &validationResult{APIVersion: cliAPIVersion, Kind: "ValidationResult", Valid: true,
		CompositeResourceDefinition: x.Name, Composition: c.Name, CompositeTypeRef: c.Spec.CompositeTypeRef, Resources: len(c.Spec.Resources)}
	fail := func(err error) *validationResult {
		r.Valid, r.err = false, err
		ve := validationError{Message: err.Error()}
		var fe *render.FieldError
		if errors.As(err, &fe) {
			ve.Resource, ve.Field, ve.Expression = fe.Resource, fe.Field, fe.Expr
			if fe.Err != nil {
				ve.Message = fe.Err.Error()
			}
		}
		r.Errors = append(r.Errors, ve)
		return r
	}
	if _, err := xrd.CompositeCRD(x); err != nil {
		return fail(fmt.Errorf("XRD %s: %w", x.Name, err)), nil
	}
	if _, err := xrd.ClaimCRD(x); err != nil {
		return fail(fmt.Errorf("XRD %s: %w", x.Name, err)), nil
	}
	if err := controller.Validate(x, &c.Spec, schemas); err != nil {
		return fail(fmt.Errorf("composition %s is invalid: %w", c.Name, err)), nil
	}
	return r, nil
}

// printValidation prints r: by default one line when valid (the error goes
// to stderr otherwise); json|yaml the ValidationResult; name the
// Composition when valid; wide a table.
func printValidation(out io.Writer, r *validationResult, format string) error {
	switch format {
	case "json", "yaml":
		return printStructured(out, format, r)
	case "name":
		if r.Valid {
			fmt.Fprintln(out, kubectlName(v1alpha1.GroupVersion.WithKind("Composition"), r.Composition))
		}
		return nil
	case "wide":
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "COMPOSITION\tCOMPOSITE\tRESOURCES\tVALID\tMESSAGE")
		msg := "-"
		if !r.Valid {
			msg = r.err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.Composition, kubectlKind(schema.FromAPIVersionAndKind(r.CompositeTypeRef.APIVersion, r.CompositeTypeRef.Kind)), r.Resources, boolWord(r.Valid), msg)
		return tw.Flush()
	}
	if r.Valid {
		fmt.Fprintf(out, "composition %s is valid for %s (%d resources)\n", r.Composition, r.CompositeTypeRef.Kind, r.Resources)
	}
	return nil
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
