package speaker

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/speaker/internal/netx"
)

// CanReachPrefix marks an interface given as "can_reach:<IP>": the
// interface of the node's main-table route to that IP.
const CanReachPrefix = "can_reach:"

// FactsOptions restrict which interfaces a protocol may use.
type FactsOptions struct {
	// Allowed maps a protocol to its interface allow-list
	// (--layer2-interfaces, --vip-interfaces); empty allows all.
	Allowed map[string][]string
}

// LocalFacts computes this node's facts for every layer2 and vip Eip from a
// snapshot of its links and routes; it is pure.
//
// Candidates, in order: for layer2 Eips the Node annotation
// layer2.openelb.kubesphere.io/v1alpha1 (an interface name, an IP of the
// node's interface, or can_reach:<IP>), then the Eip's spec.interface. The
// first candidate that resolves to an interface that is up, is not a
// loopback, is allowed, and on which both ends of the Eip's range are
// on-link or routed out of (main table) is used; otherwise the Eip's fact
// is not OK and says why, and the node is not eligible for the Eip.
func LocalFacts(node *corev1.Node, eips []*networkv1alpha2.Eip, snap netx.Snapshot, o FactsOptions) Facts {
	out := Facts{}
	for _, e := range eips {
		proto := e.Spec.Protocol
		if proto != networkv1alpha2.ProtocolLayer2 && proto != networkv1alpha2.ProtocolVIP {
			continue
		}
		first, last, err := ParseRange(e.Spec.Address)
		if err != nil {
			out[e.Name] = EipFact{Reason: err.Error()}
			continue
		}
		var candidates []string
		if proto == networkv1alpha2.ProtocolLayer2 && node != nil {
			if v := strings.TrimSpace(node.Annotations[networkv1alpha2.AnnotationLayer2Interface]); v != "" {
				candidates = append(candidates, v)
			}
		}
		if e.Spec.Interface != "" {
			candidates = append(candidates, e.Spec.Interface)
		}
		if len(candidates) == 0 {
			out[e.Name] = EipFact{Reason: "the Eip names no interface"}
			continue
		}
		var f EipFact
		for _, c := range candidates {
			f = checkCandidate(c, first, last, snap, o.Allowed[proto])
			if f.OK {
				break
			}
		}
		out[e.Name] = f
	}
	return out
}

func checkCandidate(spec string, first, last netip.Addr, snap netx.Snapshot, allowed []string) EipFact {
	l, err := resolveInterface(spec, snap)
	if err != nil {
		return EipFact{Reason: err.Error()}
	}
	f := EipFact{Interface: l.Name}
	switch {
	case l.Loopback:
		f.Reason = fmt.Sprintf("interface %s is a loopback", l.Name)
	case !l.Up:
		f.Reason = fmt.Sprintf("interface %s is down", l.Name)
	case len(allowed) > 0 && !slices.Contains(allowed, l.Name):
		f.Reason = fmt.Sprintf("interface %s is not in the allowed interfaces %v", l.Name, allowed)
	case !snap.Reaches(l, first) || !snap.Reaches(l, last):
		f.Reason = fmt.Sprintf("interface %s neither holds the subnet of %s nor routes to it", l.Name, rangeString(first, last))
	default:
		f.OK = true
	}
	return f
}

// resolveInterface turns an interface spec into a link: a name, an IP of
// one of the node's interfaces, or can_reach:<IP> (main-table route lookup).
func resolveInterface(spec string, snap netx.Snapshot) (netx.Link, error) {
	if target, ok := strings.CutPrefix(spec, CanReachPrefix); ok {
		ip, err := netip.ParseAddr(target)
		if err != nil {
			return netx.Link{}, fmt.Errorf("invalid %s%s: %w", CanReachPrefix, target, err)
		}
		links := snap.RouteLinks(ip)
		for _, idx := range links {
			if l, ok := snap.LinkByIndex(idx); ok && !l.Loopback {
				return l, nil
			}
		}
		return netx.Link{}, fmt.Errorf("no route to %s on this node", ip)
	}
	if ip, err := netip.ParseAddr(spec); err == nil {
		if l, ok := snap.LinkWithAddr(ip); ok {
			return l, nil
		}
		return netx.Link{}, fmt.Errorf("no interface holds %s on this node", ip)
	}
	if l, ok := snap.LinkByName(spec); ok {
		return l, nil
	}
	return netx.Link{}, fmt.Errorf("interface %s not found on this node", spec)
}

func rangeString(first, last netip.Addr) string {
	if first == last {
		return first.String()
	}
	return first.String() + "-" + last.String()
}
