// Command strata is Strata's single binary: the CLI, the manager and the local
// cluster.
package main

import (
	"context"
	"os"

	"github.com/strata-dev/strata/internal/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
