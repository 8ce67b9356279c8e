package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/scheme"
)

// promote, approve and reject are plain API calls: each creates one object
// (a Promotion or an Approval) as the user of the kubeconfig, so RBAC on
// promotions and approvals governs them and `kubectl create -f` can do the
// same. The identity written into the object (spec.requestedBy,
// spec.approver) is the one the API server reports for the request
// (SelfSubjectReview); Strata's admission policy refuses any other.

func init() {
	extraCommands = append(extraCommands, newPromoteCommand,
		func() *cobra.Command { return newDecisionCommand(deliveryv1.DecisionApprove) },
		func() *cobra.Command { return newDecisionCommand(deliveryv1.DecisionReject) })
}

// promotionClients are what promote, approve and reject need.
type promotionClients struct {
	c  client.Client
	cs kubernetes.Interface
}

func newPromotionClients(f *clusterFlags, errOut io.Writer) (*promotionClients, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	// Warnings of the API server (the admission policy warns a user who
	// asks to override a window without the right to) go to stderr, as
	// kubectl prints them.
	cfg.WarningHandler = rest.NewWarningWriter(errOut, rest.WarningWriterOptions{Deduplicate: true})
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, fmt.Errorf("cannot build client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot build client: %w", err)
	}
	return &promotionClients{c: c, cs: cs}, nil
}

// whoAmI is the user the API server sees for this kubeconfig
// (SelfSubjectReview, as `kubectl auth whoami`).
func (p *promotionClients) whoAmI(ctx context.Context) (authenticationv1.UserInfo, error) {
	r, err := p.cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return authenticationv1.UserInfo{}, fmt.Errorf("cannot tell who you are (SelfSubjectReview): %w", err)
	}
	return r.Status.UserInfo, nil
}

// stage reads the Stage of a stage/NAME argument.
func (p *promotionClients) stage(ctx context.Context, ref, ns string) (*deliveryv1.Stage, error) {
	name, err := stageName(ref)
	if err != nil {
		return nil, err
	}
	st := &deliveryv1.Stage{}
	if err := p.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, st); err != nil {
		return nil, fmt.Errorf("cannot get Stage %s/%s: %w", ns, name, err)
	}
	return st, nil
}

// stageName accepts stage/NAME (any spelling of the kind kubectl accepts).
func stageName(ref string) (string, error) {
	kind, name, err := splitRef(ref)
	if err != nil {
		return "", &ExitError{Code: 2, Err: fmt.Errorf("argument must be stage/NAME, got %q", ref)}
	}
	switch strings.ToLower(kind) {
	case "stage", "stages", "stage.delivery.strata.dev", "stages.delivery.strata.dev":
		return name, nil
	}
	return "", &ExitError{Code: 2, Err: fmt.Errorf("argument must be stage/NAME, got kind %q", kind)}
}

// createError explains a refused create: RBAC and the admission policy
// answer Forbidden with their reason, which is printed as is.
func createError(kind, ns string, err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("the API server refused the %s in namespace %s: %w", kind, ns, err)
	}
	return fmt.Errorf("cannot create %s in namespace %s: %w", kind, ns, err)
}

func newPromoteCommand() *cobra.Command {
	var revision string
	var override bool
	var cf *clusterFlags
	cmd := &cobra.Command{
		Use:   "promote stage/NAME --revision REV",
		Short: "Ask Strata to promote a revision into a stage (creates a Promotion)",
		Long: `promote creates a Promotion of REV (a commit SHA verified by the stage's
source stage) into the stage, recording you as spec.requestedBy. The Stage's
gates still apply: soak time, approvals and windows. With --override-windows
the promotion goes through a deny window if you hold the verb "override" on
promotions in the namespace; the override is recorded in the stage's history.

It is the same as: kubectl create -f promotion.yaml (see docs/promotion.md).`,
		Example: `  strata promote stage/production --revision 3f2a9c1 -n shop-prod`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := stageName(args[0])
			if err != nil {
				return err
			}
			if revision == "" {
				return &ExitError{Code: 2, Err: fmt.Errorf("--revision is required")}
			}
			p, err := newPromotionClients(cf, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			ctx, ns := cmd.Context(), cf.ns()
			me, err := p.whoAmI(ctx)
			if err != nil {
				return err
			}
			pr := &deliveryv1.Promotion{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: name + "-"},
				Spec: deliveryv1.PromotionSpec{Stage: name, Revision: revision, OverrideWindows: override,
					RequestedBy: &deliveryv1.RequestUser{Username: me.Username, Groups: me.Groups}},
			}
			if err := p.c.Create(ctx, pr); err != nil {
				return createError("Promotion", ns, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "promotion/%s created: revision %s into stage %s/%s, requested by %s\n", pr.Name, revision, ns, name, me.Username)
			return nil
		},
		ValidArgsFunction: completeStage(&cf),
	}
	cf = addClusterFlags(cmd, false)
	cmd.Flags().StringVar(&revision, "revision", "", "commit SHA to promote (at least 7 hex digits)")
	cmd.Flags().BoolVar(&override, "override-windows", false, "promote through a deny window (needs the override verb on promotions)")
	return cmd
}

// newDecisionCommand returns `strata approve` or `strata reject`.
func newDecisionCommand(decision string) *cobra.Command {
	var revision, comment string
	var cf *clusterFlags
	verb := strings.ToLower(decision)
	cmd := &cobra.Command{
		Use:   verb + " stage/NAME [--revision REV] [-m COMMENT]",
		Short: map[string]string{deliveryv1.DecisionApprove: "Approve", deliveryv1.DecisionReject: "Reject"}[decision] + " a revision for a stage (creates an Approval as you)",
		Long: verb + ` creates an Approval of REV for the stage, with decision ` + decision + `,
naming you (the user the API server authenticates, as "kubectl auth whoami"
shows) as spec.approver and your groups as spec.groups. Without --revision it
is the revision the stage is waiting for (status.pending). The API server
refuses an Approval that names someone else, and refuses to change one;
RBAC on approvals decides who may create one, and the Stage's approvers
whose count (kubectl get approvals shows COUNTED and the reason).`,
		Example: `  strata ` + verb + ` stage/production -n shop-prod -m "load test ok"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := stageName(args[0]); err != nil {
				return err
			}
			p, err := newPromotionClients(cf, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			ctx, ns := cmd.Context(), cf.ns()
			name, _ := stageName(args[0])
			rev := revision
			st, err := p.stage(ctx, args[0], ns)
			switch {
			case err != nil && rev != "" && apierrors.IsForbidden(err):
				// Approving does not need to read the Stage: the API
				// server decides on the Approval itself.
			case err != nil:
				return err
			case rev == "":
				if st.Status.Pending == nil || st.Status.Pending.Revision == "" {
					return &ExitError{Code: 1, Err: fmt.Errorf("stage %s/%s waits for no revision; name one with --revision", ns, name)}
				}
				rev = st.Status.Pending.Revision
			}
			me, err := p.whoAmI(ctx)
			if err != nil {
				return err
			}
			a := &deliveryv1.Approval{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: name + "-" + short(rev) + "-"},
				Spec: deliveryv1.ApprovalSpec{Stage: name, Revision: rev, Decision: decision, Comment: comment,
					Approver: me.Username, Groups: me.Groups},
			}
			if err := p.c.Create(ctx, a); err != nil {
				return createError("Approval", ns, err)
			}
			past := map[string]string{deliveryv1.DecisionApprove: "approved", deliveryv1.DecisionReject: "rejected"}[decision]
			fmt.Fprintf(cmd.OutOrStdout(), "approval/%s created: %s %s revision %s for stage %s/%s\n", a.Name, me.Username, past, short(rev), ns, name)
			return nil
		},
		ValidArgsFunction: completeStage(&cf),
	}
	cf = addClusterFlags(cmd, false)
	cmd.Flags().StringVar(&revision, "revision", "", "commit SHA (default: the revision the stage waits for)")
	cmd.Flags().StringVarP(&comment, "message", "m", "", "comment recorded in the Approval")
	return cmd
}

// completeStage completes stage/NAME from the cluster.
func completeStage(cf **clusterFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if !strings.Contains(toComplete, "/") {
			return []string{"stage/"}, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
		}
		return completeRef(*cf)(cmd, args, toComplete)
	}
}

// short is a revision's first 7 characters.
func short(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}
