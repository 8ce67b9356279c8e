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

// Run runs the strata command with args, writing to stdout and stderr, and
// returns its exit status: 0, the Code of an *ExitError, else 1.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code := 1
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
