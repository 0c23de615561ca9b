//go:build linux

package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Webhook objects and ports (docs/design/0003). The controller and the
// operator share the k8s namespace (one address), so the lab moves the
// controller's webhook server to 9444; the Services keep port 443 and the
// lab's Endpoints map them to the right port.
const (
	ControllerService     = "openelb-controller"
	ControllerCertSecret  = "openelb-controller-cert"
	ControllerWebhookPort = 9444
	OperatorService       = "openelb-operator-webhook"
	OperatorWebhookPort   = 9443
)

// StartControllerWithWebhooks runs the controller with its admission
// webhooks, the way the operator's manifests would: it waits (up to
// o.Timeout, default 30 s) for the certificate the operator stores in
// Secret openelb-controller-cert and for Service openelb-controller, serves
// the webhooks on 198.51.100.2:9444 with that certificate, and points the
// Service at it with hand-made Endpoints and an EndpointSlice (there is no
// endpoints controller; the apiserver runs with --enable-aggregator-routing
// so it calls webhook Services at their endpoints). Use it only with the
// operator running; StartController runs without webhooks.
func (l *Lab) StartControllerWithWebhooks(ctx context.Context, o RoleOptions) (*Proc, error) {
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	var sec *corev1.Secret
	var svc *corev1.Service
	err := WaitFor(ctx, timeout, "the operator's controller certificate and webhook Service", func(ctx context.Context) (bool, error) {
		var err error
		if sec, err = l.Clientset.CoreV1().Secrets(Namespace).Get(ctx, ControllerCertSecret, metav1.GetOptions{}); err != nil {
			return false, err
		}
		if svc, err = l.Clientset.CoreV1().Services(Namespace).Get(ctx, ControllerService, metav1.GetOptions{}); err != nil {
			return false, err
		}
		return len(sec.Data["tls.crt"]) > 0 && len(sec.Data["tls.key"]) > 0, fmt.Errorf("secret %s has no tls.crt/tls.key", ControllerCertSecret)
	})
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(l.RunDir, "controller-certs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for _, k := range []string{"tls.crt", "tls.key"} {
		if err := os.WriteFile(filepath.Join(dir, k), sec.Data[k], 0o600); err != nil {
			return nil, err
		}
	}
	if err := l.pointServiceAtK8s(ctx, svc, ControllerWebhookPort); err != nil {
		return nil, err
	}
	o.Args = append([]string{fmt.Sprintf("--webhook-port=%d", ControllerWebhookPort), "--webhook-cert-dir=" + dir}, o.Args...)
	return l.StartController(ctx, o)
}

// pointServiceAtK8s makes every port of svc resolve to port on the k8s
// host, through Endpoints and an EndpointSlice the lab owns.
func (l *Lab) pointServiceAtK8s(ctx context.Context, svc *corev1.Service, port int32) error {
	ip := l.Topology.K8s.IPv4.String()
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace}}
	subset := corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{{IP: ip}}}
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name + "-lab", Namespace: svc.Namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: EndpointSliceManager,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
	for _, p := range svc.Spec.Ports {
		subset.Ports = append(subset.Ports, corev1.EndpointPort{Name: p.Name, Port: port, Protocol: p.Protocol})
		sl.Ports = append(sl.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(port), Protocol: ptr.To(p.Protocol)})
	}
	ep.Subsets = []corev1.EndpointSubset{subset}
	eps := l.Clientset.CoreV1().Endpoints(svc.Namespace) //nolint:staticcheck // the apiserver's resolver may still read Endpoints
	if cur, err := eps.Get(ctx, ep.Name, metav1.GetOptions{}); err == nil {
		ep.ResourceVersion = cur.ResourceVersion
		_, err = eps.Update(ctx, ep, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("endpoints %s: %w", ep.Name, err)
		}
	} else if apierrors.IsNotFound(err) {
		if _, err := eps.Create(ctx, ep, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("endpoints %s: %w", ep.Name, err)
		}
	} else {
		return err
	}
	slices := l.Clientset.DiscoveryV1().EndpointSlices(svc.Namespace)
	if cur, err := slices.Get(ctx, sl.Name, metav1.GetOptions{}); err == nil {
		sl.ResourceVersion = cur.ResourceVersion
		if _, err := slices.Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("endpointslice %s: %w", sl.Name, err)
		}
	} else if apierrors.IsNotFound(err) {
		if _, err := slices.Create(ctx, sl, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("endpointslice %s: %w", sl.Name, err)
		}
	} else {
		return err
	}
	return nil
}

// ensureOperatorWebhookService creates Service openelb-operator-webhook
// (as config/default/webhook_service.yaml does) and points it at the
// operator's conversion webhook on the k8s host.
func (l *Lab) ensureOperatorWebhookService(ctx context.Context) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: OperatorService, Namespace: Namespace, Labels: map[string]string{
			"app.kubernetes.io/name": "openelb-operator", "app.kubernetes.io/component": "operator",
		}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app.kubernetes.io/name": "openelb-operator", "app.kubernetes.io/component": "operator"},
			Ports:    []corev1.ServicePort{{Name: "webhook", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("webhook")}},
		},
	}
	got, err := l.Clientset.CoreV1().Services(Namespace).Create(ctx, svc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		got, err = l.Clientset.CoreV1().Services(Namespace).Get(ctx, OperatorService, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("service %s: %w", OperatorService, err)
	}
	return l.pointServiceAtK8s(ctx, got, OperatorWebhookPort)
}
