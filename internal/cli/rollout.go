package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/delivery/rollout"
	"github.com/strata-dev/strata/internal/scheme"
)

func init() { extraCommands = append(extraCommands, newRolloutCommand) }

// The rollout commands are plain API calls: `get` reads the Rollout, its
// pods and AnalysisRuns; promote, abort and retry set one annotation on the
// Rollout (deliveryv1.PromoteAnnotation, PromoteFullAnnotation,
// AbortAnnotation, RetryAnnotation) to a new token, which the controller
// acts on once, so
//
//	kubectl annotate rollout NAME delivery.strata.dev/promote=$(date +%s) --overwrite
//
// does the same as `strata rollout promote NAME`.
func newRolloutCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Inspect and steer Rollouts (canary and blue-green releases)",
	}
	cmd.AddCommand(newRolloutGet(),
		newRolloutRequest("promote", "Skip the current pause or analysis step (--full: every remaining step) of a Rollout",
			deliveryv1.PromoteAnnotation, "promotion"),
		newRolloutRequest("abort", "Abort a Rollout: every pod and all traffic back on the stable revision, the canary kept at zero",
			deliveryv1.AbortAnnotation, "abort"),
		newRolloutRequest("retry", "Roll an aborted revision out again from the first step",
			deliveryv1.RetryAnnotation, "retry"))
	return cmd
}

func rolloutClient(f *clusterFlags) (client.Client, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme.New()})
}

// completeRollout completes Rollout names of the namespace.
func completeRollout(f *clusterFlags) cobra.CompletionFunc {
	ref := completeRef(f)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		names, dir := ref(cmd, args, "rollout.delivery.strata.dev/"+toComplete)
		for i, n := range names {
			_, names[i], _ = strings.Cut(n, "/")
		}
		return names, dir
	}
}

func newRolloutRequest(verb, short, annotation, what string) *cobra.Command {
	var full bool
	cmd := &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Long: short + ".\n\nIt sets the annotation " + annotation + " on the Rollout to a new value; the\n" +
			"controller acts on each new value once. kubectl can do the same:\n\n" +
			"  kubectl annotate rollout NAME " + annotation + "=$(date +%s) --overwrite",
		Args: cobra.ExactArgs(1),
	}
	f := addClusterFlags(cmd, false)
	cmd.ValidArgsFunction = completeRollout(f)
	if verb == "promote" {
		cmd.Flags().BoolVar(&full, "full", false, "skip every remaining step (annotation "+deliveryv1.PromoteFullAnnotation+")")
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := rolloutClient(f)
		if err != nil {
			return err
		}
		key, label := annotation, what
		if full {
			key, label = deliveryv1.PromoteFullAnnotation, "full promotion"
		}
		ro := &deliveryv1.Rollout{}
		ns := f.ns()
		if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: args[0]}, ro); err != nil {
			return fmt.Errorf("cannot get Rollout %s/%s: %w", ns, args[0], err)
		}
		token := time.Now().UTC().Format(time.RFC3339Nano)
		p, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: token}}})
		if err := c.Patch(cmd.Context(), ro, client.RawPatch("application/merge-patch+json", p)); err != nil {
			return fmt.Errorf("cannot annotate Rollout %s/%s: %w", ns, args[0], err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Rollout %s/%s: %s requested (%s=%s)\n", ns, ro.Name, label, key, token)
		return nil
	}
	return cmd
}

func newRolloutGet() *cobra.Command {
	var output string
	var watch bool
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Print a Rollout: its revisions with their pods, its steps, weights and analysis verdicts",
		Args:  cobra.ExactArgs(1),
	}
	f := addClusterFlags(cmd, false)
	cmd.ValidArgsFunction = completeRollout(f)
	addOutputFlag(cmd, &output, "yaml", "json")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print again whenever the Rollout or its pods change, until interrupted")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutputFormat(output, "yaml", "json"); err != nil {
			return err
		}
		c, err := rolloutClient(f)
		if err != nil {
			return err
		}
		ns, name := f.ns(), args[0]
		ctx := cmd.Context()
		last := ""
		for {
			var b strings.Builder
			if err := describeRollout(ctx, c, ns, name, output, &b); err != nil {
				return err
			}
			if b.String() != last {
				if last != "" {
					fmt.Fprintln(cmd.OutOrStdout(), "---")
				}
				fmt.Fprint(cmd.OutOrStdout(), b.String())
				last = b.String()
			}
			if !watch {
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
	return cmd
}

// describeRollout writes the Rollout as YAML, JSON or a summary.
func describeRollout(ctx context.Context, c client.Client, ns, name, format string, out io.Writer) error {
	ro := &deliveryv1.Rollout{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, ro); err != nil {
		return fmt.Errorf("cannot get Rollout %s/%s: %w", ns, name, err)
	}
	ro.ManagedFields = nil
	ro.SetGroupVersionKind(deliveryv1.GroupVersion.WithKind("Rollout"))
	switch format {
	case "json":
		b, err := json.MarshalIndent(ro, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, string(b))
		return err
	case "yaml":
		b, err := yaml.Marshal(ro)
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	}
	st := ro.Status
	phase := st.Phase
	if phase == "" {
		phase = "Pending"
	}
	strategy := "Canary"
	if ro.Spec.Strategy.BlueGreen != nil {
		strategy = "BlueGreen"
	}
	fmt.Fprintf(out, "Rollout %s/%s: %s (%s, Deployment %s, Service %s)\n", ns, name, phase, strategy, ro.Spec.TargetRef.Name, ro.Spec.Service)
	if st.Message != "" {
		fmt.Fprintf(out, "  %s\n", st.Message)
	}
	if a := st.Aborted; a != nil {
		fmt.Fprintf(out, "  Aborted: revision %s (%s): %s\n", revisionLabel(&a.Revision), a.Reason, a.Message)
	}
	fmt.Fprintf(out, "  Weight: %d%%\n", st.Weight)
	if ro.Spec.Strategy.BlueGreen != nil && st.CanaryRevision != nil && st.CurrentStep != nil {
		fmt.Fprintf(out, "  Stage: %d (%s)\n", *st.CurrentStep, rollout.BlueGreenStageName(*st.CurrentStep))
	}

	fmt.Fprintln(out, "\nRevisions:")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ROLE\tHASH\tGIT REVISION\tPODS READY")
	for _, r := range []struct {
		role string
		rev  *deliveryv1.RevisionInfo
	}{{"stable", st.StableRevision}, {"canary", st.CanaryRevision}} {
		if r.rev == nil {
			continue
		}
		role := r.role
		if role == "canary" && strategy == "BlueGreen" {
			role = "preview"
		}
		if st.Aborted != nil && r.role == "canary" && st.Aborted.Revision.PodTemplateHash == r.rev.PodTemplateHash {
			role += " (aborted)"
		}
		ready, total := podsOf(ctx, c, ns, r.rev.PodTemplateHash)
		git := r.rev.GitRevision
		if git == "" {
			git = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d/%d\n", role, r.rev.PodTemplateHash, git, ready, total)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if cs := ro.Spec.Strategy.Canary; cs != nil && len(cs.Steps) > 0 {
		fmt.Fprintln(out, "\nSteps:")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  #\tSTEP\tSTATE")
		cur := ptr.Deref(st.CurrentStep, -1)
		for i, s := range cs.Steps {
			state := ""
			switch {
			case st.CanaryRevision == nil && st.StableRevision != nil && cur >= int32(len(cs.Steps)):
				state = "done"
			case st.CanaryRevision == nil:
			case int32(i) < cur:
				state = "done"
			case int32(i) == cur && st.Aborted != nil:
				state = "aborted"
			case int32(i) == cur:
				state = "current"
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\n", i, describeStep(s), state)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(st.AnalysisRuns) > 0 {
		fmt.Fprintln(out, "\nAnalysis:")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  RUN\tKIND\tSTEP\tVERDICT\tMESSAGE")
		for _, a := range st.AnalysisRuns {
			step := "-"
			if a.Kind == deliveryv1.AnalysisKindStep {
				step = fmt.Sprint(a.Step)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", a.Name, a.Kind, step, a.Phase, a.Message)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "\nConditions:")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TYPE\tSTATUS\tREASON\tMESSAGE")
	for _, t := range []string{"Ready", "Reconciling", "Stalled", deliveryv1.ConditionPaused} {
		if cond := meta.FindStatusCondition(st.Conditions, t); cond != nil {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", cond.Type, cond.Status, cond.Reason, cond.Message)
		}
	}
	return tw.Flush()
}

func revisionLabel(r *deliveryv1.RevisionInfo) string {
	if r.GitRevision == "" {
		return r.PodTemplateHash
	}
	return r.PodTemplateHash + " (" + r.GitRevision + ")"
}

func describeStep(s deliveryv1.CanaryStep) string {
	switch {
	case s.SetWeight != nil:
		return fmt.Sprintf("setWeight %d", *s.SetWeight)
	case s.Pause != nil && s.Pause.Duration != nil:
		return "pause " + s.Pause.Duration.Duration.String()
	case s.Pause != nil:
		return "pause (until promoted)"
	case s.Analysis != nil:
		names := make([]string, 0, len(s.Analysis.Templates))
		for _, t := range s.Analysis.Templates {
			names = append(names, t.Name)
		}
		return "analysis " + strings.Join(names, ",")
	case s.SetCanaryScale != nil:
		switch sc := s.SetCanaryScale; {
		case sc.Replicas != nil:
			return fmt.Sprintf("setCanaryScale replicas=%d", *sc.Replicas)
		case sc.Weight != nil:
			return fmt.Sprintf("setCanaryScale weight=%d", *sc.Weight)
		}
		return "setCanaryScale matchTrafficWeight"
	}
	return "?"
}

// podsOf counts the Ready and all pods of one revision in ns.
func podsOf(ctx context.Context, c client.Client, ns, hash string) (ready, total int) {
	if hash == "" {
		return 0, 0
	}
	list := &corev1.PodList{}
	if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{deliveryv1.PodTemplateHashLabel: hash}); err != nil {
		return 0, 0
	}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		total++
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return ready, total
}
