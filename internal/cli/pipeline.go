package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

func init() { extraCommands = append(extraCommands, newPipelineCommand) }

func newPipelineCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Show promotion pipelines",
	}
	var output string
	var cf *clusterFlags
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Print a pipeline: its stages side by side, their revisions, verification, approvals and what waits for what",
		Long: `get prints the Pipeline NAME (or, when there is no Pipeline object, the
Stages whose spec.pipeline is NAME) with one column per stage, in promotion
order: where revisions come from, how they are promoted, the current and
last verified revisions, what the stage waits for, then per stage the
Approvals (who approved or rejected what, and whether it counted), the open
Promotions and the recent history. Everything it prints is in the Stage,
Promotion and Approval objects: kubectl get stages,promotions,approvals
shows the same.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutputFormat(output, "json", "yaml"); err != nil {
				return err
			}
			p, err := newPromotionClients(cf, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			v, err := loadPipeline(cmd.Context(), p.c, cf.ns(), args[0])
			if err != nil {
				return err
			}
			if output != "" {
				return printStructured(cmd.OutOrStdout(), output, v)
			}
			return renderPipeline(cmd.OutOrStdout(), v, time.Now())
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			out, dir := completeRef(cf)(cmd, nil, "pipeline/"+toComplete)
			for i := range out {
				out[i] = strings.TrimPrefix(out[i], "pipeline/")
			}
			return out, dir
		},
	}
	cf = addClusterFlags(get, false)
	addOutputFlag(get, &output, "json", "yaml")
	cmd.AddCommand(get)
	return cmd
}

// pipelineView is what `pipeline get` shows (and prints with -o json|yaml).
type pipelineView struct {
	Namespace   string      `json:"namespace"`
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	Stages      []stageView `json:"stages"`
	// Missing lists stages the Pipeline names that do not exist.
	Missing []string `json:"missing,omitempty"`
}

type stageView struct {
	Stage      deliveryv1.Stage       `json:"stage"`
	Approvals  []deliveryv1.Approval  `json:"approvals,omitempty"`
	Promotions []deliveryv1.Promotion `json:"promotions,omitempty"`
}

// loadPipeline reads the Pipeline and its Stages, and each stage's
// Approvals and Promotions.
func loadPipeline(ctx context.Context, c client.Client, ns, name string) (*pipelineView, error) {
	v := &pipelineView{Namespace: ns, Name: name}
	pl := &deliveryv1.Pipeline{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pl)
	switch {
	case apierrors.IsNotFound(err):
		pl = nil
	case err != nil:
		return nil, fmt.Errorf("cannot get Pipeline %s/%s: %w", ns, name, err)
	default:
		v.Description = pl.Spec.Description
	}
	seen := map[string]bool{}
	var stages []deliveryv1.Stage
	if pl != nil {
		for _, ref := range pl.Spec.Stages {
			sns, sname, ok := strings.Cut(ref, "/")
			if !ok {
				sns, sname = ns, ref
			}
			st := deliveryv1.Stage{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: sns, Name: sname}, &st); err != nil {
				if apierrors.IsNotFound(err) {
					v.Missing = append(v.Missing, sns+"/"+sname)
					continue
				}
				return nil, fmt.Errorf("cannot get Stage %s/%s of pipeline %s/%s: %w", sns, sname, ns, name, err)
			}
			seen[sns+"/"+sname] = true
			stages = append(stages, st)
		}
	}
	list := &deliveryv1.StageList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("cannot list Stages in %s: %w", ns, err)
	}
	for _, st := range list.Items {
		if st.Spec.Pipeline == name && !seen[st.Namespace+"/"+st.Name] {
			stages = append(stages, st)
		}
	}
	if pl == nil && len(stages) == 0 {
		return nil, &ExitError{Code: 1, Err: fmt.Errorf("no Pipeline %s/%s and no Stage in %s names it in spec.pipeline", ns, name, ns)}
	}
	if pl == nil || len(pl.Spec.Stages) == 0 {
		stages = promotionOrder(stages)
	}
	for _, st := range stages {
		sv := stageView{Stage: st}
		approvals := &deliveryv1.ApprovalList{}
		if err := c.List(ctx, approvals, client.InNamespace(st.Namespace)); err != nil && !apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("cannot list Approvals in %s: %w", st.Namespace, err)
		}
		for _, a := range approvals.Items {
			if a.Spec.Stage == st.Name {
				sv.Approvals = append(sv.Approvals, a)
			}
		}
		sort.SliceStable(sv.Approvals, func(i, j int) bool {
			return sv.Approvals[j].CreationTimestamp.Before(&sv.Approvals[i].CreationTimestamp)
		})
		promotions := &deliveryv1.PromotionList{}
		if err := c.List(ctx, promotions, client.InNamespace(st.Namespace)); err != nil && !apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("cannot list Promotions in %s: %w", st.Namespace, err)
		}
		for _, p := range promotions.Items {
			if p.Spec.Stage == st.Name {
				sv.Promotions = append(sv.Promotions, p)
			}
		}
		sort.SliceStable(sv.Promotions, func(i, j int) bool {
			return sv.Promotions[j].CreationTimestamp.Before(&sv.Promotions[i].CreationTimestamp)
		})
		for i := range sv.Approvals {
			sv.Approvals[i].ManagedFields = nil
		}
		for i := range sv.Promotions {
			sv.Promotions[i].ManagedFields = nil
		}
		sv.Stage.ManagedFields = nil
		v.Stages = append(v.Stages, sv)
	}
	return v, nil
}

// promotionOrder sorts stages so that a stage comes after the stage it
// takes revisions from; stages fed by a GitRepository come first.
func promotionOrder(stages []deliveryv1.Stage) []deliveryv1.Stage {
	key := func(s deliveryv1.Stage) string { return s.Namespace + "/" + s.Name }
	byKey := map[string]deliveryv1.Stage{}
	for _, s := range stages {
		byKey[key(s)] = s
	}
	depth := map[string]int{}
	var depthOf func(s deliveryv1.Stage, seen map[string]bool) int
	depthOf = func(s deliveryv1.Stage, seen map[string]bool) int {
		k := key(s)
		if d, ok := depth[k]; ok {
			return d
		}
		d := 0
		if src := s.Spec.Source.Stage; src != "" && !seen[k] {
			ns := s.Spec.Source.Namespace
			if ns == "" {
				ns = s.Namespace
			}
			seen[k] = true
			if up, ok := byKey[ns+"/"+src]; ok {
				d = depthOf(up, seen) + 1
			}
		}
		depth[k] = d
		return d
	}
	out := append([]deliveryv1.Stage(nil), stages...)
	sort.SliceStable(out, func(i, j int) bool {
		di, dj := depthOf(out[i], map[string]bool{}), depthOf(out[j], map[string]bool{})
		if di != dj {
			return di < dj
		}
		return key(out[i]) < key(out[j])
	})
	return out
}

// renderPipeline prints the view: a table with one column per stage, then
// each stage's approvals, open promotions and recent history.
func renderPipeline(w io.Writer, v *pipelineView, now time.Time) error {
	title := fmt.Sprintf("Pipeline %s/%s", v.Namespace, v.Name)
	if v.Description != "" {
		title += ": " + v.Description
	}
	fmt.Fprintln(w, title)
	for _, m := range v.Missing {
		fmt.Fprintf(w, "  stage %s is listed but does not exist\n", m)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	row := func(label string, cell func(sv stageView) string) {
		cells := []string{label}
		for _, sv := range v.Stages {
			c := cell(sv)
			if c == "" {
				c = "-"
			}
			cells = append(cells, c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	row("STAGE", func(sv stageView) string { return sv.Stage.Name })
	row("NAMESPACE", func(sv stageView) string { return sv.Stage.Namespace })
	row("SYNC", func(sv stageView) string { return "sync/" + sv.Stage.Spec.SyncRef.Name })
	row("SOURCE", func(sv stageView) string {
		src := sv.Stage.Spec.Source
		if src.GitRepository != "" {
			return "gitrepository/" + src.GitRepository
		}
		if src.Namespace != "" && src.Namespace != sv.Stage.Namespace {
			return "stage " + src.Namespace + "/" + src.Stage
		}
		return "stage " + src.Stage
	})
	row("PROMOTION", func(sv stageView) string {
		p := sv.Stage.Spec.Promotion
		if sv.Stage.Spec.Source.GitRepository != "" && !p.Auto && p.Mode == "" && p.Approval == nil {
			return "follows its source"
		}
		return promotionSummary(p)
	})
	row("APPROVAL", func(sv stageView) string { return approvalSummary(sv.Stage.Spec.Promotion.Approval) })
	row("REVISION", func(sv stageView) string { return short(sv.Stage.Status.CurrentRevision) })
	row("VERIFIED", func(sv stageView) string {
		if len(sv.Stage.Status.VerifiedRevisions) == 0 {
			return ""
		}
		vr := sv.Stage.Status.VerifiedRevisions[0]
		s := short(vr.Revision) + " " + ago(now, vr.VerifiedAt.Time)
		if vr.Run != "" {
			s += " (" + vr.Run + ")"
		}
		return s
	})
	row("VERIFYING", func(sv stageView) string {
		if vs := sv.Stage.Status.Verification; vs != nil {
			return short(vs.Revision) + " " + vs.Phase + " (" + vs.Run + ")"
		}
		return ""
	})
	row("WAITING", func(sv stageView) string {
		p := sv.Stage.Status.Pending
		if p == nil {
			return ""
		}
		return short(p.Revision) + " for " + p.WaitingFor + " " + ago(now, p.Since.Time)
	})
	row("READY", func(sv stageView) string {
		st, reason, _ := stageCondition(sv.Stage, "Ready")
		return strings.TrimSpace(st + " " + reason)
	})
	if err := tw.Flush(); err != nil {
		return err
	}

	for _, sv := range v.Stages {
		s := sv.Stage
		fmt.Fprintf(w, "\nStage %s/%s\n", s.Namespace, s.Name)
		if st, reason, msg := stageCondition(s, "Ready"); msg != "" {
			fmt.Fprintf(w, "  %s %s: %s\n", st, reason, msg)
		}
		if p := s.Status.Pending; p != nil {
			line := fmt.Sprintf("  waiting: revision %s for %s since %s", short(p.Revision), p.WaitingFor, p.Since.UTC().Format(time.RFC3339))
			if p.Until != nil {
				line += ", until " + p.Until.UTC().Format(time.RFC3339)
			}
			if p.Run != "" {
				line += ", verified upstream by " + p.Run
			}
			fmt.Fprintln(w, line)
			if p.Message != "" {
				fmt.Fprintf(w, "    %s\n", p.Message)
			}
		}
		if len(sv.Approvals) > 0 {
			fmt.Fprintln(w, "  approvals:")
			at := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for _, a := range sv.Approvals {
				counted := "not counted yet"
				if c := findCondition(a.Status.Conditions, deliveryv1.ConditionCounted); c != nil {
					if c.Status == metav1.ConditionTrue {
						counted = "counted"
					} else {
						counted = "not counted: " + c.Reason
					}
				}
				comment := ""
				if a.Spec.Comment != "" {
					comment = fmt.Sprintf("%q", a.Spec.Comment)
				}
				fmt.Fprintf(at, "    %s\t%s\t%s\t%s\t%s\t%s\n", a.Spec.Approver, a.Spec.Decision, short(a.Spec.Revision), counted, ago(now, a.CreationTimestamp.Time), comment)
			}
			if err := at.Flush(); err != nil {
				return err
			}
		}
		var open []deliveryv1.Promotion
		for _, p := range sv.Promotions {
			switch p.Status.Phase {
			case deliveryv1.PromotionSucceeded, deliveryv1.PromotionRejected, deliveryv1.PromotionWithdrawn,
				deliveryv1.PromotionSuperseded, deliveryv1.PromotionFailed:
				continue
			}
			open = append(open, p)
		}
		if len(open) > 0 {
			fmt.Fprintln(w, "  promotions:")
			pt := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for _, p := range open {
				phase := p.Status.Phase
				if phase == "" {
					phase = deliveryv1.PromotionPending
				}
				what := ""
				if p.Status.WaitingFor != "" {
					what = "waiting for " + p.Status.WaitingFor
				}
				by := ""
				if p.Spec.RequestedBy != nil {
					by = "requested by " + p.Spec.RequestedBy.Username
				}
				if p.Spec.OverrideWindows {
					by += " (overrides windows)"
				}
				fmt.Fprintf(pt, "    %s\t%s\t%s\t%s\t%s\n", p.Name, short(p.Spec.Revision), phase, what, strings.TrimSpace(by))
			}
			if err := pt.Flush(); err != nil {
				return err
			}
		}
		if len(s.Status.History) > 0 {
			fmt.Fprintln(w, "  history:")
			ht := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for i, h := range s.Status.History {
				if i == 5 {
					break
				}
				extra := []string{}
				if len(h.ApprovedBy) > 0 {
					extra = append(extra, "approved by "+strings.Join(h.ApprovedBy, ", "))
				}
				if h.OverriddenBy != "" {
					extra = append(extra, "window overridden by "+h.OverriddenBy)
				}
				if h.Commit != "" {
					extra = append(extra, "commit "+short(h.Commit))
				}
				if h.Message != "" {
					extra = append(extra, h.Message)
				}
				fmt.Fprintf(ht, "    %s\t%s\t%s\t%s\n", short(h.Revision), h.Result, ago(now, h.Time.Time), strings.Join(extra, "; "))
			}
			if err := ht.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func promotionSummary(p deliveryv1.PromotionPolicy) string {
	mode := p.Mode
	if mode == "" {
		mode = deliveryv1.PromotionModePin
	}
	parts := []string{mode}
	if p.Auto {
		parts = append(parts, "auto")
	} else {
		parts = append(parts, "manual")
	}
	if p.RequiredSoakTime != nil && p.RequiredSoakTime.Duration > 0 {
		parts = append(parts, "soak "+p.RequiredSoakTime.Duration.String())
	}
	deny, allow := 0, 0
	for _, win := range p.Windows {
		if win.Kind == deliveryv1.WindowDeny {
			deny++
		} else {
			allow++
		}
	}
	if deny > 0 {
		parts = append(parts, fmt.Sprintf("%d deny window(s)", deny))
	}
	if allow > 0 {
		parts = append(parts, fmt.Sprintf("%d allow window(s)", allow))
	}
	return strings.Join(parts, ", ")
}

func approvalSummary(a *deliveryv1.ApprovalPolicy) string {
	if a == nil || !a.Required {
		return "none"
	}
	n := a.MinApprovals
	if n == 0 {
		n = 1
	}
	who := []string{}
	if len(a.Approvers.Users) > 0 {
		who = append(who, "users "+strings.Join(a.Approvers.Users, ","))
	}
	if len(a.Approvers.Groups) > 0 {
		who = append(who, "groups "+strings.Join(a.Approvers.Groups, ","))
	}
	if len(who) == 0 {
		who = append(who, "anyone RBAC allows")
	}
	return fmt.Sprintf("%d of %s", n, strings.Join(who, "; "))
}

func stageCondition(s deliveryv1.Stage, t string) (status, reason, message string) {
	if c := findCondition(s.Status.Conditions, t); c != nil {
		return string(c.Status), c.Reason, c.Message
	}
	return "Unknown", "", ""
}

func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// ago is a short relative time ("3m ago").
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
