package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-dev/strata/internal/install"
)

func newUninstallCommand() *cobra.Command {
	var force, keepCRDs bool
	var cf *clusterFlags
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove Strata from a cluster",
		Long: `uninstall deletes what strata install created: the manager, its RBAC, the
namespace and the CRDs. It refuses while Syncs, managed resources, composite
resources or claims exist, and names them; --force deletes anyway (deleting
the CRDs deletes every Strata object, and external resources whose
finalizers the stopped manager can no longer remove may be left behind).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := install.Options{}
			if cmd.Flags().Changed("namespace") {
				o.Namespace = cf.namespace
			}
			cfg, err := cf.config()
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			used, err := install.InUse(cmd.Context(), cfg)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if len(used) > 0 && !force {
				return &ExitError{Code: 1, Err: fmt.Errorf("refusing to uninstall: %d objects still use Strata (delete them first, or use --force):\n  %s",
					len(used), strings.Join(used, "\n  "))}
			}
			objs, err := install.Objects(o)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if keepCRDs {
				kept := objs[:0]
				for _, u := range objs {
					// The approval gate's admission policies stay with the
					// CRDs: Approvals made while they were gone could name
					// anyone, and would count after a reinstall.
					if k := u.GetKind(); k != "CustomResourceDefinition" && k != "ValidatingAdmissionPolicy" && k != "ValidatingAdmissionPolicyBinding" {
						kept = append(kept, u)
					}
				}
				objs = kept
			}
			n, err := install.Delete(cmd.Context(), cfg, objs)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %d objects\n", n)
			return nil
		},
	}
	cf = addClusterFlags(cmd, false)
	cmd.Flags().Lookup("namespace").Usage = "namespace of the manager (default strata-system)"
	cmd.Flags().BoolVar(&force, "force", false, "uninstall even while Strata objects exist")
	cmd.Flags().BoolVar(&keepCRDs, "keep-crds", false, "leave the CRDs (and so every Strata object) in place")
	return cmd
}
