// Package app wires the speaker role: one process per node announcing the
// addresses of LoadBalancer Services by layer2, BGP or VIP.
package app

import (
	"github.com/spf13/cobra"

	"github.com/openelb/openelb-operator/internal/app"
	"github.com/openelb/openelb-operator/internal/logging"
)

// NewCommand returns the `openelb speaker` command.
func NewCommand() *cobra.Command {
	var logOpts logging.Options
	cmd := &cobra.Command{
		Use:          "speaker",
		Short:        "Run the per-node speaker (layer2 ARP/NDP, BGP, VIP announcements)",
		SilenceUsage: true,
		RunE:         app.NotBuilt("speaker", "issue 6 (speaker role and layer2 mode)"),
	}
	logOpts.AddFlags(cmd.Flags())
	return cmd
}
