// Command strata is Strata's single binary: the CLI, the manager and the local
// cluster.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/strata-dev/strata/internal/cli"
)

func main() {
	if err := cli.NewRootCommand().ExecuteContext(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "strata: %v\n", err)
		os.Exit(1)
	}
}
