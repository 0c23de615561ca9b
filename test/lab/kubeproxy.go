package lab

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// ServingPlan is what the kube-proxy stand-in makes true on the nodes.
type ServingPlan struct {
	// Addrs are, per node name, the Service addresses to put on lo.
	Addrs map[string][]netip.Addr
	// Ports are the TCP ports every node's HTTP server listens on.
	Ports []int32
}

// DefaultHTTPPort is always served by the nodes' HTTP servers.
const DefaultHTTPPort = 80

// PlanServing computes the kube-proxy stand-in's desired state from the
// Services and EndpointSlices, as kube-proxy in IPVS mode would: every
// LoadBalancer ingress IP (and external IP) of a LoadBalancer Service goes
// on lo of every node, except with externalTrafficPolicy: Local, where
// only nodes with a ready endpoint of the Service get it. Ports are the
// TCP ports of those Services plus DefaultHTTPPort.
func PlanServing(svcs []corev1.Service, slices []discoveryv1.EndpointSlice, nodes []string) ServingPlan {
	ready := readyEndpointNodes(slices)
	addrs := map[string]map[netip.Addr]bool{}
	for _, n := range nodes {
		addrs[n] = map[netip.Addr]bool{}
	}
	ports := map[int32]bool{DefaultHTTPPort: true}
	for _, s := range svcs {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		var ips []netip.Addr
		for _, in := range s.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(in.IP); err == nil {
				ips = append(ips, a)
			}
		}
		for _, e := range s.Spec.ExternalIPs {
			if a, err := netip.ParseAddr(e); err == nil {
				ips = append(ips, a)
			}
		}
		if len(ips) == 0 {
			continue
		}
		for _, p := range s.Spec.Ports {
			if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
				ports[p.Port] = true
			}
		}
		local := s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
		key := s.Namespace + "/" + s.Name
		for _, n := range nodes {
			if local && !ready[key][n] {
				continue
			}
			for _, a := range ips {
				addrs[n][a] = true
			}
		}
	}
	plan := ServingPlan{Addrs: map[string][]netip.Addr{}}
	for n, set := range addrs {
		list := make([]netip.Addr, 0, len(set))
		for a := range set {
			list = append(list, a)
		}
		plan.Addrs[n] = sortedUnique(list)
	}
	for p := range ports {
		plan.Ports = append(plan.Ports, p)
	}
	sort.Slice(plan.Ports, func(i, j int) bool { return plan.Ports[i] < plan.Ports[j] })
	return plan
}

// readyEndpointNodes maps "namespace/service" to the nodes that hold a
// ready endpoint (ready unset counts as ready, as in kube-proxy).
func readyEndpointNodes(slices []discoveryv1.EndpointSlice) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, sl := range slices {
		svc := sl.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		key := sl.Namespace + "/" + svc
		for _, ep := range sl.Endpoints {
			if ep.NodeName == nil || (ep.Conditions.Ready != nil && !*ep.Conditions.Ready) {
				continue
			}
			if out[key] == nil {
				out[key] = map[string]bool{}
			}
			out[key][*ep.NodeName] = true
		}
	}
	return out
}

// diffAddrs returns what to add to have and what to remove from it
// (only among managed) to reach want.
func diffAddrs(have, want, managed []netip.Addr) (add, del []netip.Addr) {
	h := map[netip.Addr]bool{}
	for _, a := range have {
		h[a] = true
	}
	w := map[netip.Addr]bool{}
	for _, a := range want {
		w[a] = true
		if !h[a] {
			add = append(add, a)
		}
	}
	for _, a := range managed {
		if h[a] && !w[a] {
			del = append(del, a)
		}
	}
	return add, del
}
