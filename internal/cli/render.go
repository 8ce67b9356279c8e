package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/render"
)

func init() { extraCommands = append(extraCommands, newRenderCommand) }

func newRenderCommand() *cobra.Command {
	var observedDir, envFile, output string
	cmd := &cobra.Command{
		Use:   "render XR.yaml COMPOSITION.yaml",
		Short: "Print the resources a Composition composes for an XR, offline",
		Long: `render runs the composition engine's render step, the code the XR controller
runs, without a cluster. It prints the XR with its computed status, then every
composed resource that would be applied. --observed DIR reads observed composed
resources (labelled strata.dev/resource-name) so dependents and status can be
rendered; --environment FILE supplies the environment variable's data.

-o json|yaml prints a RenderResult document (docs/cli.md) with every
resource's state, -o name the XR and the objects that would be applied
(kind.group/name), -o wide a table of the resources and their states.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutputFormat(output, outputFormats...); err != nil {
				return err
			}
			r, err := computeRender(args[0], args[1], observedDir, envFile)
			if err != nil {
				return err
			}
			return printRender(cmd.OutOrStdout(), r, output)
		},
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().StringVar(&observedDir, "observed", "", "directory of YAML files with observed composed resources")
	cmd.Flags().StringVar(&envFile, "environment", "", "YAML file with the environment data (a map, or an EnvironmentConfig)")
	return cmd
}

// readObjects decodes every YAML document of a file into unstructured
// objects, keeping integers as int64.
func readObjects(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	var out []*unstructured.Unstructured
	for i, doc := range splitYAML(data) {
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
		var m map[string]any
		if err := utiljson.Unmarshal(j, &m); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out, nil
}

func splitYAML(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func readKind(path, kind string, into any) error {
	objs, err := readObjects(path)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if o.GetKind() != kind {
			continue
		}
		j, err := o.MarshalJSON()
		if err != nil {
			return err
		}
		if err := utiljson.Unmarshal(j, into); err != nil {
			return fmt.Errorf("%s: cannot decode %s: %w", path, kind, err)
		}
		return nil
	}
	return fmt.Errorf("%s holds no %s", path, kind)
}

// runRender prints the render of an XR in the default format.
func runRender(out io.Writer, xrPath, compPath, observedDir, envFile string) error {
	r, err := computeRender(xrPath, compPath, observedDir, envFile)
	if err != nil {
		return err
	}
	return printRender(out, r, "")
}

// renderResult is what render computes, and the document -o json|yaml
// prints (kind RenderResult, docs/cli.md).
type renderResult struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Composite is the XR with the status the render computed.
	Composite map[string]any `json:"composite"`
	// Ready is the XR's readiness: every included resource ready.
	Ready bool `json:"ready"`
	// Resources in creation order.
	Resources []renderedResource `json:"resources"`
	// ConnectionDetails are the keys of the connection Secret (never
	// the values).
	ConnectionDetails []string `json:"connectionDetails,omitempty"`
}

// renderedResource is one resource of the Composition.
type renderedResource struct {
	// Name is the Composition's resource name, ID the resource id (Name,
	// or Name-index for forEach).
	Name string `json:"name"`
	ID   string `json:"id"`
	// State is Apply, Blocked (a dependency is not ready, reason says
	// which) or Excluded (includeWhen is false).
	State  string         `json:"state"`
	Ready  bool           `json:"ready"`
	Reason string         `json:"reason,omitempty"`
	Object map[string]any `json:"object,omitempty"`
}

func computeRender(xrPath, compPath, observedDir, envFile string) (*renderResult, error) {
	xrs, err := readObjects(xrPath)
	if err != nil {
		return nil, err
	}
	if len(xrs) != 1 {
		return nil, fmt.Errorf("%s must hold exactly one composite resource, found %d", xrPath, len(xrs))
	}
	xr := xrs[0]
	comp := &v1alpha1.Composition{}
	if err := readKind(compPath, "Composition", comp); err != nil {
		return nil, err
	}
	observed := map[string]*unstructured.Unstructured{}
	if observedDir != "" {
		files, err := filepath.Glob(filepath.Join(observedDir, "*.y*ml"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			objs, err := readObjects(f)
			if err != nil {
				return nil, err
			}
			for _, o := range objs {
				id := o.GetLabels()[render.LabelResourceName]
				if id == "" {
					return nil, fmt.Errorf("%s: %s %s has no label %s", f, o.GetKind(), o.GetName(), render.LabelResourceName)
				}
				observed[id] = o
			}
		}
	}
	var env map[string]any
	if envFile != "" {
		objs, err := readObjects(envFile)
		if err != nil {
			return nil, err
		}
		env = map[string]any{}
		for _, o := range objs {
			data := o.Object
			if o.GetKind() == "EnvironmentConfig" {
				data, _, _ = unstructured.NestedMap(o.Object, "data")
			}
			for k, v := range data {
				env[k] = v
			}
		}
	}
	ns := xr.GetLabels()[render.LabelClaimNamespace]
	if ns == "" {
		ns = xr.GetNamespace()
	}
	if ns == "" {
		ns = "default"
	}
	res, err := render.Render(render.Input{XR: xr, Composition: &comp.Spec, Observed: observed, Environment: env, DefaultNamespace: ns})
	if err != nil {
		return nil, err
	}
	for k, v := range res.Status {
		_ = unstructured.SetNestedField(xr.Object, v, "status", k)
	}
	ready := map[string]any{"type": "Ready", "status": "True", "reason": "Available"}
	if !res.Ready {
		ready = map[string]any{"type": "Ready", "status": "False", "reason": "Creating", "message": res.WaitingMessage()}
	}
	_ = unstructured.SetNestedSlice(xr.Object, []any{ready}, "status", "conditions")
	r := &renderResult{APIVersion: cliAPIVersion, Kind: "RenderResult", Composite: xr.Object, Ready: res.Ready, Resources: []renderedResource{}}
	for _, x := range res.Resources {
		rr := renderedResource{Name: x.Name, ID: x.ID, State: string(x.State), Ready: x.Ready, Reason: x.Reason}
		if x.State == render.Apply && x.Desired != nil {
			rr.Object = x.Desired.Object
		}
		r.Resources = append(r.Resources, rr)
	}
	for k := range res.ConnectionDetails {
		r.ConnectionDetails = append(r.ConnectionDetails, k)
	}
	sort.Strings(r.ConnectionDetails)
	return r, nil
}

// printRender prints r: by default a YAML stream of the XR and the objects
// to apply, with comments for the others (what `kubectl apply -f` takes);
// json|yaml the RenderResult; name the XR and the objects to apply; wide a
// table of the composite and every resource.
func printRender(out io.Writer, r *renderResult, format string) error {
	xr := &unstructured.Unstructured{Object: r.Composite}
	switch format {
	case "json", "yaml":
		return printStructured(out, format, r)
	case "name":
		fmt.Fprintln(out, kubectlName(xr.GroupVersionKind(), xr.GetName()))
		for _, x := range r.Resources {
			if x.Object != nil {
				o := &unstructured.Unstructured{Object: x.Object}
				fmt.Fprintln(out, kubectlName(o.GroupVersionKind(), o.GetName()))
			}
		}
		return nil
	case "wide":
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RESOURCE\tSTATE\tREADY\tOBJECT\tNAMESPACE\tREASON")
		_, reason, msg := condition(xr, "Ready")
		if msg != "" {
			reason += ": " + msg
		}
		fmt.Fprintf(tw, "(composite)\t-\t%s\t%s\t%s\t%s\n", boolWord(r.Ready), kubectlName(xr.GroupVersionKind(), xr.GetName()), dash(xr.GetNamespace()), dash(reason))
		for _, x := range r.Resources {
			obj, ns := "-", "-"
			if x.Object != nil {
				o := &unstructured.Unstructured{Object: x.Object}
				obj, ns = kubectlName(o.GroupVersionKind(), o.GetName()), dash(o.GetNamespace())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, x.State, boolWord(x.Ready), obj, ns, dash(x.Reason))
		}
		return tw.Flush()
	}
	if err := writeYAML(out, xr.Object, ""); err != nil {
		return err
	}
	for _, x := range r.Resources {
		switch render.State(x.State) {
		case render.Apply:
			if err := writeYAML(out, x.Object, fmt.Sprintf("# resource %s", x.ID)); err != nil {
				return err
			}
		case render.Blocked:
			fmt.Fprintf(out, "---\n# resource %s: not rendered (%s)\n", x.ID, x.Reason)
		case render.Excluded:
			fmt.Fprintf(out, "---\n# resource %s: excluded by includeWhen\n", x.ID)
		}
	}
	if len(r.ConnectionDetails) > 0 {
		fmt.Fprintf(out, "---\n# connection details: %s\n", strings.Join(r.ConnectionDetails, ", "))
	}
	return nil
}

func boolWord(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func writeYAML(out io.Writer, obj map[string]any, comment string) error {
	b, err := yaml.Marshal(obj)
	if err != nil {
		return errors.New("cannot encode output: " + err.Error())
	}
	fmt.Fprintln(out, "---")
	if comment != "" {
		fmt.Fprintln(out, comment)
	}
	_, err = out.Write(b)
	return err
}
