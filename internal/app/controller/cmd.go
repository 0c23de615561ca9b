// Package controller wires the controller role: Eip IPAM for LoadBalancer
// Services, the Eip and Service admission webhooks and the CRD conversion
// webhook.
package controller

import (
	"github.com/spf13/cobra"

	"github.com/openelb/openelb-operator/internal/app"
	"github.com/openelb/openelb-operator/internal/logging"
)

// NewCommand returns the `openelb controller` command.
func NewCommand() *cobra.Command {
	var logOpts logging.Options
	cmd := &cobra.Command{
		Use:          "controller",
		Short:        "Run the IPAM controller (Eip pools for LoadBalancer Services, webhooks)",
		SilenceUsage: true,
		RunE:         app.NotBuilt("controller", "issue 11 (controller role: Eip IPAM)"),
	}
	logOpts.AddFlags(cmd.Flags())
	return cmd
}
