package cli

import (
	"bufio"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-dev/strata/internal/install"
)

func init() { extraCommands = append(extraCommands, newLogsCommand) }

func newLogsCommand() *cobra.Command {
	var managerNS string
	var since time.Duration
	var tail int64
	var cf *clusterFlags
	cmd := &cobra.Command{
		Use:   "logs [KIND/NAME]",
		Short: "Print the manager's log lines (about one object, with KIND/NAME)",
		Long: `logs reads the logs of the manager pods in --manager-namespace and prints
the lines that mention KIND/NAME (as "namespace/name", or as name and
namespace fields of a structured line); without an argument, every line.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := newKube(cf)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			ctx := cmd.Context()
			ns, name := "", ""
			if len(args) == 1 {
				u, _, err := k.get(ctx, args[0], cf.ns())
				if err != nil {
					return &ExitError{Code: 2, Err: err}
				}
				ns, name = u.GetNamespace(), u.GetName()
			}
			pods, err := k.cs.CoreV1().Pods(managerNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=strata,app.kubernetes.io/component=manager"})
			if err != nil {
				return &ExitError{Code: 2, Err: fmt.Errorf("cannot list manager pods: %w", err)}
			}
			if len(pods.Items) == 0 {
				return &ExitError{Code: 2, Err: fmt.Errorf("no manager pod in namespace %s", managerNS)}
			}
			opts := &corev1.PodLogOptions{Container: "manager"}
			if since > 0 {
				s := int64(since.Seconds())
				opts.SinceSeconds = &s
			}
			if tail > 0 {
				opts.TailLines = &tail
			}
			for _, p := range pods.Items {
				rc, err := k.cs.CoreV1().Pods(managerNS).GetLogs(p.Name, opts).Stream(ctx)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "cannot read logs of %s: %v\n", p.Name, err)
					continue
				}
				sc := bufio.NewScanner(rc)
				sc.Buffer(make([]byte, 64*1024), 1024*1024)
				for sc.Scan() {
					if name == "" || logMentions(sc.Text(), ns, name) {
						fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", p.Name, sc.Text())
					}
				}
				rc.Close()
			}
			return nil
		},
	}
	cf = addClusterFlags(cmd, false)
	cmd.ValidArgsFunction = completeRef(cf)
	cmd.Flags().StringVar(&managerNS, "manager-namespace", install.DefaultNamespace, "namespace strata is installed in")
	cmd.Flags().DurationVar(&since, "since", 0, "only lines newer than this (e.g. 1h)")
	cmd.Flags().Int64Var(&tail, "tail", 0, "only the last N lines of each pod (0: all)")
	return cmd
}

// logMentions reports whether a manager log line is about the object
// ns/name: klog.KObj renders it "ns/name" (or "name" for cluster-scoped
// objects, as a quoted value); controller-runtime's JSON lines carry
// {"name":"...","namespace":"..."}.
func logMentions(line, ns, name string) bool {
	ref := name
	if ns != "" {
		ref = ns + "/" + name
	}
	// The reference, not part of a longer name ("team/app" is not in "team/app2").
	re := regexp.MustCompile(`(^|[^a-z0-9./-])` + regexp.QuoteMeta(ref) + `($|[^a-z0-9./-])`)
	if re.MatchString(line) {
		return true
	}
	return strings.Contains(line, `"name":"`+name+`"`) && (ns == "" || strings.Contains(line, `"namespace":"`+ns+`"`))
}
