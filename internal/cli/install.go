package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-dev/strata/internal/install"
)

func init() { extraCommands = append(extraCommands, newInstallCommand, newUninstallCommand) }

func newInstallCommand() *cobra.Command {
	var o install.Options
	var export bool
	var cf *clusterFlags
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install Strata into a cluster (or print its manifests with --export)",
		Long: `install applies, with server-side apply, everything Strata needs in a cluster:
the strata-system namespace, the CRDs, the manager's ServiceAccount and one
least-privilege ClusterRole per subsystem, the user roles strata-view,
strata-edit and strata-admin (aggregated into view, edit and admin), the
manager Deployment (2 replicas with leader election), Services for metrics
and the Git webhook receiver, a PodDisruptionBudget and a NetworkPolicy.

--export prints the same objects as YAML instead, for kubectl apply or Git.
--lockdown leaves out the full rights of strata:reconciler: label
ClusterRoles strata.dev/aggregate-to-reconciler=true with exactly what your
Compositions compose and your Syncs apply.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Version == "" {
				o.Version = Version
			}
			if cmd.Flags().Changed("namespace") {
				o.Namespace = cf.namespace
			}
			objs, err := install.Objects(o)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if export {
				y, err := install.YAML(objs)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(y)
				return err
			}
			cfg, err := cf.config()
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if err := install.ApplyObjects(cmd.Context(), cfg, objs); err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "installed %d objects into namespace %s (image %s)\n", len(objs), namespaceOr(o.Namespace), imageOf(o))
			return nil
		},
	}
	cf = addClusterFlags(cmd, false)
	cmd.Flags().Lookup("namespace").Usage = "namespace of the manager (default strata-system)"
	f := cmd.Flags()
	f.BoolVar(&export, "export", false, "print the manifests instead of applying them")
	f.StringSliceVar(&o.Subsystems, "subsystems", nil, "subsystems the manager runs; only their RBAC is installed (default: all)")
	f.StringVar(&o.Image, "image", "", "manager image (default <registry>/strata:<version>)")
	f.StringVar(&o.Registry, "registry", install.DefaultRegistry, "registry of the manager image")
	f.StringVar(&o.Version, "version", "", "image tag and version label (default: this binary's version)")
	f.Int32Var(&o.Replicas, "replicas", 2, "manager replicas (leader election keeps one active)")
	f.BoolVar(&o.Lockdown, "lockdown", false, "do not give strata:reconciler full rights (see --help)")
	_ = cmd.RegisterFlagCompletionFunc("subsystems", cobra.FixedCompletions(install.SubsystemNames(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func namespaceOr(ns string) string {
	if ns == "" {
		return install.DefaultNamespace
	}
	return ns
}

func imageOf(o install.Options) string {
	if o.Image != "" {
		return o.Image
	}
	r := o.Registry
	if r == "" {
		r = install.DefaultRegistry
	}
	return r + "/strata:" + o.Version
}
