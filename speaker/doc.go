// Package speaker is the core of the per-node speaker role: one process per
// node decides which service addresses this node announces and hands that
// decision to one protocol back-end per enabled mode (speaker/layer2,
// speaker/bgp, speaker/vip). Decisions: docs/design/0007-speaker-layer2.md.
//
// # Decision
//
// Compute is a pure function of Inputs: the Services of type LoadBalancer
// with addresses in status.loadBalancer.ingress, the Eips, the Nodes, the
// EndpointSlices, the set of live speakers with their Facts, and this
// node's own Facts. Every speaker that holds the same Inputs reaches the
// same decision: for each address (found in the Eip whose range holds it;
// Services sharing an address share one Announcement) the eligible nodes,
// ranked by internal/election. A node is eligible for an address when
//
//   - its speaker is alive (liveness; every node when liveness does not run),
//   - the Node is Ready, not NetworkUnavailable, not being deleted and not
//     labelled node.kubernetes.io/exclude-from-external-load-balancers,
//   - it matches the Eip's spec.nodeSelector,
//   - for layer2 and vip Eips: its Facts say it has the Eip's interface, up,
//     allowed (--layer2-interfaces / --vip-interfaces), not lo, and both
//     ends of the Eip's range are on that interface's subnets or routed out
//     of it (main table),
//   - with externalTrafficPolicy Local (when every Service sharing the
//     address uses it): it holds a ready endpoint of a Service (serving
//     terminating endpoints when none is ready).
//
// The OpenELB speaker node selector needs no input of its own: a node it
// excludes runs no speaker, so it is never alive (layer2, vip) and never
// advertises itself (bgp).
//
// Facts are what only the node itself can know (LocalFacts: which interface
// it would use for each layer2 or vip Eip and whether that interface can
// carry the Eip); speakers exchange them with their heartbeats
// (speaker/liveness), so that every speaker evaluates every node alike.
//
// # Back-ends
//
// A Backend announces the addresses of one Eip protocol on this node:
//
//	type Backend interface {
//		Protocol() string                           // "layer2", "bgp" or "vip"
//		Apply(ctx context.Context, s State) error   // the complete desired state, after every change
//		Shutdown(ctx context.Context) error         // SIGTERM: stop, handing over where possible
//	}
//
// Apply receives the full State of its protocol (push full sets, as
// MetalLB's Session.Set): Self, every Node with its InternalIPs, liveness
// and Facts, and the protocol's Announcements sorted by address, each with
// its Eip, Services, ranked eligible Nodes, the interface on Self (layer2,
// vip) and, when no node is eligible, the Reason. The back-end diffs it
// against what it announces and changes only the difference; Apply runs on
// the core's single decision loop, so it must return quickly. A failing
// Apply is retried with back-off. How each mode reads the State:
//
//   - layer2 (speaker/layer2): Nodes[0] is the announcer; the back-end
//     answers ARP/NDP when it is Self (with claim delays that prevent two
//     announcers, see that package);
//   - bgp (speaker/bgp): every eligible node advertises; the back-end
//     advertises the addresses for which Self is among Nodes, with itself as
//     next hop;
//   - vip (speaker/vip): addresses are grouped by interface and node set
//     (the eligible Nodes with their addresses from State.Nodes); one VRRP
//     instance per group that holds Self.
//
// Optional interfaces: a Reporter says which nodes announce an address
// (layer2: the elected node; bgp: every eligible node), which the Recorder
// writes to the Service; a Runner has a background loop started with the
// core (gratuitous schedule, BGP configuration, keepalived supervision).
// A back-end that needs more API objects (BgpConf, BgpPeer, Secrets,
// ConfigMaps) watches them itself through the same manager. speaker/app
// builds the back-ends of the enabled modes (factories in backends.go).
//
// # Runtime
//
// Speaker runs the loop: informers (with Transform stripping everything the
// decision does not read) and liveness and netlink changes poke it; bursts
// coalesce into one recomputation; updates that cannot change a decision
// (the announcer annotation speakers write, Node heartbeats) are ignored;
// a resync every 30 s is the safety net. On SIGTERM the back-ends Shutdown
// first, then liveness tells the peers that this node leaves, so they take
// over at once. The API load is per node, not per Service: watches, and
// writes only when an announcer changes.
//
// # Record
//
// The Recorder writes, for every Service with an address of a protocol
// whose back-end is a Reporter, the annotation openelb.kubesphere.io/announcer
// ("node2"; "203.0.113.20=node2;2001:db8::20=node1" for several addresses;
// "<none>" when nobody may announce) and an Event (AnnouncerChanged, or the
// Warning NoAnnouncer with the reason) when it changes. One node writes
// each Service's record: the announcer of its first address (else the
// alive node with the smallest name).
package speaker
