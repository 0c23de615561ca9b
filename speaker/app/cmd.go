// Package app wires the speaker role: one process per node announcing the
// addresses of LoadBalancer Services by layer2, BGP or VIP.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/openelb/openelb-operator/internal/app"
	"github.com/openelb/openelb-operator/internal/logging"
	"github.com/openelb/openelb-operator/internal/scheme"
	"github.com/openelb/openelb-operator/speaker"
	"github.com/openelb/openelb-operator/speaker/internal/netx"
)

// KeyEnv holds the liveness key when --liveness-key-file is not set.
const KeyEnv = "OPENELB_SPEAKER_KEY"

// Options are the speaker's flags (docs/design/0003-operand-contract.md).
type Options struct {
	Log               logging.Options
	Kubeconfig        string
	Namespace         string
	NodeName          string
	EnableLayer2      bool
	EnableBGP         bool
	EnableVIP         bool
	Layer2Interfaces  []string
	GratuitousRefresh time.Duration
	BGPListenPort     int32
	BGPGRPCAddress    string
	VIPInterfaces     []string
	VIPAdvertInterval time.Duration
	VIPMulticast      bool
	KeepalivedPath    string
	KeepalivedSidecar bool
	RunDir            string
	LivenessPort      uint16
	LivenessKeyFile   string
	MetricsAddr       string
}

// NewCommand returns the `openelb speaker` command.
func NewCommand() *cobra.Command {
	o := Options{}
	cmd := &cobra.Command{
		Use:          "speaker",
		Short:        "Run the per-node speaker (layer2 ARP/NDP, BGP, VIP announcements)",
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	o.Log.AddFlags(fs)
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "path to a kubeconfig; in-cluster configuration when empty")
	fs.StringVar(&o.Namespace, "namespace", envOr("POD_NAMESPACE", "openelb-system"), "namespace of the speaker's Secrets and ConfigMaps (env POD_NAMESPACE)")
	fs.StringVar(&o.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (env NODE_NAME); required")
	fs.BoolVar(&o.EnableLayer2, "enable-layer2", false, "announce layer2 Eips (ARP/NDP)")
	fs.BoolVar(&o.EnableBGP, "enable-bgp", true, "announce bgp Eips")
	fs.BoolVar(&o.EnableVIP, "enable-keepalived-vip", false, "announce vip Eips with keepalived")
	fs.StringSliceVar(&o.Layer2Interfaces, "layer2-interfaces", nil, "comma list of interfaces layer2 may announce on; all when empty")
	fs.DurationVar(&o.GratuitousRefresh, "gratuitous-refresh", 0, "re-send gratuitous ARP/NA for every announced address this often; 0 disables")
	fs.Int32Var(&o.BGPListenPort, "bgp-listen-port", 179, "BGP listen port when BgpConf.spec.listenPort is 0")
	fs.StringVar(&o.BGPGRPCAddress, "bgp-grpc-address", "", "gobgp gRPC API address (127.0.0.1:<port> only); off when empty")
	fs.StringSliceVar(&o.VIPInterfaces, "vip-interfaces", nil, "comma list of interfaces vip may use; all when empty")
	fs.DurationVar(&o.VIPAdvertInterval, "vip-advert-interval", time.Second, "VRRP advertisement interval")
	fs.BoolVar(&o.VIPMulticast, "vip-multicast", false, "multicast instead of unicast VRRP")
	fs.StringVar(&o.KeepalivedPath, "keepalived-path", "keepalived", "keepalived binary")
	fs.BoolVar(&o.KeepalivedSidecar, "keepalived-sidecar", false, "keepalived runs under `openelb speaker keepalived` in another container sharing --run-dir (it survives speaker restarts); else the speaker runs it and stops it on exit")
	fs.StringVar(&o.RunDir, "run-dir", "/run/openelb", "directory for keepalived configuration and pid files")
	fs.Uint16Var(&o.LivenessPort, "liveness-port", 7946, "UDP port of speaker-to-speaker liveness")
	fs.StringVar(&o.LivenessKeyFile, "liveness-key-file", "", "file holding the shared liveness key; else env "+KeyEnv)
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":50053", "/metrics, /healthz and /readyz; 0 disables")
	cmd.AddCommand(newKeepalivedCommand())
	return cmd
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Validate checks the flags before anything starts.
func (o Options) Validate() error {
	var errs []error
	if o.NodeName == "" {
		errs = append(errs, errors.New("--node-name (or env NODE_NAME) is required"))
	}
	if !o.EnableLayer2 && !o.EnableBGP && !o.EnableVIP {
		errs = append(errs, errors.New("no mode enabled: set --enable-layer2, --enable-bgp or --enable-keepalived-vip"))
	}
	if o.GratuitousRefresh < 0 {
		errs = append(errs, errors.New("--gratuitous-refresh must not be negative"))
	}
	if o.GratuitousRefresh > 0 && o.GratuitousRefresh < time.Second {
		errs = append(errs, fmt.Errorf("--gratuitous-refresh %s is below 1s", o.GratuitousRefresh))
	}
	if o.LivenessPort == 0 {
		errs = append(errs, errors.New("--liveness-port must not be 0"))
	}
	for _, i := range o.Layer2Interfaces {
		if strings.TrimSpace(i) == "lo" {
			errs = append(errs, errors.New("--layer2-interfaces must not list lo"))
		}
	}
	return errors.Join(errs...)
}

// NeedsLiveness reports whether an enabled mode elects among nodes.
func (o Options) NeedsLiveness() bool { return o.EnableLayer2 || o.EnableVIP }

// LoadKey reads the liveness key from --liveness-key-file or the
// environment; surrounding whitespace is ignored.
func (o Options) LoadKey() ([]byte, error) {
	var key []byte
	switch {
	case o.LivenessKeyFile != "":
		b, err := os.ReadFile(o.LivenessKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read --liveness-key-file: %w", err)
		}
		key = b
	case os.Getenv(KeyEnv) != "":
		key = []byte(os.Getenv(KeyEnv))
	default:
		return nil, fmt.Errorf("layer2 and vip need the speakers' shared key: set --liveness-key-file or env %s (the operator generates Secret openelb-speaker-key)", KeyEnv)
	}
	key = []byte(strings.TrimSpace(string(key)))
	if len(key) < 16 {
		return nil, fmt.Errorf("the speakers' liveness key has %d bytes, at least 16 are needed", len(key))
	}
	return key, nil
}

func run(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	log, err := app.SetupLogging(o.Log, "speaker")
	if err != nil {
		return err
	}
	ctx = ctrl.LoggerInto(ctx, log)
	if n, err := tuneMemory(); err != nil {
		log.V(1).Info("Cannot trim the executable's resident pages", "error", err.Error())
	} else {
		log.V(4).Info("Trimmed the executable's resident pages", "bytes", n)
	}
	var key []byte
	if o.NeedsLiveness() {
		if key, err = o.LoadKey(); err != nil {
			return err
		}
	}
	// Modes whose back-end is not in this build fail before anything starts.
	for _, f := range factories(o) {
		if f.enabled && f.build == nil {
			return f.notBuilt()
		}
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
	var core *speaker.Speaker // set below; the probes answer "starting" until then
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme.New(),
		Logger: log,
		Metrics: metricsserver.Options{BindAddress: o.MetricsAddr, ExtraHandlers: map[string]http.Handler{
			"/healthz": probe(func(r *http.Request) error {
				if core == nil {
					return errors.New("starting")
				}
				return core.Healthz(r)
			}),
			"/readyz": probe(func(r *http.Request) error {
				if core == nil {
					return errors.New("starting")
				}
				return core.Readyz(r)
			}),
		}},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{
			DefaultTransform: speaker.Transform,
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Secret{}:    {Namespaces: map[string]cache.Config{o.Namespace: {}}},
				&corev1.ConfigMap{}: {Namespaces: map[string]cache.Config{o.Namespace: {}}},
			},
		},
		GracefulShutdownTimeout: ptr(8 * time.Second),
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if !o.EnableVIP {
		if err := disableVIP(o, mgr, log); err != nil {
			return err
		}
	}
	deps := Deps{Options: o, Manager: mgr, Log: log, Netx: netx.Kernel{}, Key: key}
	if core, err = assemble(deps); err != nil {
		return err
	}
	if err := core.SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	go trimWhenReady(ctx, func() error { return core.Readyz(nil) }, log)
	log.Info("Starting speaker", "node", o.NodeName, "layer2", o.EnableLayer2, "bgp", o.EnableBGP, "vip", o.EnableVIP)
	return mgr.Start(ctx)
}

func ptr[T any](v T) *T { return &v }

type probe func(*http.Request) error

func (p probe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := p(r); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok"))
}
