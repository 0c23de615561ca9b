package vip

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/openelb/openelb-operator/speaker"
	"github.com/openelb/openelb-operator/speaker/internal/netx"
)

// LabelSuffix marks the IPv4 addresses keepalived configures for us: the
// address label is "<interface>:oelb", so that addresses left behind by a
// keepalived that was killed are recognised and removed (IPv6 addresses
// have no labels; they are found through the run dir's address record).
const LabelSuffix = ":oelb"

// maxLabel is the kernel's limit on an address label (IFNAMSIZ − 1).
const maxLabel = 15

// Label returns the label of our addresses on iface, or "" when the name
// is too long to carry one.
func Label(iface string) string {
	if len(iface)+len(LabelSuffix) > maxLabel {
		return ""
	}
	return iface + LabelSuffix
}

// A KeepalivedConfig is this node's keepalived configuration, the data of the
// keepalived.conf template.
type KeepalivedConfig struct {
	// RouterID is keepalived's router_id (the node name).
	RouterID string
	// AdvertInt is the advertisement interval in seconds ("1", "0.1").
	AdvertInt string
	Instances []Instance
}

// An Instance is one vrrp_instance.
type Instance struct {
	Name      string
	Interface string
	VRID      int
	Priority  int
	Family    int
	// Unicast instances send advertisements from Source to Peers; the
	// others multicast them.
	Unicast bool
	Source  netip.Addr
	Peers   []netip.Addr
	// Anchor is the one address carried in advertisements; Excluded are the
	// others. keepalived requires one address in virtual_ipaddress and
	// checks only its count (with vrrp_skip_check_adv_addr), so members that
	// apply a changed address list a moment apart never disagree, and a
	// group may hold any number of addresses.
	Anchor   VIP
	Excluded []VIP
}

// A VIP is a virtual address on an interface.
type VIP struct {
	IP        netip.Addr
	Interface string
	Label     string
}

// Prefix returns the host prefix of the address.
func (v VIP) Prefix() netip.Prefix { return netip.PrefixFrom(v.IP, v.IP.BitLen()) }

// VIPs returns every address of the configuration.
func (c KeepalivedConfig) VIPs() []VIP {
	var out []VIP
	for _, in := range c.Instances {
		out = append(out, in.Anchor)
		out = append(out, in.Excluded...)
	}
	return out
}

// Directory maps a node to what it published: its addresses per interface.
type Directory map[string]map[string][]netip.Addr

// LocalInput is what Local needs.
type LocalInput struct {
	Self  string
	Plan  Plan
	State speaker.State
	// Directory holds the nodes' published interface addresses (unicast
	// peers on interfaces other than the one holding the InternalIP).
	Directory Directory
	// Links are this node's links and addresses.
	Links          []netx.Link
	AdvertInterval time.Duration
	Multicast      bool
}

// Local computes this node's keepalived configuration from the recorded
// plan, purely. For every group this node is a member of it configures the
// group's addresses that this node may announce now (an address the core
// no longer lists, or for which this node is not eligible at the moment,
// is left out at once; only the writer adds addresses, through the plan),
// on this node's interface for them, with the member's priority, and the
// other members as unicast peers: the address each published for its
// interface, else its InternalIP when that is on-link here. A group with
// one member, or with --vip-multicast, advertises by multicast. Problems
// that keep a group off this node are returned as warnings.
func Local(in LocalInput) (KeepalivedConfig, []string) {
	cfg := KeepalivedConfig{RouterID: in.Self, AdvertInt: AdvertInt(in.AdvertInterval)}
	eligible := map[netip.Addr]speaker.Announcement{}
	planned := map[netip.Addr]bool{}
	for _, a := range in.State.Announcements {
		planned[a.IP] = true
		if a.Eligible(in.Self) && a.Interface != "" {
			eligible[a.IP] = a
		}
	}
	for _, g := range in.Plan.Groups {
		for _, ip := range g.IPs {
			planned[ip] = true
		}
	}
	var warnings []string
	for _, g := range in.Plan.Groups {
		idx := g.Member(in.Self)
		if idx < 0 {
			continue
		}
		iface := g.Members[idx].Interface
		var vips []VIP
		for _, ip := range g.IPs {
			a, ok := eligible[ip]
			if !ok || a.Interface != iface {
				continue
			}
			vips = append(vips, VIP{IP: ip, Interface: iface, Label: labelFor(ip, iface)})
		}
		if len(vips) == 0 {
			continue
		}
		inst := Instance{
			Name:      InstanceName(iface, g.Family, g.VRID),
			Interface: iface, VRID: g.VRID, Priority: Priority(idx, len(g.Members)), Family: g.Family,
			Anchor: vips[0], Excluded: vips[1:],
		}
		link, ok := linkByName(in.Links, iface)
		if !ok {
			warnings = append(warnings, fmt.Sprintf("VRID %d: interface %s not found", g.VRID, iface))
			continue
		}
		if !in.Multicast && len(g.Members) > 1 {
			src, ok := nodeAddr(link, g.Family, planned)
			if !ok {
				warnings = append(warnings, fmt.Sprintf("VRID %d: no IPv%d address on %s to send unicast VRRP from", g.VRID, g.Family, iface))
				continue
			}
			for _, m := range g.Members {
				if m.Node == in.Self {
					continue
				}
				if p, ok := peerAddr(in, m, g.Family, link); ok {
					inst.Peers = append(inst.Peers, p)
				}
			}
			if len(inst.Peers) == 0 {
				warnings = append(warnings, fmt.Sprintf("VRID %d: no address known for any other member on %s yet", g.VRID, iface))
				continue
			}
			slices.SortFunc(inst.Peers, netip.Addr.Compare)
			inst.Peers = slices.Compact(inst.Peers)
			inst.Unicast, inst.Source = true, src
		}
		cfg.Instances = append(cfg.Instances, inst)
	}
	slices.SortFunc(cfg.Instances, func(a, b Instance) int {
		return cmp.Or(cmp.Compare(a.Interface, b.Interface), cmp.Compare(a.Family, b.Family), cmp.Compare(a.VRID, b.VRID))
	})
	return cfg, warnings
}

// InstanceName names the vrrp_instance of a VRID on an interface; keepalived
// keeps an instance's state across reloads when its name is unchanged.
func InstanceName(iface string, family, vrid int) string {
	return fmt.Sprintf("oelb_%s_v%d_%d", iface, family, vrid)
}

// AdvertInt formats an advertisement interval for keepalived (seconds,
// centisecond resolution, VRRPv3).
func AdvertInt(d time.Duration) string {
	cs := max(1, int64((d+5*time.Millisecond)/(10*time.Millisecond)))
	return strconv.FormatFloat(float64(cs)/100, 'f', -1, 64)
}

func labelFor(ip netip.Addr, iface string) string {
	if ip.Is4() {
		return Label(iface)
	}
	return ""
}

func linkByName(links []netx.Link, name string) (netx.Link, bool) {
	for _, l := range links {
		if l.Name == name {
			return l, true
		}
	}
	return netx.Link{}, false
}

// nodeAddr returns the link's own address of family: the first global
// unicast one that is not a service address, preferring real subnets over
// host prefixes.
func nodeAddr(l netx.Link, family int, service map[netip.Addr]bool) (netip.Addr, bool) {
	var host netip.Addr
	for _, p := range l.Prefixes {
		a := p.Addr()
		if FamilyOf(a) != family || !a.IsGlobalUnicast() || service[a] {
			continue
		}
		if p.Bits() < a.BitLen() {
			return a, true
		}
		if !host.IsValid() {
			host = a
		}
	}
	return host, host.IsValid()
}

// NodeAddrs returns the node's own addresses on a link (one per family) to
// publish for unicast peers.
func NodeAddrs(l netx.Link, service map[netip.Addr]bool) []netip.Addr {
	var out []netip.Addr
	for _, f := range []int{4, 6} {
		if a, ok := nodeAddr(l, f, service); ok {
			out = append(out, a)
		}
	}
	return out
}

func peerAddr(in LocalInput, m Member, family int, local netx.Link) (netip.Addr, bool) {
	for _, a := range in.Directory[m.Node][m.Interface] {
		if FamilyOf(a) == family {
			return a, true
		}
	}
	for _, a := range in.State.Nodes[m.Node].Addresses {
		if FamilyOf(a) != family {
			continue
		}
		for _, p := range local.Prefixes {
			if p.Bits() < p.Addr().BitLen() && p.Contains(a) {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}
