package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/strata-dev/strata/internal/kubeclient"
)

// Version, Commit and Date are set at build time with -ldflags -X (see the
// Makefile's LDFLAGS); `strata version` prints them.
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// NewRootCommand returns the `strata` command with every subcommand.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "strata",
		Short:         "Kubernetes-native infrastructure composition and delivery",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newUpCommand(), newDownCommand(), newManagerCommand(), newVersionCommand())
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	return root
}

// extraCommands lets capabilities add their own commands (render, trace,
// diff...) in files of their own.
var extraCommands []func() *cobra.Command

// Run runs the strata command with args, writing to stdout and stderr, and
// returns its exit status: 0, the Code of an *ExitError, else 2 (exit
// status 1 is kept for "no" answers: differences, not ready, a failed check).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code := 2
	var exit *ExitError
	if errors.As(err, &exit) {
		code = exit.Code
		if exit.Err == nil {
			return code
		}
	}
	fmt.Fprintf(stderr, "strata: %v\n", err)
	return code
}

// ExitError ends the strata command with exit status Code, printing Err
// when there is one (diff exits 1 on differences without an error).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// newLogger returns a logr logger writing JSON-free, human-readable lines to
// w, and routes klog (client-go's logger) and controller-runtime there too.
func newLogger(w io.Writer, verbosity int) logr.Logger {
	log := zap.New(zap.WriteTo(w), zap.UseDevMode(false), zap.Level(zapcore.Level(-verbosity)),
		zap.ConsoleEncoder())
	ctrl.SetLogger(log)
	klog.SetLogger(log)
	return log
}

// defaultBinDir is where the local cluster binaries are looked for: next to
// the strata executable when they are there (bin/strata from `make build`),
// else ./bin.
func defaultBinDir() string {
	if d := os.Getenv("STRATA_BIN_DIR"); d != "" {
		return d
	}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err == nil {
			return dir
		}
	}
	return "bin"
}

// clusterFlags are the flags of every command that talks to a cluster,
// spelled as kubectl spells them: --kubeconfig, --context, -n/--namespace
// (default: the namespace of the kubeconfig context, else "default") and,
// where the command lists, -A/--all-namespaces.
type clusterFlags struct {
	kubeconfig    string
	context       string
	namespace     string
	allNamespaces bool
}

// addClusterFlags adds the cluster flags to cmd (and -A when lists is true),
// with shell completion of contexts and namespaces.
func addClusterFlags(cmd *cobra.Command, lists bool) *clusterFlags {
	f := &clusterFlags{}
	fs := cmd.Flags()
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&f.context, "context", "", "kubeconfig context to use (default: the current context)")
	fs.StringVarP(&f.namespace, "namespace", "n", "", "namespace (default: the kubeconfig context's namespace)")
	if lists {
		fs.BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "list across all namespaces")
	}
	_ = cmd.RegisterFlagCompletionFunc("namespace", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return completeNamespaces(cmd.Context(), f)
	})
	_ = cmd.RegisterFlagCompletionFunc("context", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		raw, err := f.loader().RawConfig()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for name := range raw.Contexts {
			out = append(out, name)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
	return f
}

func (f *clusterFlags) loader() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context})
}

// config is the REST config of the chosen kubeconfig and context, without
// a client-side rate limit (cliConfig).
func (f *clusterFlags) config() (*rest.Config, error) {
	cfg, err := f.loader().ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("cannot load kubeconfig: %w", err)
	}
	return cliConfig(cfg), nil
}

// cliConfig turns client-go's default client-side limit (5 requests a
// second, bursts of 10) off for the CLI, as the manager's flags do by
// default: uninstall lists every Strata kind and deletes each installed
// object, and at 5 a second a user waited tens of seconds for requests the
// API server answers in milliseconds. The API server protects itself with
// API Priority and Fairness.
func cliConfig(cfg *rest.Config) *rest.Config {
	return kubeclient.Unlimited.Config(cfg)
}

// ns is the namespace to act in: --namespace, else the context's, else
// "default".
func (f *clusterFlags) ns() string {
	if f.namespace != "" {
		return f.namespace
	}
	if ns, _, err := f.loader().Namespace(); err == nil && ns != "" {
		return ns
	}
	return "default"
}

// listNamespace is the namespace to list in: "" (all) with -A.
func (f *clusterFlags) listNamespace() string {
	if f.allNamespaces {
		return ""
	}
	return f.ns()
}
