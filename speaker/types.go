package speaker

import (
	"context"
	"net/netip"

	"k8s.io/apimachinery/pkg/types"
)

// A Backend announces the addresses of one Eip protocol (layer2, bgp, vip)
// on this node. The core calls Apply with the complete desired state of the
// backend's protocol after every change of any input (push full sets, as
// MetalLB's Session.Set): the backend diffs it against what it announces and
// changes only the difference. Apply must be cheap when nothing changed and
// must not block on the network for long (it runs on the core's single
// decision loop).
type Backend interface {
	// Protocol is the Eip protocol the backend announces.
	Protocol() string
	// Apply makes the node announce what s says. Errors are logged and
	// retried with back-off by the core.
	Apply(ctx context.Context, s State) error
	// Shutdown stops announcing at once, handing over to the other nodes
	// where the protocol can (SIGTERM). It is called once, after the last
	// Apply.
	Shutdown(ctx context.Context) error
}

// A Reporter is a Backend that can tell which nodes announce an address;
// the core records it on the Service (announcer annotation, Events, metric).
type Reporter interface {
	Announcers(a Announcement) []string
}

// State is the desired state of one protocol, identical on every speaker
// that sees the same inputs except for Self and the local interface names.
type State struct {
	// Self is this node's name.
	Self string
	// Nodes holds every node known to the API with what the core knows of
	// it: its addresses, whether its speaker is alive, its eligibility facts.
	Nodes map[string]NodeInfo
	// Announcements are this protocol's addresses, sorted by address.
	Announcements []Announcement
}

// NodeInfo describes one node for the backends.
type NodeInfo struct {
	Name string
	// Addresses are the node's InternalIPs, in the Node's order.
	Addresses []netip.Addr
	// Alive is true when the node's speaker is alive (always true for Self;
	// true for every node when liveness does not run).
	Alive bool
	// Facts are the node's interface facts per Eip (layer2 and vip Eips),
	// as its speaker reported them.
	Facts Facts
}

// An Announcement is one service address with everything a backend needs.
type Announcement struct {
	IP       netip.Addr
	Eip      string
	Protocol string
	// Services hold the address (several when it is shared), sorted.
	Services []types.NamespacedName
	// Nodes are the eligible nodes ranked by internal/election for this
	// address, best first: the layer2 announcer is Nodes[0]; BGP advertises
	// from each of them; VIP groups addresses by node set.
	Nodes []string
	// Interface is the interface on Self for this address (layer2 and vip;
	// empty when Self is not eligible).
	Interface string
	// Reason says why Nodes is empty.
	Reason string
}

// Winner returns the elected layer2 announcer of a, or "" when no node is
// eligible.
func (a Announcement) Winner() string {
	if len(a.Nodes) == 0 {
		return ""
	}
	return a.Nodes[0]
}

// Eligible reports whether node is among a's eligible nodes.
func (a Announcement) Eligible(node string) bool {
	for _, n := range a.Nodes {
		if n == node {
			return true
		}
	}
	return false
}

// Facts are what a node knows about itself that other speakers cannot read
// from the API: for each layer2 or vip Eip (by name), which interface it
// would use and whether that interface can carry the Eip's addresses. A
// speaker computes its own Facts from its links and routes (LocalFacts) and
// sends them to the others with its heartbeats, so that every speaker
// evaluates every node's eligibility the same way.
type Facts map[string]EipFact

// An EipFact is one node's fact about one Eip.
type EipFact struct {
	// Interface is the chosen interface (or the last candidate tried).
	Interface string `json:"i,omitempty"`
	// OK is true when the interface exists, is up, is allowed, is not lo,
	// and both ends of the Eip's range are on it or routed out of it.
	OK bool `json:"ok,omitempty"`
	// Reason says why OK is false.
	Reason string `json:"r,omitempty"`
}
