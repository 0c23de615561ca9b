// Command openelb is the single binary of openelb-operator. Its subcommands
// are the three roles: operator, controller and speaker.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/openelb/openelb-operator/internal/app/controller"
	"github.com/openelb/openelb-operator/internal/app/operator"
	"github.com/openelb/openelb-operator/internal/version"
	speaker "github.com/openelb/openelb-operator/speaker/app"
)

func main() {
	root := &cobra.Command{
		Use:           "openelb",
		Short:         "OpenELB-compatible bare-metal load balancer and its operator",
		SilenceErrors: true,
	}
	root.AddCommand(operator.NewCommand(), controller.NewCommand(), speaker.NewCommand(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(*cobra.Command, []string) {
			fmt.Printf("openelb %s (commit %s)\n", version.Version, version.Commit)
		},
	})
	if err := root.ExecuteContext(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
