// Package operator wires the operator role: it reconciles the single
// OpenELB resource into the controller Deployment, the speaker DaemonSet and
// everything they need.
package operator

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/openelb/openelb-operator/controllers/operator"
	"github.com/openelb/openelb-operator/internal/app"
	"github.com/openelb/openelb-operator/internal/logging"
	"github.com/openelb/openelb-operator/internal/scheme"
	"github.com/openelb/openelb-operator/internal/version"
)

// Options are the operator role's flags.
type Options struct {
	Log                 logging.Options
	Kubeconfig          string
	Namespace           string
	MetricsAddr         string
	ProbeAddr           string
	LeaderElect         bool
	LeaderElectionID    string
	LeaderElectionNSEnv string
}

// NewCommand returns the `openelb operator` command.
func NewCommand() *cobra.Command {
	o := Options{}
	cmd := &cobra.Command{
		Use:          "operator",
		Short:        "Run the operator (reconciles the OpenELB resource into the controller and speakers)",
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, o)
		},
	}
	fs := cmd.Flags()
	o.Log.AddFlags(fs)
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "path to a kubeconfig; in-cluster configuration when empty")
	fs.StringVar(&o.Namespace, "namespace", envOr("OPERATOR_NAMESPACE", "openelb-system"), "namespace of the operands (env OPERATOR_NAMESPACE)")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "metrics address; 0 disables")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "health probe address (/healthz, /readyz)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "use leader election (one active operator)")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", "openelb-operator", "leader election lease name")
	return cmd
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(cmd *cobra.Command, o Options) error {
	log, err := app.SetupLogging(o.Log, "operator")
	if err != nil {
		return err
	}
	if o.Kubeconfig != "" {
		if err := os.Setenv("KUBECONFIG", o.Kubeconfig); err != nil {
			return err
		}
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubernetes client configuration: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme.New(),
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.ProbeAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        o.LeaderElectionID,
		LeaderElectionNamespace: o.Namespace,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := (&operator.Reconciler{
		Client:    mgr.GetClient(),
		Recorder:  mgr.GetEventRecorderFor("openelb-operator"),
		Namespace: o.Namespace,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up OpenELB reconciler: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	log.Info("Starting operator", "version", version.Version, "namespace", o.Namespace)
	return mgr.Start(cmd.Context())
}
