package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/scheme"
)

func init() { extraCommands = append(extraCommands, newAnalysisCommand) }

func newAnalysisCommand() *cobra.Command {
	var namespace, kubeconfig string
	cmd := &cobra.Command{
		Use:   "analysis",
		Short: "Inspect AnalysisRuns and run AnalysisTemplates once",
	}
	cmd.PersistentFlags().StringVarP(&namespace, "namespace", "n", "default", "namespace of the run or template")
	cmd.PersistentFlags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	newClient := func() (client.Client, error) {
		cfg, err := ctrl.GetConfig()
		if kubeconfig != "" {
			cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot load kubeconfig: %w", err)
		}
		return client.New(cliConfig(cfg), client.Options{Scheme: scheme.New()})
	}

	var output string
	get := &cobra.Command{
		Use:   "get RUN",
		Short: "Print an AnalysisRun: its metrics, every measurement with the resolved query or URL, and the verdict",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			run := &deliveryv1.AnalysisRun{}
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: namespace, Name: args[0]}, run); err != nil {
				return fmt.Errorf("cannot get AnalysisRun %s/%s: %w", namespace, args[0], err)
			}
			return printRun(cmd.OutOrStdout(), run, output)
		},
	}
	get.Flags().StringVarP(&output, "output", "o", "", "output format: yaml or json (default: a summary)")

	var runArgs []string
	var cluster bool
	var timeout time.Duration
	var serviceAccount string
	run := &cobra.Command{
		Use:   "run TEMPLATE",
		Short: "Run an AnalysisTemplate once and wait for its verdict (exit status 1 unless Successful)",
		Long: `run creates a one-off AnalysisRun from TEMPLATE (an AnalysisTemplate in the
namespace, or a ClusterAnalysisTemplate with --cluster) with the arguments
given as --arg NAME=VALUE, waits for the verdict and prints the run. It is the
quickest way to try a template while writing it. The run is kept; delete it
with kubectl when done.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			ar := &deliveryv1.AnalysisRun{
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: args[0] + "-"},
				Spec: deliveryv1.AnalysisRunSpec{
					Templates:          []deliveryv1.TemplateRef{{Name: args[0], ClusterScope: cluster}},
					ServiceAccountName: serviceAccount,
				},
			}
			for _, a := range runArgs {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return fmt.Errorf("--arg must be NAME=VALUE, got %q", a)
				}
				ar.Spec.Args = append(ar.Spec.Args, deliveryv1.Argument{Name: k, Value: &v})
			}
			if err := c.Create(cmd.Context(), ar); err != nil {
				return fmt.Errorf("cannot create AnalysisRun: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "AnalysisRun %s/%s created; waiting for its verdict\n", ar.Namespace, ar.Name)
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			for !ar.Status.Completed() {
				select {
				case <-ctx.Done():
					return fmt.Errorf("AnalysisRun %s/%s has no verdict after %s (phase %q)", ar.Namespace, ar.Name, timeout, ar.Status.Phase)
				case <-time.After(time.Second):
				}
				if err := c.Get(ctx, client.ObjectKeyFromObject(ar), ar); err != nil {
					return fmt.Errorf("cannot get AnalysisRun %s/%s: %w", ar.Namespace, ar.Name, err)
				}
			}
			if err := printRun(cmd.OutOrStdout(), ar, output); err != nil {
				return err
			}
			if ar.Status.Phase != deliveryv1.PhaseSuccessful {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
	run.Flags().StringArrayVar(&runArgs, "arg", nil, "argument NAME=VALUE (repeatable)")
	run.Flags().BoolVar(&cluster, "cluster", false, "TEMPLATE is a ClusterAnalysisTemplate")
	run.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the verdict")
	run.Flags().StringVar(&serviceAccount, "service-account", "", "service account the run acts as (default: the manager's default)")
	run.Flags().StringVarP(&output, "output", "o", "", "output format: yaml or json (default: a summary)")
	cmd.AddCommand(get, run)
	return cmd
}

func checkOutput(o string) error {
	if o != "" && o != "yaml" && o != "json" {
		return fmt.Errorf("unknown output format %q (want yaml or json)", o)
	}
	return nil
}

// printRun writes the run as YAML, JSON, or a summary: the verdict, each
// metric's counters and every measurement with its resolved query.
func printRun(out io.Writer, run *deliveryv1.AnalysisRun, format string) error {
	run.ManagedFields = nil
	run.SetGroupVersionKind(deliveryv1.GroupVersion.WithKind("AnalysisRun"))
	switch format {
	case "json":
		b, err := json.MarshalIndent(run, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, string(b))
		return err
	case "yaml":
		b, err := yaml.Marshal(run)
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	}
	phase := run.Status.Phase
	if phase == "" {
		phase = deliveryv1.PhasePending
	}
	fmt.Fprintf(out, "AnalysisRun %s/%s: %s\n", run.Namespace, run.Name, phase)
	if run.Status.Message != "" {
		fmt.Fprintf(out, "  %s\n", run.Status.Message)
	}
	results := append([]deliveryv1.MetricResult(nil), run.Status.MetricResults...)
	sort.SliceStable(results, func(i, j int) bool { return results[i].Name < results[j].Name })
	for _, mr := range results {
		fmt.Fprintf(out, "\nMetric %s: %s (%d measurements: %d successful, %d failed, %d inconclusive, %d error)\n",
			mr.Name, mr.Phase, mr.Count, mr.Successful, mr.Failed, mr.Inconclusive, mr.Error)
		if mr.Message != "" {
			fmt.Fprintf(out, "  %s\n", mr.Message)
		}
		if len(mr.Measurements) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TIME\tPHASE\tVALUE\tQUERY\tMESSAGE")
		for _, m := range mr.Measurements {
			v := m.Value
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", m.StartedAt.UTC().Format(time.RFC3339), m.Phase, v, m.Query, m.Message)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
