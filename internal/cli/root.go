package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Version is set at build time with -ldflags.
var Version = "dev"

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

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the strata version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), Version)
		},
	}
}

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
