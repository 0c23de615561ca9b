// Package webhooks holds the controller role's validating admission
// webhooks for Eips and Services (paths and names in
// docs/design/0003-operand-contract.md) and the Eip range record that makes
// the Eip overlap check race-free.
package webhooks

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/ipam/kube"
)

// Webhook paths and names (docs/design/0003).
const (
	EipPath     = "/validate-network-kubesphere-io-v1alpha2-eip"
	EipName     = "validate.eip.network.kubesphere.io"
	ServicePath = "/validate-v1-service"
	ServiceName = "validate.service.openelb.kubesphere.io"
)

// Field indexes on the cached Services the webhooks query.
const (
	// IndexIngressIP indexes Services by their status.loadBalancer.ingress IPs.
	IndexIngressIP = "openelb.ingressIP"
	// IndexPool indexes Services holding addresses by the Eips they record.
	IndexPool = "openelb.pool"
)

// Options configure the webhooks.
type Options struct {
	Config    kube.Config
	Isolation bool
	// EnabledProtocols are the speaker modes the OpenELB resource enables
	// (bgp, layer2, vip); an Eip of another protocol gets a warning.
	EnabledProtocols []string
	// Namespace holds the Eip range record.
	Namespace string
}

// SetupIndexes registers the Service field indexes the webhooks use. Call it
// before the manager starts.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	fi := mgr.GetFieldIndexer()
	if err := fi.IndexField(ctx, &corev1.Service{}, IndexIngressIP, func(o client.Object) []string {
		var out []string
		for _, a := range kube.IngressAddrs(o.(*corev1.Service)) {
			out = append(out, a.String())
		}
		return out
	}); err != nil {
		return fmt.Errorf("index services by ingress IP: %w", err)
	}
	if err := fi.IndexField(ctx, &corev1.Service{}, IndexPool, func(o client.Object) []string {
		svc := o.(*corev1.Service)
		if len(svc.Status.LoadBalancer.Ingress) == 0 {
			return nil
		}
		return kube.PoolHints(svc)
	}); err != nil {
		return fmt.Errorf("index services by pool: %w", err)
	}
	return nil
}

// Setup registers both webhooks with the manager's webhook server and
// returns the Eip range record (also used by the Eip reconciler).
func Setup(ctx context.Context, mgr ctrl.Manager, o Options) (*Record, error) {
	if err := SetupIndexes(ctx, mgr); err != nil {
		return nil, err
	}
	rec := &Record{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Namespace: o.Namespace, Grace: DefaultGrace, Now: time.Now}
	srv := mgr.GetWebhookServer()
	srv.Register(EipPath, admission.WithCustomValidator(mgr.GetScheme(), &networkv1alpha2.Eip{},
		&EipValidator{Reader: mgr.GetClient(), Record: rec, EnabledProtocols: o.EnabledProtocols}))
	srv.Register(ServicePath, admission.WithCustomValidator(mgr.GetScheme(), &corev1.Service{},
		&ServiceValidator{Reader: mgr.GetClient(), Config: o.Config, Isolation: o.Isolation}))
	return rec, nil
}
