package lab

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
)

// The address plan (docs/lab.md, lab-recipes §0). Every address is in a
// documentation range and lives only inside the lab's namespaces.
var (
	// LANv4 and LANv6 are the node LAN behind the bridge.
	LANv4 = netip.MustParsePrefix("198.51.100.0/24")
	LANv6 = netip.MustParsePrefix("2001:db8::/64")
	// UplinkV4 and UplinkV6 are the router–client point-to-point link.
	UplinkV4 = netip.MustParsePrefix("198.18.1.0/24")
	UplinkV6 = netip.MustParsePrefix("2001:db8:1::/64")
	// PoolsV4 holds every LoadBalancer pool. BGPPoolV4 (the first /28) is
	// routed by the client through the router; the rest of PoolsV4 is on
	// the client's LAN link (layer2 and vip pools).
	PoolsV4   = netip.MustParsePrefix("203.0.113.0/24")
	BGPPoolV4 = netip.MustParsePrefix("203.0.113.0/28")
	// BGPPoolV6 is routed by the client through the router; IPv6 layer2
	// addresses are taken from LANv6.
	BGPPoolV6 = netip.MustParsePrefix("2001:db8:ffff::/48")
	// ServiceCIDRs are the Service cluster IP ranges of the apiserver.
	ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("198.19.0.0/24"), netip.MustParsePrefix("2001:db8:19::/112")}
)

// RouterASN is the router's autonomous system number; it peers with any
// other ASN on LANv4/LANv6 (dynamic neighbours, passive).
const RouterASN = 64500

// MaxNodes bounds Options.Nodes (node addresses .11 … .30).
const MaxNodes = 20

// Host is one host on the LAN: its namespace role, eth0 addresses and MAC.
type Host struct {
	Short string
	IPv4  netip.Addr
	IPv6  netip.Addr
	MAC   net.HardwareAddr
}

// Topology is the computed address plan of a lab with a number of nodes.
type Topology struct {
	Router, K8s, Client Host
	Nodes               []Host
	// RouterUplink and ClientUplink are the eth1 addresses of the
	// router–client link.
	RouterUplinkV4, RouterUplinkV6 netip.Addr
	ClientUplinkV4, ClientUplinkV6 netip.Addr
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// NodeName is the Kubernetes name of node i (1-based): "node1", ….
func NodeName(i int) string { return fmt.Sprintf("node%d", i) }

// Plan returns the topology of a lab with n nodes (1 ≤ n ≤ MaxNodes).
// Node i gets 198.51.100.(10+i), 2001:db8::(10+i) and MAC
// 02:00:00:00:01:(10+i), written in decimal digits so that node1 is .11,
// ::11 and …:01:11.
func Plan(n int) (Topology, error) {
	if n < 1 || n > MaxNodes {
		return Topology{}, fmt.Errorf("lab: %d nodes requested, want 1 to %d", n, MaxNodes)
	}
	t := Topology{
		Router:         Host{Short: "router", IPv4: netip.MustParseAddr("198.51.100.1"), IPv6: netip.MustParseAddr("2001:db8::1"), MAC: mac("02:00:00:00:00:01")},
		K8s:            Host{Short: "k8s", IPv4: netip.MustParseAddr("198.51.100.2"), IPv6: netip.MustParseAddr("2001:db8::2"), MAC: mac("02:00:00:00:00:02")},
		Client:         Host{Short: "client", IPv4: netip.MustParseAddr("198.51.100.100"), IPv6: netip.MustParseAddr("2001:db8::100"), MAC: mac("02:00:00:00:00:64")},
		RouterUplinkV4: netip.MustParseAddr("198.18.1.1"),
		RouterUplinkV6: netip.MustParseAddr("2001:db8:1::1"),
		ClientUplinkV4: netip.MustParseAddr("198.18.1.2"),
		ClientUplinkV6: netip.MustParseAddr("2001:db8:1::2"),
	}
	for i := 1; i <= n; i++ {
		t.Nodes = append(t.Nodes, Host{
			Short: NodeName(i),
			IPv4:  netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", 10+i)),
			IPv6:  netip.MustParseAddr(fmt.Sprintf("2001:db8::%d", 10+i)),
			MAC:   mac(fmt.Sprintf("02:00:00:00:01:%d", 10+i)),
		})
	}
	return t, nil
}

// Hosts returns every host attached to the LAN bridge, router first.
func (t Topology) Hosts() []Host {
	return append([]Host{t.Router, t.K8s, t.Client}, t.Nodes...)
}

// NodeSysctls are set in every node namespace: the VIPs sit on lo (the
// kube-proxy stand-in puts them there, as kube-proxy's IPVS mode does on
// kube-ipvs0), so only the speaker may answer ARP for them. These are the
// values kube-proxy sets with strictARP: true.
var NodeSysctls = map[string]string{
	"net.ipv4.conf.all.arp_ignore":       "1",
	"net.ipv4.conf.all.arp_announce":     "2",
	"net.ipv4.conf.default.arp_ignore":   "1",
	"net.ipv4.conf.default.arp_announce": "2",
}

// RouterSysctls enable forwarding and an L4 multipath hash (with the
// default L3 hash every flow from the single client takes one next hop).
var RouterSysctls = map[string]string{
	"net.ipv4.ip_forward":                "1",
	"net.ipv6.conf.all.forwarding":       "1",
	"net.ipv4.fib_multipath_hash_policy": "1",
	"net.ipv6.fib_multipath_hash_policy": "1",
}

// BaseSysctls are set in every namespace: addresses usable at once, no
// router advertisements, IPv6 addresses kept when a link goes down.
var BaseSysctls = map[string]string{
	"net.ipv6.conf.all.keep_addr_on_down":     "1",
	"net.ipv6.conf.default.keep_addr_on_down": "1",
	"net.ipv6.conf.all.accept_dad":            "0",
	"net.ipv6.conf.default.accept_dad":        "0",
	"net.ipv6.conf.all.accept_ra":             "0",
	"net.ipv6.conf.default.accept_ra":         "0",
}

// sortedUnique sorts addresses and drops duplicates (in place).
func sortedUnique(as []netip.Addr) []netip.Addr {
	sort.Slice(as, func(i, j int) bool { return as[i].Less(as[j]) })
	out := as[:0]
	for i, a := range as {
		if i == 0 || a != as[i-1] {
			out = append(out, a)
		}
	}
	return out
}
