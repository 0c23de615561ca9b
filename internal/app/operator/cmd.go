// Package operator wires the operator role: it reconciles the single
// OpenELB resource into the controller Deployment, the speaker DaemonSet and
// everything they need, and serves the CRD conversion webhook.
package operator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	apiv2 "github.com/operator-framework/api/pkg/operators/v2"
	"github.com/operator-framework/operator-lib/conditions"
	"github.com/operator-framework/operator-lib/proxy"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/openelb/openelb-operator/controllers/operator"
	"github.com/openelb/openelb-operator/internal/app"
	"github.com/openelb/openelb-operator/internal/certs/operatorcert"
	"github.com/openelb/openelb-operator/internal/conversion"
	"github.com/openelb/openelb-operator/internal/logging"
	"github.com/openelb/openelb-operator/internal/render"
	"github.com/openelb/openelb-operator/internal/scheme"
	"github.com/openelb/openelb-operator/internal/version"
)

// OLMConditionEnv is set by OLM on the operators it runs; its presence
// means "installed by OLM".
const OLMConditionEnv = "OPERATOR_CONDITION_NAME"

// DefaultCertDir is controller-runtime's default webhook certificate
// directory, where OLM mounts the certificate it manages.
var DefaultCertDir = filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")

// Options are the operator role's flags.
type Options struct {
	Log              logging.Options
	Kubeconfig       string
	Namespace        string
	Image            string
	ControllerImage  string
	SpeakerImage     string
	MetricsAddr      string
	ProbeAddr        string
	WebhookPort      int
	WebhookCertDir   string
	LeaderElect      bool
	LeaderElectionID string
}

// NewCommand returns the `openelb operator` command.
func NewCommand() *cobra.Command {
	o := Options{}
	cmd := &cobra.Command{
		Use:          "operator",
		Short:        "Run the operator (reconciles the OpenELB resource into the controller and speakers)",
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	o.Log.AddFlags(fs)
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "path to a kubeconfig; in-cluster configuration when empty")
	fs.StringVar(&o.Namespace, "namespace", envOr("OPERATOR_NAMESPACE", "openelb-system"), "namespace of the operands (env OPERATOR_NAMESPACE)")
	fs.StringVar(&o.Image, "operand-image", os.Getenv("RELATED_IMAGE_OPENELB"), "image of the controller and speakers: this operator's image (env RELATED_IMAGE_OPENELB)")
	fs.StringVar(&o.ControllerImage, "controller-image", os.Getenv("RELATED_IMAGE_CONTROLLER"), "controller image when it differs from --operand-image (env RELATED_IMAGE_CONTROLLER)")
	fs.StringVar(&o.SpeakerImage, "speaker-image", os.Getenv("RELATED_IMAGE_SPEAKER"), "speaker image when it differs from --operand-image (env RELATED_IMAGE_SPEAKER)")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "metrics address; 0 disables")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "health probe address (/healthz, /readyz); 0 disables")
	fs.IntVar(&o.WebhookPort, "webhook-port", 9443, "port of the CRD conversion webhook (/convert); 0 disables it")
	fs.StringVar(&o.WebhookCertDir, "webhook-cert-dir", DefaultCertDir, "directory of tls.crt and tls.key; without OLM the operator writes its own certificate there")
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

// UnderOLM reports whether OLM runs this operator.
func UnderOLM() bool { return os.Getenv(OLMConditionEnv) != "" }

func run(ctx context.Context, o Options) error {
	log, err := app.SetupLogging(o.Log, "operator")
	if err != nil {
		return err
	}
	ctx = ctrl.LoggerInto(ctx, log)
	if o.Image == "" {
		return fmt.Errorf("no operand image: set RELATED_IMAGE_OPENELB or --operand-image")
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
	s := scheme.New()
	if err := apiv2.AddToScheme(s); err != nil {
		return err
	}
	direct, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	if err := ensureNamespace(ctx, direct, o.Namespace); err != nil {
		return err
	}
	olm := UnderOLM()
	// On OpenShift the speakers need SecurityContextConstraints of their
	// own; a registry+v1 bundle cannot ship one, so the operator makes it.
	scc, err := operator.SecurityContextConstraintsServed(direct.RESTMapper())
	if err != nil {
		return err
	}
	settings := render.Settings{
		Namespace: o.Namespace, Image: o.Image, ControllerImage: o.ControllerImage, SpeakerImage: o.SpeakerImage,
		ProxyEnv: proxy.ReadProxyVarsFromEnv(), SecurityContextConstraints: scc,
	}
	mgr, err := newManager(ctx, cfg, s, direct, o, settings, olm)
	if err != nil {
		return err
	}
	r := &operator.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorderFor("openelb-operator"),
		Settings:  settings,
	}
	if olm {
		// operator-lib reads the OperatorCondition's name from the
		// environment and its namespace from the service account.
		if r.Upgradeable, err = conditions.NewCondition(direct, apiv2.ConditionType(apiv2.Upgradeable)); err != nil {
			log.Error(err, "Cannot report the OLM Upgradeable condition")
		}
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up OpenELB reconciler: %w", err)
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
	log.Info("Starting operator", "version", version.Version, "namespace", o.Namespace, "olm", olm, "image", o.Image, "securityContextConstraints", scc)
	return mgr.Start(ctx)
}

// newManager creates the manager; with the webhook port set it serves the
// conversion webhook, with a certificate of its own outside OLM.
func newManager(ctx context.Context, cfg *rest.Config, s *runtime.Scheme, direct client.Client, o Options, settings render.Settings, olm bool) (ctrl.Manager, error) {
	opts := ctrl.Options{
		Scheme:                  s,
		Cache:                   operator.CacheOptionsFor(settings),
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.ProbeAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        o.LeaderElectionID,
		LeaderElectionNamespace: o.Namespace,
	}
	var keeper *operatorcert.Keeper
	if o.WebhookPort != 0 {
		certDir, ownCert := CertPlan(olm, o.WebhookCertDir)
		if certDir != o.WebhookCertDir {
			ctrl.LoggerFrom(ctx).Info("Under OLM the certificate OLM mounts is used", "certDir", certDir, "ignored", o.WebhookCertDir)
		}
		opts.WebhookServer = webhook.NewServer(webhook.Options{Port: o.WebhookPort, CertDir: certDir})
		if ownCert {
			// The certificate must be on disk before the webhook server
			// starts; afterwards the keeper renews it.
			keeper = &operatorcert.Keeper{Client: direct, Namespace: o.Namespace, CertDir: certDir}
			if _, err := keeper.Sync(ctx); err != nil {
				return nil, fmt.Errorf("operator webhook certificate: %w", err)
			}
		}
	}
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	if o.WebhookPort != 0 {
		if err := conversion.Setup(mgr); err != nil {
			return nil, err
		}
	}
	if keeper != nil {
		if err := mgr.Add(keeper); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}

// CertPlan returns where the conversion webhook's certificate is and
// whether the operator makes it itself. Under OLM, OLM mounts its
// certificate at controller-runtime's default directory (whatever the flag
// says) and injects the CRDs' CA bundle: the operator must not fight it.
// Without OLM the operator writes its own certificate into certDir and
// patches the CRDs.
func CertPlan(olm bool, certDir string) (dir string, ownCert bool) {
	if olm {
		return DefaultCertDir, false
	}
	return certDir, true
}

// ensureNamespace creates the operator's namespace when it is missing: only
// when run outside the cluster (make run); in a cluster the namespace holds
// the operator and the operator may not create namespaces.
func ensureNamespace(ctx context.Context, c client.Client, ns string) error {
	err := c.Get(ctx, types.NamespacedName{Name: ns}, &corev1.Namespace{})
	if err == nil || !apierrors.IsNotFound(err) {
		return nil // exists, or not readable: the operator runs in it anyway
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s does not exist and cannot be created: %w", ns, err)
	}
	ctrl.LoggerFrom(ctx).Info("Created the operator namespace", "namespace", ns)
	return nil
}
