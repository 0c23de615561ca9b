package speaker

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/election"
	"github.com/openelb/openelb-operator/internal/ipam"
)

// LabelExcludeFromLB on a Node keeps it out of every announcement.
const LabelExcludeFromLB = corev1.LabelNodeExcludeBalancers

// Inputs are everything a speaker's decision depends on. Every speaker that
// holds the same Inputs (apart from Self) reaches the same decision.
type Inputs struct {
	// Self is this node's name.
	Self string
	// Services, Eips, Nodes and EndpointSlices are read from the API.
	Services       []*corev1.Service
	Eips           []*networkv1alpha2.Eip
	Nodes          []*corev1.Node
	EndpointSlices []*discoveryv1.EndpointSlice
	// Alive holds the other nodes whose speaker is alive, each with the
	// Facts it reported. Nil means that liveness does not run (no layer2 or
	// vip): every node counts as alive and only Self's facts are known.
	Alive map[string]Facts
	// SelfFacts are this node's facts; Self always counts as alive.
	SelfFacts Facts
}

// Desired is the decision: per protocol the announcements, plus the nodes.
type Desired struct {
	// Nodes are all nodes of the API with liveness and facts.
	Nodes map[string]NodeInfo
	// ByProtocol maps an Eip protocol to its announcements, sorted by IP.
	ByProtocol map[string][]Announcement
}

// State returns the State handed to the backend of protocol.
func (d Desired) State(self, protocol string) State {
	return State{Self: self, Nodes: d.Nodes, Announcements: d.ByProtocol[protocol]}
}

// eipInfo is an Eip parsed once.
type eipInfo struct {
	eip         *networkv1alpha2.Eip
	first, last netip.Addr
	protocol    string
	selector    labels.Selector
	selectorErr error
}

// Compute is the speaker's decision as a pure function of its inputs: which
// addresses exist, which nodes may announce each of them, ranked. It reads
// nothing but its argument and runs in O(A·N + S + E) for A addresses, N
// nodes, S Services and E endpoints.
func Compute(in Inputs) Desired {
	eips := parseEips(in.Eips)
	nodes := nodeInfos(in)
	nodeByName := make(map[string]*corev1.Node, len(in.Nodes))
	for _, n := range in.Nodes {
		nodeByName[n.Name] = n
	}
	endpoints := endpointNodes(in.EndpointSlices)

	type addr struct {
		eip      *eipInfo
		services []*corev1.Service
	}
	addrs := map[netip.Addr]*addr{}
	for _, svc := range in.Services {
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			ip, err := netip.ParseAddr(ing.IP)
			if err != nil {
				continue
			}
			ip = ip.Unmap()
			e := eipFor(eips, ip)
			if e == nil {
				continue // not an address of ours
			}
			a := addrs[ip]
			if a == nil {
				a = &addr{eip: e}
				addrs[ip] = a
			}
			if !slices.Contains(a.services, svc) {
				a.services = append(a.services, svc)
			}
		}
	}

	// Node-level eligibility does not depend on the address: compute it once.
	type nodeElig struct {
		name   string
		reason string // empty when eligible at node level
	}
	base := make([]nodeElig, 0, len(in.Nodes))
	for _, n := range in.Nodes {
		base = append(base, nodeElig{name: n.Name, reason: nodeReason(n, nodes[n.Name].Alive)})
	}
	slices.SortFunc(base, func(a, b nodeElig) int { return cmp.Compare(a.name, b.name) })

	out := Desired{Nodes: nodes, ByProtocol: map[string][]Announcement{}}
	for ip, a := range addrs {
		ann := Announcement{IP: ip, Eip: a.eip.eip.Name, Protocol: a.eip.protocol}
		for _, s := range a.services {
			ann.Services = append(ann.Services, types.NamespacedName{Namespace: s.Namespace, Name: s.Name})
		}
		slices.SortFunc(ann.Services, func(x, y types.NamespacedName) int {
			return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
		})
		local := localNodes(a.services, endpoints)
		needsFacts := a.eip.protocol == networkv1alpha2.ProtocolLayer2 || a.eip.protocol == networkv1alpha2.ProtocolVIP
		var eligible []string
		reasons := map[string]string{}
		for _, nb := range base {
			reason := nb.reason
			if reason == "" {
				reason = addrReason(nodeByName[nb.name], a.eip, needsFacts, nodes[nb.name].Facts, local)
			}
			if reason != "" {
				reasons[nb.name] = reason
				continue
			}
			eligible = append(eligible, nb.name)
		}
		ann.Nodes = election.Rank(ip.String(), eligible)
		if len(ann.Nodes) == 0 {
			ann.Reason = summarize(reasons)
		}
		if needsFacts && ann.Eligible(in.Self) {
			ann.Interface = nodes[in.Self].Facts[ann.Eip].Interface
		}
		out.ByProtocol[ann.Protocol] = append(out.ByProtocol[ann.Protocol], ann)
	}
	for p := range out.ByProtocol {
		slices.SortFunc(out.ByProtocol[p], func(x, y Announcement) int { return x.IP.Compare(y.IP) })
	}
	return out
}

func nodeInfos(in Inputs) map[string]NodeInfo {
	out := make(map[string]NodeInfo, len(in.Nodes))
	for _, n := range in.Nodes {
		info := NodeInfo{Name: n.Name}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				info.Addresses = append(info.Addresses, ip.Unmap())
			}
		}
		switch {
		case n.Name == in.Self:
			info.Alive, info.Facts = true, in.SelfFacts
		case in.Alive == nil:
			info.Alive = true
		default:
			info.Facts, info.Alive = in.Alive[n.Name]
		}
		out[n.Name] = info
	}
	return out
}

// nodeReason says why node n may announce nothing, or "".
func nodeReason(n *corev1.Node, alive bool) string {
	if !alive {
		return "speaker not alive"
	}
	if _, ok := n.Labels[LabelExcludeFromLB]; ok {
		return "excluded by label " + LabelExcludeFromLB
	}
	if !n.DeletionTimestamp.IsZero() {
		return "node being deleted"
	}
	ready := false
	for _, c := range n.Status.Conditions {
		switch c.Type {
		case corev1.NodeReady:
			ready = c.Status == corev1.ConditionTrue
		case corev1.NodeNetworkUnavailable:
			if c.Status == corev1.ConditionTrue {
				return "network unavailable"
			}
		}
	}
	if !ready {
		return "not ready"
	}
	return ""
}

// addrReason says why node n may not announce an address of e, or "".
func addrReason(n *corev1.Node, e *eipInfo, needsFacts bool, facts Facts, local map[string]bool) string {
	if e.selectorErr != nil {
		return "invalid Eip nodeSelector: " + e.selectorErr.Error()
	}
	if e.selector != nil && !e.selector.Matches(labels.Set(n.Labels)) {
		return "not selected by the Eip's nodeSelector"
	}
	if needsFacts {
		f, ok := facts[e.eip.Name]
		switch {
		case !ok:
			return "no interface facts for the Eip"
		case !f.OK:
			return f.Reason
		}
	}
	if local != nil && !local[n.Name] {
		return "no ready endpoint (externalTrafficPolicy Local)"
	}
	return ""
}

// localNodes returns the nodes with a ready endpoint of any of the Services
// when all of them use externalTrafficPolicy Local, else nil (every node).
func localNodes(svcs []*corev1.Service, endpoints map[types.NamespacedName]map[string]bool) map[string]bool {
	var out map[string]bool
	for _, s := range svcs {
		if s.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
			return nil
		}
		if out == nil {
			out = map[string]bool{}
		}
		for n := range endpoints[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] {
			out[n] = true
		}
	}
	return out
}

// endpointNodes maps each Service to the nodes holding a ready endpoint of
// it; when a Service has no ready endpoint, its serving (terminating)
// endpoints count, as kube-proxy falls back to them.
func endpointNodes(slices []*discoveryv1.EndpointSlice) map[types.NamespacedName]map[string]bool {
	ready := map[types.NamespacedName]map[string]bool{}
	serving := map[types.NamespacedName]map[string]bool{}
	add := func(m map[types.NamespacedName]map[string]bool, k types.NamespacedName, n string) {
		if m[k] == nil {
			m[k] = map[string]bool{}
		}
		m[k][n] = true
	}
	for _, es := range slices {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		k := types.NamespacedName{Namespace: es.Namespace, Name: svc}
		for _, ep := range es.Endpoints {
			if ep.NodeName == nil || *ep.NodeName == "" {
				continue
			}
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				add(ready, k, *ep.NodeName)
			} else if ep.Conditions.Serving != nil && *ep.Conditions.Serving {
				add(serving, k, *ep.NodeName)
			}
		}
	}
	for k, v := range serving {
		if len(ready[k]) == 0 {
			ready[k] = v
		}
	}
	return ready
}

func parseEips(in []*networkv1alpha2.Eip) []*eipInfo {
	out := make([]*eipInfo, 0, len(in))
	for _, e := range in {
		first, last, err := ParseRange(e.Spec.Address)
		if err != nil {
			continue
		}
		info := &eipInfo{eip: e, first: first, last: last, protocol: cmp.Or(e.Spec.Protocol, networkv1alpha2.ProtocolBGP)}
		if e.Spec.NodeSelector != nil {
			info.selector, info.selectorErr = metav1.LabelSelectorAsSelector(e.Spec.NodeSelector)
		}
		out = append(out, info)
	}
	// Overlapping Eips are rejected by admission; should they exist anyway,
	// every speaker picks the same one (by name).
	slices.SortFunc(out, func(a, b *eipInfo) int { return cmp.Compare(a.eip.Name, b.eip.Name) })
	return out
}

func eipFor(eips []*eipInfo, ip netip.Addr) *eipInfo {
	for _, e := range eips {
		if e.first.Is4() == ip.Is4() && e.first.Compare(ip) <= 0 && ip.Compare(e.last) <= 0 {
			return e
		}
	}
	return nil
}

// ParseRange parses an Eip address with the controller's parser
// (internal/ipam), so that speakers and IPAM never disagree on what an Eip
// covers.
func ParseRange(s string) (first, last netip.Addr, err error) {
	r, err := ipam.ParseRange(s)
	if err != nil {
		return netip.Addr{}, netip.Addr{}, err
	}
	return r.First, r.Last, nil
}

// summarize turns per-node reasons into one message, grouped by reason.
func summarize(reasons map[string]string) string {
	if len(reasons) == 0 {
		return "no nodes"
	}
	byReason := map[string][]string{}
	for n, r := range reasons {
		byReason[r] = append(byReason[r], n)
	}
	keys := make([]string, 0, len(byReason))
	for r := range byReason {
		keys = append(keys, r)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, r := range keys {
		ns := byReason[r]
		sort.Strings(ns)
		if len(ns) > 3 {
			ns = append(ns[:3], fmt.Sprintf("and %d more", len(ns)-3))
		}
		parts = append(parts, fmt.Sprintf("%s: %s", strings.Join(ns, ", "), r))
	}
	return "no eligible node (" + strings.Join(parts, "; ") + ")"
}
