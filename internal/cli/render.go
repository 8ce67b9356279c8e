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

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/render"
)

func init() { extraCommands = append(extraCommands, newRenderCommand) }

func newRenderCommand() *cobra.Command {
	var observedDir, envFile string
	cmd := &cobra.Command{
		Use:   "render XR.yaml COMPOSITION.yaml",
		Short: "Print the resources a Composition composes for an XR, offline",
		Long: `render runs the composition engine's render step, the code the XR controller
runs, without a cluster. It prints the XR with its computed status, then every
composed resource that would be applied. --observed DIR reads observed composed
resources (labelled strata.dev/resource-name) so dependents and status can be
rendered; --environment FILE supplies the environment variable's data.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRender(cmd.OutOrStdout(), args[0], args[1], observedDir, envFile)
		},
	}
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

func runRender(out io.Writer, xrPath, compPath, observedDir, envFile string) error {
	xrs, err := readObjects(xrPath)
	if err != nil {
		return err
	}
	if len(xrs) != 1 {
		return fmt.Errorf("%s must hold exactly one composite resource, found %d", xrPath, len(xrs))
	}
	xr := xrs[0]
	comp := &v1alpha1.Composition{}
	if err := readKind(compPath, "Composition", comp); err != nil {
		return err
	}
	observed := map[string]*unstructured.Unstructured{}
	if observedDir != "" {
		files, err := filepath.Glob(filepath.Join(observedDir, "*.y*ml"))
		if err != nil {
			return err
		}
		for _, f := range files {
			objs, err := readObjects(f)
			if err != nil {
				return err
			}
			for _, o := range objs {
				id := o.GetLabels()[render.LabelResourceName]
				if id == "" {
					return fmt.Errorf("%s: %s %s has no label %s", f, o.GetKind(), o.GetName(), render.LabelResourceName)
				}
				observed[id] = o
			}
		}
	}
	var env map[string]any
	if envFile != "" {
		objs, err := readObjects(envFile)
		if err != nil {
			return err
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
		return err
	}
	for k, v := range res.Status {
		_ = unstructured.SetNestedField(xr.Object, v, "status", k)
	}
	ready := map[string]any{"type": "Ready", "status": "True", "reason": "Available"}
	if !res.Ready {
		ready = map[string]any{"type": "Ready", "status": "False", "reason": "Creating", "message": res.WaitingMessage()}
	}
	_ = unstructured.SetNestedSlice(xr.Object, []any{ready}, "status", "conditions")
	if err := writeYAML(out, xr.Object, ""); err != nil {
		return err
	}
	for _, r := range res.Resources {
		switch r.State {
		case render.Apply:
			if err := writeYAML(out, r.Desired.Object, fmt.Sprintf("# resource %s", r.ID)); err != nil {
				return err
			}
		case render.Blocked:
			fmt.Fprintf(out, "---\n# resource %s: not rendered (%s)\n", r.ID, r.Reason)
		case render.Excluded:
			fmt.Fprintf(out, "---\n# resource %s: excluded by includeWhen\n", r.ID)
		}
	}
	if len(res.ConnectionDetails) > 0 {
		keys := make([]string, 0, len(res.ConnectionDetails))
		for k := range res.ConnectionDetails {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(out, "---\n# connection details: %s\n", strings.Join(keys, ", "))
	}
	return nil
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
