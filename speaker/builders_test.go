package speaker

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

type nodeOpt func(*corev1.Node)

func node(name, ip string, opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func notReady(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }

func networkUnavailable(n *corev1.Node) {
	n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue})
}

func label(k, v string) nodeOpt { return func(n *corev1.Node) { n.Labels[k] = v } }

func annotate(k, v string) nodeOpt {
	return func(n *corev1.Node) {
		if n.Annotations == nil {
			n.Annotations = map[string]string{}
		}
		n.Annotations[k] = v
	}
}

func eip(name, address, protocol, iface string) *networkv1alpha2.Eip {
	return &networkv1alpha2.Eip{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       networkv1alpha2.EipSpec{Address: address, Protocol: protocol, Interface: iface},
	}
}

type svcOpt func(*corev1.Service)

func service(ns, name string, ips []string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster},
	}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func local(s *corev1.Service) {
	s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
}

func ptr[T any](v T) *T { return &v }

// slice builds an EndpointSlice of ns/svc with endpoints "node:ready",
// "node:serving" (terminating but serving) or "node:notready".
func slice(ns, svc, name string, eps ...[2]string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, e := range eps {
		ep := discoveryv1.Endpoint{Addresses: []string{"198.19.1.1"}, NodeName: ptr(e[0])}
		switch e[1] {
		case "ready":
			ep.Conditions.Ready = ptr(true)
		case "serving":
			ep.Conditions.Ready, ep.Conditions.Serving, ep.Conditions.Terminating = ptr(false), ptr(true), ptr(true)
		default:
			ep.Conditions.Ready, ep.Conditions.Serving = ptr(false), ptr(false)
		}
		es.Endpoints = append(es.Endpoints, ep)
	}
	return es
}

func okFacts(eips ...string) Facts {
	f := Facts{}
	for _, e := range eips {
		f[e] = EipFact{Interface: "eth0", OK: true}
	}
	return f
}
