// Package ipam_test proves the controller role's IPAM against a real
// kube-apiserver and etcd (internal/testenv): every Service and Eip rule of
// docs/ipam.md, the admission webhooks, restarts and leader changes.
//
// The webhooks run for the whole suite in their own managers (webhooks are
// not leader-gated); each test starts the IPAM controller it needs and
// stops it at its end, so tests never share a controller.
package ipam_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/openelb/openelb-operator/internal/app/controller"
	"github.com/openelb/openelb-operator/internal/conversion"
	"github.com/openelb/openelb-operator/internal/testenv"
	"github.com/openelb/openelb-operator/internal/webhooks"
)

const (
	controllerNS = "openelb-system"
	// isolatedClass is served by a second webhook server with namespace
	// isolation on.
	isolatedClass = "isolated.test.openelb.kubesphere.io/lb"
	defaultClass  = "openelb.kubesphere.io/lb"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// IPAM_TEST_LOG=1 shows the controllers' logs.
	logOut := io.Discard
	if os.Getenv("IPAM_TEST_LOG") != "" {
		logOut = os.Stderr
	}
	log := zap.New(zap.WriteTo(logOut), zap.UseDevMode(true))
	ctrl.SetLogger(log)
	klog.SetLogger(log)
	var err error
	env, err = testenv.Start(testenv.Options{Webhooks: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: envtest:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := prepare(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: prepare:", err)
		return 1
	}
	return m.Run()
}

// prepare makes room for many ClusterIPs, creates the controller
// namespace, starts the two webhook servers and registers them.
func prepare(ctx context.Context) error {
	c := env.Client
	// envtest's service CIDR is a /24: add a /16 for the 1,000-Service
	// tests.
	if err := c.Create(ctx, &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "ipam-tests"},
		Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/16"}}}); err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controllerNS}}); err != nil {
		return err
	}
	wh := env.WebhookInstallOptions
	port2, err := freePort()
	if err != nil {
		return err
	}
	for _, s := range []struct {
		port  int
		class string
		iso   bool
	}{{wh.LocalServingPort, defaultClass, false}, {port2, isolatedClass, true}} {
		mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
			Scheme:                 env.Scheme,
			Metrics:                metricsOff,
			HealthProbeBindAddress: "0",
			WebhookServer:          webhook.NewServer(webhook.Options{Host: wh.LocalServingHost, Port: s.port, CertDir: wh.LocalServingCertDir}),
		})
		if err != nil {
			return err
		}
		o := controllerOptions(s.class, s.iso)
		o.WebhookPort = s.port
		if _, err := webhooks.Setup(ctx, mgr, webhooksOptions(o)); err != nil {
			return err
		}
		if !s.iso {
			if err := conversion.Setup(mgr); err != nil {
				return err
			}
		}
		go func() {
			if err := mgr.Start(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "webhook manager stopped:", err)
			}
		}()
		if err := waitStarted(ctx, mgr); err != nil {
			return err
		}
	}
	return c.Create(ctx, webhookConfiguration(wh.LocalServingHost, wh.LocalServingPort, port2, wh.LocalServingCAData))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitStarted(ctx context.Context, mgr ctrl.Manager) error {
	check := mgr.GetWebhookServer().StartedChecker()
	deadline := time.Now().Add(30 * time.Second)
	for check(nil) != nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("webhook server not started within 30s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The cache (indexes) must be synced before the webhooks answer.
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return fmt.Errorf("webhook cache not synced")
	}
	return nil
}

func controllerOptions(class string, isolation bool) controller.Options {
	return controller.Options{
		Namespace:          controllerNS,
		LoadBalancerClass:  class,
		NamespaceIsolation: isolation,
		EnabledProtocols:   []string{"bgp", "layer2"},
	}
}

func webhooksOptions(o controller.Options) webhooks.Options {
	return webhooks.Options{
		Config:           kubeConfig(o),
		Isolation:        o.NamespaceIsolation,
		EnabledProtocols: o.EnabledProtocols,
		Namespace:        o.Namespace,
	}
}

// webhookConfiguration is openelb-admission as docs/design/0003 describes
// it, pointing at the local webhook servers: the Eip webhook and the
// Service webhook of the default class, and the Service webhook of the
// isolated class.
func webhookConfiguration(host string, port, port2 int, ca []byte) *admissionregistrationv1.ValidatingWebhookConfiguration {
	url := func(p int, path string) *string {
		s := "https://" + net.JoinHostPort(host, strconv.Itoa(p)) + path
		return &s
	}
	fail, ignore := admissionregistrationv1.Fail, admissionregistrationv1.Ignore
	none, noneOnDryRun := admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.SideEffectClassNoneOnDryRun
	equivalent := admissionregistrationv1.Equivalent
	five := int32(5)
	svcHook := func(name string, p int, extra ...admissionregistrationv1.MatchCondition) admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{
			Name:                    name,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: url(p, webhooks.ServicePath), CABundle: ca},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{"CREATE", "UPDATE"}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"services"}}}},
			FailurePolicy:           &ignore,
			SideEffects:             &none,
			TimeoutSeconds:          &five,
			AdmissionReviewVersions: []string{"v1"},
			MatchConditions:         append([]admissionregistrationv1.MatchCondition{{Name: "load-balancer", Expression: "object.spec.type == 'LoadBalancer'"}}, extra...),
		}
	}
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "openelb-admission"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{
			{
				Name:                    webhooks.EipName,
				ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: url(port, webhooks.EipPath), CABundle: ca},
				Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{"CREATE", "UPDATE", "DELETE"}, Rule: admissionregistrationv1.Rule{APIGroups: []string{"network.kubesphere.io"}, APIVersions: []string{"v1alpha2"}, Resources: []string{"eips"}}}},
				FailurePolicy:           &fail,
				MatchPolicy:             &equivalent,
				SideEffects:             &noneOnDryRun,
				AdmissionReviewVersions: []string{"v1"},
			},
			svcHook(webhooks.ServiceName, port),
			// The second controller of the suite only handles its own class.
			svcHook("validate.isolated.service.openelb.kubesphere.io", port2, admissionregistrationv1.MatchCondition{
				Name: "isolated-class", Expression: "has(object.spec.loadBalancerClass) && object.spec.loadBalancerClass == '" + isolatedClass + "'",
			}),
		},
	}
}

// newConfig returns a separate client configuration (own connection and
// rate limiter) with the controller's limits.
func newConfig() *rest.Config {
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = controller.ClientQPS, controller.ClientBurst
	return cfg
}
