// Package controller wires the controller role: Eip IPAM for LoadBalancer
// Services and the Eip and Service admission webhooks. It runs in a pod
// (in-cluster configuration) or as a plain process with --kubeconfig.
package controller

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
	ipamctrl "github.com/openelb/openelb-operator/controllers/ipam"
	"github.com/openelb/openelb-operator/internal/app"
	"github.com/openelb/openelb-operator/internal/ipam/kube"
	"github.com/openelb/openelb-operator/internal/logging"
	"github.com/openelb/openelb-operator/internal/scheme"
	"github.com/openelb/openelb-operator/internal/version"
	"github.com/openelb/openelb-operator/internal/webhooks"
)

// Client rate limits (--kube-api-qps, --kube-api-burst). controller-runtime's
// default (20 QPS, burst 30) would cap assignments at 20 Services per second;
// 300 QPS, the earlier default, was what bounded a 10,000-Service catch-up
// (32.4 s; 22.8 s without a client-side limit on 2 cores, where the
// apiserver accepts about 450 writes/s). The limit is a guard against a
// runaway loop, set above what a control plane of this size absorbs; the
// apiserver's API Priority and Fairness remains the real protection.
const (
	ClientQPS   = 1000
	ClientBurst = 2000
)

// Options are the controller role's flags (docs/design/0003).
type Options struct {
	Log                logging.Options
	Kubeconfig         string
	Namespace          string
	LeaderElect        bool
	LeaderElectionID   string
	WebhookPort        int
	WebhookCertDir     string
	MetricsAddr        string
	ProbeAddr          string
	LoadBalancerClass  string
	NamespaceIsolation bool
	AllocateClassless  bool
	EnabledProtocols   []string
	KubeAPIQPS         float32
	KubeAPIBurst       int
}

// NewCommand returns the `openelb controller` command.
func NewCommand() *cobra.Command {
	o := Options{}
	cmd := &cobra.Command{
		Use:          "controller",
		Short:        "Run the IPAM controller (Eip pools for LoadBalancer Services, admission webhooks)",
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Run(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	o.Log.AddFlags(fs)
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "path to a kubeconfig; in-cluster configuration when empty")
	fs.StringVar(&o.Namespace, "namespace", envOr("POD_NAMESPACE", "openelb-system"), "namespace of the leader election Lease and the Eip range record (env POD_NAMESPACE)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "use leader election (required with more than one replica)")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", "openelb-controller", "leader election Lease name")
	fs.IntVar(&o.WebhookPort, "webhook-port", 9443, "port of the admission webhook server; 0 disables it")
	fs.StringVar(&o.WebhookCertDir, "webhook-cert-dir", "", "directory of tls.crt and tls.key (reloaded on change); controller-runtime's default when empty")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":50052", "Prometheus /metrics address; 0 disables")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "/healthz and /readyz address; 0 disables")
	fs.StringVar(&o.LoadBalancerClass, "load-balancer-class", operatorv1alpha1.DefaultLoadBalancerClass, "spec.loadBalancerClass that is always ours (OpenELB.spec.loadBalancerClass)")
	fs.BoolVar(&o.NamespaceIsolation, "namespace-isolation", false, "never give a Service an address of an Eip bound to other namespaces (OpenELB.spec.ipam.namespaceIsolation)")
	fs.BoolVar(&o.AllocateClassless, "allocate-classless", false, "handle every LoadBalancer Service without loadBalancerClass, even without the lb.kubesphere.io/v1alpha1 annotation (OpenELB.spec.ipam.allocateClasslessServices)")
	fs.StringSliceVar(&o.EnabledProtocols, "enabled-protocols", []string{networkv1alpha2.ProtocolBGP, networkv1alpha2.ProtocolLayer2}, "speaker modes the OpenELB resource enables (bgp, layer2, vip); Eips of other protocols are admitted with a warning")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", ClientQPS, "client-side limit of requests per second to the kube-apiserver (reads come from the cache; one write per assigned Service); a negative value disables the client-side limit and leaves protection to the apiserver's API Priority and Fairness")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", ClientBurst, "burst allowed above --kube-api-qps")
	return cmd
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Validate checks the flag values.
func (o *Options) Validate() error {
	for _, p := range o.EnabledProtocols {
		if !slices.Contains([]string{networkv1alpha2.ProtocolBGP, networkv1alpha2.ProtocolLayer2, networkv1alpha2.ProtocolVIP}, p) {
			return fmt.Errorf("--enabled-protocols: unknown protocol %q (bgp, layer2, vip)", p)
		}
	}
	if o.LoadBalancerClass == "" {
		return fmt.Errorf("--load-balancer-class must not be empty")
	}
	if o.Namespace == "" {
		return fmt.Errorf("--namespace must not be empty")
	}
	if o.KubeAPIQPS > 0 && o.KubeAPIBurst < 1 {
		return fmt.Errorf("--kube-api-burst must be at least 1 when --kube-api-qps is positive")
	}
	return nil
}

// RestConfig returns the client configuration: --kubeconfig, else
// in-cluster (or $KUBECONFIG), with raised rate limits.
func (o *Options) RestConfig() (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if o.Kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = ClientQPS, ClientBurst
	}
	cfg.UserAgent = "openelb-controller/" + version.Version
	return cfg, nil
}

// ManagerOptions returns the manager options for the flags.
func (o *Options) ManagerOptions() manager.Options {
	mo := manager.Options{
		Scheme:                        scheme.New(),
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:        o.ProbeAddr,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionNamespace:       o.Namespace,
		LeaderElectionReleaseOnCancel: true, // the manager stops every reconciler before it releases
		Cache:                         cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
	}
	if o.WebhookPort != 0 {
		mo.WebhookServer = webhook.NewServer(webhook.Options{Port: o.WebhookPort, CertDir: o.WebhookCertDir})
	}
	return mo
}

// Setup registers the webhooks (unless the webhook port is 0) and the IPAM
// reconcilers with a manager and returns their shared state.
func Setup(ctx context.Context, mgr ctrl.Manager, o Options) (*ipamctrl.Core, error) {
	cfg := kube.Config{LoadBalancerClass: o.LoadBalancerClass, AllocateClassless: o.AllocateClassless}
	var record *webhooks.Record
	if o.WebhookPort != 0 {
		var err error
		record, err = webhooks.Setup(ctx, mgr, webhooks.Options{
			Config: cfg, Isolation: o.NamespaceIsolation, EnabledProtocols: o.EnabledProtocols, Namespace: o.Namespace,
		})
		if err != nil {
			return nil, fmt.Errorf("set up webhooks: %w", err)
		}
	}
	core := ipamctrl.NewCore(mgr.GetClient(), mgr.GetAPIReader(), ipamctrl.Options{Config: cfg, Isolation: o.NamespaceIsolation})
	if err := core.SetupWithManager(mgr, record); err != nil {
		return nil, err
	}
	return core, nil
}

// Run runs the controller role until ctx ends.
func Run(ctx context.Context, o Options) error {
	log, err := app.SetupLogging(o.Log, "controller")
	if err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	cfg, err := o.RestConfig()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, o.ManagerOptions())
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if _, err := Setup(ctx, mgr, o); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	ready := healthz.Ping
	if o.WebhookPort != 0 {
		ready = mgr.GetWebhookServer().StartedChecker()
	}
	if err := mgr.AddReadyzCheck("readyz", ready); err != nil {
		return err
	}
	log.Info("Starting controller", "version", version.Version, "namespace", o.Namespace,
		"loadBalancerClass", o.LoadBalancerClass, "namespaceIsolation", o.NamespaceIsolation,
		"allocateClassless", o.AllocateClassless, "enabledProtocols", strings.Join(o.EnabledProtocols, ","),
		"leaderElect", o.LeaderElect, "webhookPort", o.WebhookPort)
	return mgr.Start(ctrl.LoggerInto(ctx, log))
}
