package cli

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func init() { extraCommands = append(extraCommands, newEventsCommand) }

func newEventsCommand() *cobra.Command {
	var output string
	var cf *clusterFlags
	cmd := &cobra.Command{
		Use:   "events [KIND/NAME]",
		Short: "Print the events of Strata objects, or of one object",
		Long: `events lists events in the namespace (-A: every namespace), oldest first;
with KIND/NAME only that object's. Without an argument only events about
Strata's kinds (*.strata.dev) are shown.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutputFormat(output, "json", "yaml", "wide"); err != nil {
				return err
			}
			k, err := newKube(cf)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			ctx := cmd.Context()
			ns := cf.listNamespace()
			opts := metav1.ListOptions{}
			strataOnly := true
			if len(args) == 1 {
				u, m, err := k.get(ctx, args[0], cf.ns())
				if err != nil {
					return &ExitError{Code: 2, Err: err}
				}
				ns = u.GetNamespace()
				opts.FieldSelector = fields.AndSelectors(
					fields.OneTermEqualSelector("involvedObject.kind", m.GroupVersionKind.Kind),
					fields.OneTermEqualSelector("involvedObject.name", u.GetName()),
					fields.OneTermEqualSelector("involvedObject.uid", string(u.GetUID())),
				).String()
				strataOnly = false
			}
			list, err := k.cs.CoreV1().Events(ns).List(ctx, opts)
			if err != nil {
				return &ExitError{Code: 2, Err: fmt.Errorf("cannot list events: %w", err)}
			}
			var evs []corev1.Event
			for _, e := range list.Items {
				if strataOnly && !strings.Contains(e.InvolvedObject.APIVersion, "strata.dev/") {
					continue
				}
				evs = append(evs, e)
			}
			sort.SliceStable(evs, func(i, j int) bool { return eventTime(evs[i]).Before(eventTime(evs[j])) })
			if output == "json" || output == "yaml" {
				return printStructured(cmd.OutOrStdout(), output, map[string]any{"apiVersion": "v1", "kind": "List", "items": evs})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			header := "LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE"
			if ns == "" {
				header = "NAMESPACE\t" + header
			}
			if output == "wide" {
				header += "\tSOURCE\tCOUNT"
			}
			fmt.Fprintln(tw, header)
			for _, e := range evs {
				line := fmt.Sprintf("%s\t%s\t%s\t%s/%s\t%s", time.Since(eventTime(e)).Round(time.Second), e.Type, e.Reason,
					strings.ToLower(e.InvolvedObject.Kind), e.InvolvedObject.Name, e.Message)
				if ns == "" {
					line = e.Namespace + "\t" + line
				}
				if output == "wide" {
					src := e.ReportingController
					if src == "" {
						src = e.Source.Component
					}
					line += fmt.Sprintf("\t%s\t%d", src, max(e.Count, 1))
				}
				fmt.Fprintln(tw, line)
			}
			return tw.Flush()
		},
	}
	cf = addClusterFlags(cmd, true)
	cmd.ValidArgsFunction = completeRef(cf)
	addOutputFlag(cmd, &output, "json", "yaml", "wide")
	return cmd
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case e.Series != nil:
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
