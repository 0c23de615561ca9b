package vip

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/openelb/openelb-operator/internal/election"
	"github.com/openelb/openelb-operator/speaker"
)

// world builds speaker.States for tests: nodes with InternalIPs
// 198.51.100.1N, each reporting interface eth0 for every Eip unless told
// otherwise.
type world struct {
	self  string
	nodes map[string]speaker.NodeInfo
	anns  []speaker.Announcement
}

func newWorld(self string, nodes ...string) *world {
	w := &world{self: self, nodes: map[string]speaker.NodeInfo{}}
	for i, n := range nodes {
		w.nodes[n] = speaker.NodeInfo{
			Name: n, Alive: true, Facts: speaker.Facts{},
			Addresses: []netip.Addr{netip.AddrFrom4([4]byte{198, 51, 100, byte(11 + i)}), netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", 11+i))},
		}
	}
	return w
}

// fact sets node's interface for eip.
func (w *world) fact(node, eip, iface string) *world {
	info := w.nodes[node]
	f := speaker.Facts{}
	for k, v := range info.Facts {
		f[k] = v
	}
	f[eip] = speaker.EipFact{Interface: iface, OK: true}
	info.Facts = f
	w.nodes[node] = info
	return w
}

func (w *world) dead(nodes ...string) *world {
	for _, n := range nodes {
		info := w.nodes[n]
		info.Alive, info.Facts = false, nil
		w.nodes[n] = info
	}
	return w
}

func (w *world) remove(nodes ...string) *world {
	for _, n := range nodes {
		delete(w.nodes, n)
	}
	return w
}

// addr announces ip of eip with the eligible nodes (all alive nodes when
// none are given), ranked as the core ranks them; every eligible node gets
// an eth0 fact unless it has one.
func (w *world) addr(ip, eip string, eligible ...string) *world {
	a := netip.MustParseAddr(ip)
	if len(eligible) == 0 {
		for n, info := range w.nodes {
			if info.Alive {
				eligible = append(eligible, n)
			}
		}
		slices.Sort(eligible)
	}
	for _, n := range eligible {
		if _, ok := w.nodes[n].Facts[eip]; !ok {
			w.fact(n, eip, "eth0")
		}
	}
	ann := speaker.Announcement{IP: a, Eip: eip, Protocol: "vip", Nodes: election.Rank(ip, eligible)}
	if slices.Contains(eligible, w.self) {
		ann.Interface = w.nodes[w.self].Facts[eip].Interface
	}
	w.anns = append(w.anns, ann)
	slices.SortFunc(w.anns, func(x, y speaker.Announcement) int { return x.IP.Compare(y.IP) })
	return w
}

func (w *world) state() speaker.State {
	return speaker.State{Self: w.self, Nodes: w.nodes, Announcements: slices.Clone(w.anns)}
}

func ips(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// mustCompute runs Compute and fails on unplanned addresses.
func mustCompute(t *testing.T, in Input) Plan {
	t.Helper()
	p, un := Compute(in)
	if len(un) > 0 {
		t.Fatalf("unplanned addresses: %v", un)
	}
	return p
}

// groupOf returns the group holding ip.
func groupOf(t *testing.T, p Plan, ip string) Group {
	t.Helper()
	i := p.GroupOf(netip.MustParseAddr(ip))
	if i < 0 {
		t.Fatalf("%s is in no group of %+v", ip, p)
	}
	return p.Groups[i]
}

func memberNames(g Group) []string {
	out := make([]string, len(g.Members))
	for i, m := range g.Members {
		out[i] = m.Node
	}
	return out
}
