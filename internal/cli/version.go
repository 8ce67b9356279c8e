package cli

import (
	"context"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-dev/strata/internal/install"
)

// versionInfo is what `strata version -o json` prints.
type versionInfo struct {
	Client    buildInfo `json:"client"`
	Manager   string    `json:"manager,omitempty"`
	APIServer string    `json:"apiServer,omitempty"`
}

type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Date      string `json:"date,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func clientBuildInfo() buildInfo {
	return buildInfo{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

func newVersionCommand() *cobra.Command {
	var clientOnly bool
	var output, managerNS string
	var cf *clusterFlags
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the versions of the strata client, the installed manager and the API server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutputFormat(output, "json", "yaml"); err != nil {
				return err
			}
			v := versionInfo{Client: clientBuildInfo()}
			var clusterErr error
			if !clientOnly {
				v.APIServer, v.Manager, clusterErr = clusterVersions(cmd.Context(), cf, managerNS)
			}
			if output != "" {
				if err := printStructured(cmd.OutOrStdout(), output, v); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				c := v.Client
				fmt.Fprintf(w, "client: %s", c.Version)
				if c.Commit != "" {
					fmt.Fprintf(w, " (commit %s, built %s)", c.Commit, c.Date)
				}
				fmt.Fprintf(w, " %s %s\n", c.GoVersion, c.Platform)
				if !clientOnly {
					if v.Manager != "" {
						fmt.Fprintf(w, "manager: %s\n", v.Manager)
					} else if clusterErr == nil {
						fmt.Fprintf(w, "manager: not installed in namespace %s\n", managerNS)
					}
					if v.APIServer != "" {
						fmt.Fprintf(w, "api server: %s\n", v.APIServer)
					}
				}
			}
			if clusterErr != nil {
				return &ExitError{Code: 2, Err: clusterErr}
			}
			return nil
		},
	}
	cf = addClusterFlags(cmd, false)
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print the client version only (no cluster needed)")
	cmd.Flags().StringVar(&managerNS, "manager-namespace", install.DefaultNamespace, "namespace strata is installed in")
	addOutputFlag(cmd, &output, "json", "yaml")
	return cmd
}

// clusterVersions returns the API server's version and the installed
// manager's (the version label of its Deployment, and its image).
func clusterVersions(ctx context.Context, f *clusterFlags, ns string) (server, mgr string, err error) {
	k, err := newKube(f)
	if err != nil {
		return "", "", err
	}
	sv, err := k.cs.Discovery().ServerVersion()
	if err != nil {
		return "", "", fmt.Errorf("cannot reach the API server: %w", err)
	}
	server = sv.GitVersion
	d, err := k.cs.AppsV1().Deployments(ns).Get(ctx, install.ManagerName, metav1.GetOptions{})
	if err == nil {
		mgr = d.Labels["app.kubernetes.io/version"]
		if len(d.Spec.Template.Spec.Containers) > 0 {
			mgr += " (" + d.Spec.Template.Spec.Containers[0].Image + ")"
		}
	}
	return server, mgr, nil
}
