package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-dev/strata/internal/install"
)

// managerGoneTimeout bounds how long uninstall waits for the manager's pods
// to end before it removes finalizers.
const managerGoneTimeout = 2 * time.Minute

func newUninstallCommand() *cobra.Command {
	var force, keepCRDs bool
	var cf *clusterFlags
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove Strata from a cluster",
		Long: `uninstall deletes what strata install created: the manager, its RBAC, the
namespace and the CRDs. It refuses (exit 1) while Syncs, managed resources,
composite resources or claims exist, and names them.

--force uninstalls anyway. It first says what it will orphan: once the
manager is gone nothing runs the cleanup Strata's finalizers stand for, so
after the manager's pods have ended uninstall removes Strata's finalizers
(only those of *.strata.dev; other finalizers stay) from the objects that
still carry them, and each such object is listed with what is left behind
(an external resource not deleted, applied objects not pruned...). Deleting
the CRDs then deletes every Strata object. With --keep-crds the objects
stay, and only those already being deleted lose Strata's finalizers.
Without --force the same is done, with the same list, for what can remain
(GitRepositories, XRDs, ProviderConfigs), whose CRDs could not go otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			o := install.Options{}
			if cmd.Flags().Changed("namespace") {
				o.Namespace = cf.namespace
			}
			cfg, err := cf.config()
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			used, err := install.InUse(ctx, cfg)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if len(used) > 0 && !force {
				return &ExitError{Code: 1, Err: fmt.Errorf("refusing to uninstall: %d objects still use Strata (delete them first, or use --force):\n  %s",
					len(used), strings.Join(used, "\n  "))}
			}
			held, err := install.Finalized(ctx, cfg)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			explainOrphans(out, held, keepCRDs)
			objs, err := install.Objects(o)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			// The CRDs and the approval gate's admission policies go last, and
			// stay together with --keep-crds: Approvals made while the policies
			// were gone could name anyone, and would count after a reinstall.
			var crds, rest []*unstructured.Unstructured
			for _, u := range objs {
				switch u.GetKind() {
				case "CustomResourceDefinition", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
					crds = append(crds, u)
				default:
					rest = append(rest, u)
				}
			}
			// The manager and its RBAC first, so nothing adds finalizers
			// back; then Strata's finalizers; then the CRDs.
			n, err := install.Delete(ctx, cfg, rest)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if len(held) > 0 {
				ns := o.Namespace
				if ns == "" {
					ns = install.DefaultNamespace
				}
				if err := install.WaitManagerGone(ctx, cfg, ns, managerGoneTimeout); err != nil {
					return &ExitError{Code: 2, Err: err}
				}
				cleared, err := install.ClearFinalizers(ctx, cfg, keepCRDs)
				if err != nil {
					return &ExitError{Code: 2, Err: err}
				}
				fmt.Fprintf(out, "removed Strata's finalizers from %d objects\n", len(cleared))
			}
			if !keepCRDs {
				m, err := install.Delete(ctx, cfg, crds)
				if err != nil {
					return &ExitError{Code: 2, Err: err}
				}
				n += m
			}
			fmt.Fprintf(out, "deleted %d objects\n", n)
			return nil
		},
	}
	cf = addClusterFlags(cmd, false)
	cmd.Flags().Lookup("namespace").Usage = "namespace of the manager (default strata-system)"
	cmd.Flags().BoolVar(&force, "force", false, "uninstall even while Strata objects exist, removing Strata's finalizers (says what this orphans)")
	cmd.Flags().BoolVar(&keepCRDs, "keep-crds", false, "leave the CRDs (and so every Strata object) in place")
	return cmd
}

// explainOrphans says, before anything is deleted, which objects will lose
// Strata's finalizers and what each leaves behind; and which keep other
// finalizers (and so stay, with their CRD, until those are removed).
func explainOrphans(out io.Writer, held []install.Held, keepCRDs bool) {
	var clear []install.Held
	for _, h := range held {
		if !keepCRDs || h.Deleting {
			clear = append(clear, h)
		}
	}
	if len(clear) == 0 {
		return
	}
	fmt.Fprintf(out, "Once the manager is gone, Strata's finalizers are removed from %d objects without their cleanup; this orphans:\n", len(clear))
	for _, h := range clear {
		fmt.Fprintf(out, "  %s\n", h)
		for _, o := range h.Orphans() {
			fmt.Fprintf(out, "    %s\n", o)
		}
		if len(h.Others) > 0 {
			fmt.Fprintf(out, "    keeps %s (not Strata's): it stays until their owner removes them\n", strings.Join(h.Others, ", "))
		}
	}
}
