package vip

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/openelb/openelb-operator/internal/election"
)

var three = []string{"node1", "node2", "node3"}

// checkInvariants fails when a plan breaks a rule that holds for every
// plan: VRIDs in 1..255 and unique per space, members unique, the
// preferred master ranked first for each address, addresses sorted and in
// one group only.
func checkInvariants(t *testing.T, p Plan) {
	t.Helper()
	seen := map[Space]map[int]bool{}
	where := map[netip.Addr]int{}
	for gi, g := range p.Groups {
		if g.VRID < 1 || g.VRID > MaxVRID {
			t.Errorf("group %d: VRID %d out of range", gi, g.VRID)
		}
		for _, s := range g.Spaces() {
			if seen[s] == nil {
				seen[s] = map[int]bool{}
			}
			if seen[s][g.VRID] {
				t.Errorf("VRID %d used twice on %s", g.VRID, s)
			}
			seen[s][g.VRID] = true
		}
		names := memberNames(g)
		if len(slices.Compact(slices.Sorted(slices.Values(names)))) != len(names) {
			t.Errorf("group %d: duplicate members %v", gi, names)
		}
		if !slices.IsSortedFunc(g.IPs, netip.Addr.Compare) {
			t.Errorf("group %d: addresses not sorted: %v", gi, g.IPs)
		}
		for _, ip := range g.IPs {
			if prev, dup := where[ip]; dup {
				t.Errorf("%s in groups %d and %d", ip, prev, gi)
			}
			where[ip] = gi
			if w := election.Rank(ip.String(), names)[0]; w != g.Members[0].Node {
				t.Errorf("%s: master %s, election ranks %s first", ip, g.Members[0].Node, w)
			}
			if FamilyOf(ip) != g.Family {
				t.Errorf("%s in an IPv%d group", ip, g.Family)
			}
		}
	}
}

func vrids(p Plan) map[netip.Addr]int {
	out := map[netip.Addr]int{}
	for _, g := range p.Groups {
		for _, ip := range g.IPs {
			out[ip] = g.VRID
		}
	}
	return out
}

func TestComputeGroupsByMasterAndSpreads(t *testing.T) {
	w := newWorld("node1", three...)
	for i := range 12 {
		w.addr(fmt.Sprintf("203.0.113.%d", 20+i), "eip")
	}
	p := mustCompute(t, Input{State: w.state()})
	checkInvariants(t, p)
	masters := map[string]int{}
	for _, g := range p.Groups {
		if len(g.Members) != 3 {
			t.Errorf("group %d has members %v, want all three nodes", g.VRID, memberNames(g))
		}
		masters[g.Members[0].Node] += len(g.IPs)
		for i, m := range g.Members {
			if m.Interface != "eth0" {
				t.Errorf("member %s on %q", m.Node, m.Interface)
			}
			if i > 0 && m.Node == g.Members[0].Node {
				t.Errorf("master repeated")
			}
		}
	}
	if len(p.Groups) != len(masters) {
		t.Errorf("%d groups for %d masters: one group per master expected (%+v)", len(p.Groups), len(masters), p)
	}
	if len(masters) < 2 {
		t.Errorf("all 12 addresses have master %v: masters must spread", masters)
	}
	got := make([]int, 0, len(p.Groups))
	for _, g := range p.Groups {
		got = append(got, g.VRID)
	}
	if want := []int{1, 2, 3}[:len(got)]; !slices.Equal(got, want) {
		t.Errorf("VRIDs %v, want the lowest ones %v", got, want)
	}
}

func TestComputeIsTheSameOnEveryNode(t *testing.T) {
	build := func(self string, reverse bool) Plan {
		w := newWorld(self, three...)
		addrs := []string{"203.0.113.20", "203.0.113.21", "203.0.113.22", "203.0.113.23", "2001:db8:ffff::1"}
		if reverse {
			slices.Reverse(addrs)
		}
		for _, a := range addrs {
			w.addr(a, "eip")
		}
		return mustCompute(t, Input{State: w.state()})
	}
	want := build("node1", false)
	checkInvariants(t, want)
	for _, self := range three {
		for _, rev := range []bool{false, true} {
			if got := build(self, rev); !got.Equal(want) {
				t.Errorf("self %s reverse %v:\n got %+v\nwant %+v", self, rev, got, want)
			}
		}
	}
}

func TestComputeSeparatesNodeSetsAndFamilies(t *testing.T) {
	// 203.0.113.20 and .21 are Local Services with endpoints on different
	// nodes; pick addresses whose master is the same node so that only the
	// node set tells them apart.
	var a, b string
	for i := 20; i < 120 && b == ""; i++ {
		ip := fmt.Sprintf("203.0.113.%d", i)
		if election.Rank(ip, []string{"node1", "node2"})[0] == "node1" && election.Rank(ip, three)[0] == "node1" {
			if a == "" {
				a = ip
			} else {
				b = ip
			}
		}
	}
	w := newWorld("node1", three...).addr(a, "eip", "node1", "node2").addr(b, "eip").addr("2001:db8:ffff::5", "eip6")
	p := mustCompute(t, Input{State: w.state()})
	checkInvariants(t, p)
	ga, gb := groupOf(t, p, a), groupOf(t, p, b)
	if ga.VRID == gb.VRID {
		t.Errorf("%s (nodes 1,2) and %s (nodes 1-3) share VRID %d", a, b, ga.VRID)
	}
	if got := memberNames(ga); len(got) != 2 || slices.Contains(got, "node3") {
		t.Errorf("%s members %v, want node1 and node2 only (externalTrafficPolicy Local)", a, got)
	}
	g6 := groupOf(t, p, "2001:db8:ffff::5")
	if g6.Family != 6 || g6.VRID != 1 {
		t.Errorf("IPv6 group %+v: want family 6 with VRID 1 (separate space)", g6)
	}
}

func TestComputeKeepsVRIDsWhenGroupsComeAndGo(t *testing.T) {
	base := newWorld("node1", three...)
	for i := range 9 {
		base.addr(fmt.Sprintf("203.0.113.%d", 20+i), "eip")
	}
	p0 := mustCompute(t, Input{State: base.state()})

	// A new node set appears (a Local Service on node3 only) and goes.
	more := newWorld("node1", three...)
	more.anns = slices.Clone(base.anns)
	more.nodes = base.nodes
	more.addr("203.0.113.99", "eip", "node3")
	p1 := mustCompute(t, Input{Prev: p0, State: more.state()})
	checkInvariants(t, p1)
	for ip, id := range vrids(p0) {
		if vrids(p1)[ip] != id {
			t.Errorf("adding a group moved %s from VRID %d to %d", ip, id, vrids(p1)[ip])
		}
	}
	p2 := mustCompute(t, Input{Prev: p1, State: base.state()})
	if !p2.Equal(p0) {
		t.Errorf("after the group left:\n got %+v\nwant %+v", p2, p0)
	}
	// Removing a group does not renumber the others.
	var fewer []string
	drop := p0.Groups[0]
	w := newWorld("node1", three...)
	for _, a := range base.anns {
		if !slices.Contains(drop.IPs, a.IP) {
			w.addr(a.IP.String(), "eip")
			fewer = append(fewer, a.IP.String())
		}
	}
	p3 := mustCompute(t, Input{Prev: p0, State: w.state()})
	for _, ip := range fewer {
		a := netip.MustParseAddr(ip)
		if vrids(p3)[a] != vrids(p0)[a] {
			t.Errorf("removing VRID %d renumbered %s: %d -> %d", drop.VRID, ip, vrids(p0)[a], vrids(p3)[a])
		}
	}
}

func TestComputeStickyMembers(t *testing.T) {
	w := newWorld("node1", three...)
	for i := range 6 {
		w.addr(fmt.Sprintf("203.0.113.%d", 30+i), "eip")
	}
	p0 := mustCompute(t, Input{State: w.state()})

	tests := []struct {
		name string
		// next is the world after the event (built from scratch: the core
		// drops dead nodes from Announcement.Nodes).
		next func() *world
		// same: the plan must not change.
		same bool
		// without: the node that must have left every group.
		without string
	}{
		{name: "speaker of node2 dies or restarts", same: true, next: func() *world {
			n := newWorld("node1", three...).dead("node2")
			for i := range 6 {
				n.addr(fmt.Sprintf("203.0.113.%d", 30+i), "eip", "node1", "node3")
			}
			return n
		}},
		{name: "this writer restarts before hearing from anyone", same: true, next: func() *world {
			n := newWorld("node1", three...).dead("node2", "node3")
			for i := range 6 {
				n.addr(fmt.Sprintf("203.0.113.%d", 30+i), "eip", "node1")
			}
			return n
		}},
		{name: "node2 deleted", without: "node2", next: func() *world {
			n := newWorld("node1", three...).remove("node2")
			for i := range 6 {
				n.addr(fmt.Sprintf("203.0.113.%d", 30+i), "eip", "node1", "node3")
			}
			return n
		}},
		{name: "node2 alive but not eligible (link down, not ready, excluded)", without: "node2", next: func() *world {
			n := newWorld("node1", three...)
			for i := range 6 {
				n.addr(fmt.Sprintf("203.0.113.%d", 30+i), "eip", "node1", "node3")
			}
			return n
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompute(t, Input{Prev: p0, State: tc.next().state()})
			checkInvariants(t, p)
			if tc.same {
				if !p.Equal(p0) {
					t.Fatalf("plan changed:\n got %+v\nwant %+v", p, p0)
				}
				return
			}
			for _, g := range p.Groups {
				if g.Member(tc.without) >= 0 {
					t.Errorf("VRID %d still has %s: %v", g.VRID, tc.without, memberNames(g))
				}
			}
			// Addresses whose master stays keep their VRID.
			for _, g0 := range p0.Groups {
				if g0.Members[0].Node == tc.without {
					continue
				}
				for _, ip := range g0.IPs {
					if got := vrids(p)[ip]; got != g0.VRID {
						t.Errorf("%s (master %s) moved from VRID %d to %d", ip, g0.Members[0].Node, g0.VRID, got)
					}
				}
			}
		})
	}
}

func TestComputeNewNodeKeepsVRIDs(t *testing.T) {
	w := newWorld("node1", three...)
	for i := range 20 {
		w.addr(fmt.Sprintf("203.0.113.%d", 40+i), "eip")
	}
	p0 := mustCompute(t, Input{State: w.state()})
	four := append(slices.Clone(three), "node4")
	w4 := newWorld("node1", four...)
	for i := range 20 {
		w4.addr(fmt.Sprintf("203.0.113.%d", 40+i), "eip")
	}
	p1 := mustCompute(t, Input{Prev: p0, State: w4.state()})
	checkInvariants(t, p1)
	moved := 0
	for _, g := range p1.Groups {
		if len(g.Members) != 4 {
			t.Errorf("VRID %d members %v, want four", g.VRID, memberNames(g))
		}
	}
	for _, g0 := range p0.Groups {
		for _, ip := range g0.IPs {
			g1 := groupOf(t, p1, ip.String())
			if g1.Members[0].Node == g0.Members[0].Node && g1.VRID != g0.VRID {
				t.Errorf("%s keeps master %s but moved from VRID %d to %d", ip, g0.Members[0].Node, g0.VRID, g1.VRID)
			}
			if g1.Members[0].Node == "node4" {
				moved++
			}
		}
	}
	if moved == 0 {
		t.Errorf("node4 became master of none of 20 addresses")
	}
}

func TestComputeSpacesPerInterface(t *testing.T) {
	w := newWorld("node1", three...)
	for _, n := range three[:2] {
		w.fact(n, "nic2", "eth1")
	}
	// Node3 calls its NIC ens3: a group on eth0/ens3 uses both spaces.
	w.fact("node1", "mixed", "eth0").fact("node2", "mixed", "eth0").fact("node3", "mixed", "ens3")
	w.addr("203.0.113.20", "eip").addr("203.0.113.64", "nic2", "node1", "node2").addr("203.0.113.80", "mixed")
	p := mustCompute(t, Input{State: w.state()})
	checkInvariants(t, p)
	g0, g1, gm := groupOf(t, p, "203.0.113.20"), groupOf(t, p, "203.0.113.64"), groupOf(t, p, "203.0.113.80")
	if g1.VRID != 1 {
		t.Errorf("eth1 group VRID %d: each interface has its own space starting at 1", g1.VRID)
	}
	if got := []int{min(g0.VRID, gm.VRID), max(g0.VRID, gm.VRID)}; !slices.Equal(got, []int{1, 2}) {
		t.Errorf("eth0 groups have VRIDs %v, want 1 and 2", got)
	}
	for _, m := range g1.Members {
		if m.Interface != "eth1" {
			t.Errorf("nic2 member %s on %s", m.Node, m.Interface)
		}
	}
	if got := gm.Spaces(); len(got) != 2 {
		t.Errorf("mixed group spaces %v", got)
	}
}

func TestComputeReservedVRIDs(t *testing.T) {
	w := newWorld("node1", three...).addr("203.0.113.20", "eip").addr("203.0.113.21", "eip")
	p0 := mustCompute(t, Input{State: w.state()})
	eth0 := Space{Family: 4, Interface: "eth0"}
	// A foreign router appears with VRID 1 and 3 on eth0.
	p1 := mustCompute(t, Input{Prev: p0, State: w.state(), Reserved: map[Space][]int{eth0: {1, 3}}})
	checkInvariants(t, p1)
	for _, g := range p1.Groups {
		if g.VRID == 1 || g.VRID == 3 {
			t.Errorf("group uses reserved VRID %d", g.VRID)
		}
	}
	for _, g := range p0.Groups {
		if g.VRID != 1 && g.VRID != 3 {
			for _, ip := range g.IPs {
				if vrids(p1)[ip] != g.VRID {
					t.Errorf("%s moved from unreserved VRID %d", ip, g.VRID)
				}
			}
		}
	}
	// Reserved VRIDs on another interface do not matter.
	p2 := mustCompute(t, Input{Prev: p0, State: w.state(), Reserved: map[Space][]int{{Family: 4, Interface: "eth1"}: {1, 2, 3}}})
	if !p2.Equal(p0) {
		t.Errorf("eth1 reservations changed the eth0 plan")
	}
}

func TestComputeAvoidsJustReleasedVRIDs(t *testing.T) {
	w := newWorld("node1", three...).addr("203.0.113.20", "eip", "node1")
	p0 := mustCompute(t, Input{State: w.state()})
	w2 := newWorld("node1", three...).addr("203.0.113.21", "eip", "node2")
	p1 := mustCompute(t, Input{Prev: p0, State: w2.state()})
	if g := groupOf(t, p1, "203.0.113.21"); g.VRID == groupOf(t, p0, "203.0.113.20").VRID {
		t.Errorf("new group took VRID %d that the previous plan used for another group", g.VRID)
	}
}

func TestComputeRepairsDuplicateVRIDs(t *testing.T) {
	w := newWorld("node1", three...).addr("203.0.113.20", "eip", "node1").addr("203.0.113.21", "eip", "node2")
	p := mustCompute(t, Input{State: w.state()})
	for i := range p.Groups {
		p.Groups[i].VRID = 7 // e.g. an edited record
	}
	got := mustCompute(t, Input{Prev: p, State: w.state()})
	checkInvariants(t, got)
	if ids := vrids(got); ids[netip.MustParseAddr("203.0.113.20")] != 7 && ids[netip.MustParseAddr("203.0.113.21")] != 7 {
		t.Errorf("neither group kept VRID 7: %v", ids)
	}
}

func TestComputeExhaustion(t *testing.T) {
	var nodes []string
	for i := range MaxVRID + 1 {
		nodes = append(nodes, fmt.Sprintf("n%03d", i))
	}
	w := newWorld(nodes[0], nodes...)
	for i, n := range nodes {
		w.addr(fmt.Sprintf("203.0.%d.%d", 113+i/200, 1+i%200), "eip", n)
	}
	p, unplanned := Compute(Input{State: w.state()})
	checkInvariants(t, p)
	if len(p.Groups) != MaxVRID || len(unplanned) != 1 {
		t.Fatalf("%d groups, %d unplanned, want %d and 1", len(p.Groups), len(unplanned), MaxVRID)
	}
	for ip, why := range unplanned {
		if !strings.Contains(why, "eth0/IPv4") {
			t.Errorf("%s: reason %q does not name the space", ip, why)
		}
	}
}

func TestComputeNoEligibleNode(t *testing.T) {
	w := newWorld("node1", three...).addr("203.0.113.20", "eip")
	w.anns[0].Nodes = nil
	p, un := Compute(Input{State: w.state()})
	if len(p.Groups) != 0 || len(un) != 0 {
		t.Errorf("address without eligible nodes: plan %+v, unplanned %v", p, un)
	}
}

func TestPriority(t *testing.T) {
	tests := []struct{ i, n, want int }{
		{0, 1, 254}, {0, 3, 254}, {1, 3, 234}, {2, 3, 214}, {12, 13, 14},
		{1, 100, 252}, {99, 100, 56}, {252, 253, 2}, {300, 400, 1},
	}
	for _, tc := range tests {
		if got := Priority(tc.i, tc.n); got != tc.want {
			t.Errorf("Priority(%d, %d) = %d, want %d", tc.i, tc.n, got, tc.want)
		}
	}
	// Within a group, priorities strictly decrease (up to 253 members).
	for _, n := range []int{2, 3, 13, 14, 100, 253} {
		for i := 1; i < n; i++ {
			if Priority(i, n) >= Priority(i-1, n) {
				t.Errorf("n=%d: Priority(%d) = %d not below Priority(%d) = %d", n, i, Priority(i, n), i-1, Priority(i-1, n))
			}
		}
	}
}
