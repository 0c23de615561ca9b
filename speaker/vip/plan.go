package vip

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/openelb/openelb-operator/internal/election"
	"github.com/openelb/openelb-operator/speaker"
)

// MaxVRID is the largest VRRP router ID (RFC 5798); 0 is not valid.
const MaxVRID = 255

// A Plan is the cluster-wide VRRP layout that every vip speaker applies:
// which addresses share a VRRP instance, the instance's router ID (VRID)
// and its members in priority order. One speaker (the writer) computes it
// with Compute and records it; every speaker configures keepalived from the
// recorded plan, so VRIDs and priorities are identical on every node.
type Plan struct {
	Groups []Group `json:"groups,omitempty"`
}

// A Group is one VRRP instance, run by each of its members on the member's
// interface.
type Group struct {
	VRID   int `json:"vrid"`
	Family int `json:"family"` // 4 or 6
	// Members in priority order: Members[0] is the preferred master.
	Members []Member `json:"members"`
	// IPs are the group's addresses, sorted.
	IPs []netip.Addr `json:"ips"`
}

// A Member is a node of a group with the interface it runs the group on.
type Member struct {
	Node      string `json:"node"`
	Interface string `json:"interface"`
}

// A Space is a VRID space: VRIDs are unique among the groups of one address
// family that use an interface of that name on any node. Interfaces of one
// name usually share a segment (eth0 on every node), so this keeps VRIDs
// unique per segment, and separate NICs get 255 VRIDs each.
type Space struct {
	Family    int
	Interface string
}

func (s Space) String() string { return fmt.Sprintf("%s/IPv%d", s.Interface, s.Family) }

// Priority is the VRRP priority of the member at index i of a group of n
// members: 254 for the preferred master, then steps of 20 (smaller in
// groups of more than 13, never below 1). A backup takes over its skew
// time, (256 − priority)/256 of the interval, after the master-down
// interval: high priorities keep that small (22/256 of the interval for
// the first backup), and distinct steps make the backups' timers differ by
// 20/256 of an interval, so that the next member in priority order, and
// only it, takes over even at short intervals.
func Priority(i, n int) int {
	step := 20
	if n > 1 {
		step = max(1, min(step, 252/(n-1)))
	}
	return max(1, 254-i*step)
}

// FamilyOf returns 4 or 6.
func FamilyOf(ip netip.Addr) int {
	if ip.Unmap().Is4() {
		return 4
	}
	return 6
}

// Spaces returns the VRID spaces a group uses, sorted.
func (g Group) Spaces() []Space {
	var out []Space
	for _, m := range g.Members {
		s := Space{Family: g.Family, Interface: m.Interface}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, compareSpace)
	return out
}

// Member returns the index of node among g's members, or -1.
func (g Group) Member(node string) int {
	return slices.IndexFunc(g.Members, func(m Member) bool { return m.Node == node })
}

// key identifies a group by family, member set and preferred master; two
// groups with the same key are the same VRRP instance.
func (g Group) key() string {
	if len(g.Members) == 0 {
		return fmt.Sprintf("%d||", g.Family)
	}
	return groupKey(g.Family, g.Members, g.Members[0].Node)
}

func groupKey(family int, members []Member, master string) string {
	s := slices.Clone(members)
	slices.SortFunc(s, compareMember)
	parts := make([]string, len(s))
	for i, m := range s {
		parts[i] = m.Node + "=" + m.Interface
	}
	return fmt.Sprintf("%d|%s|%s", family, strings.Join(parts, ","), master)
}

func compareMember(a, b Member) int {
	return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Interface, b.Interface))
}

func compareSpace(a, b Space) int {
	return cmp.Or(cmp.Compare(a.Family, b.Family), cmp.Compare(a.Interface, b.Interface))
}

// GroupOf returns the index of the group holding ip, or -1.
func (p Plan) GroupOf(ip netip.Addr) int {
	for i, g := range p.Groups {
		if _, ok := slices.BinarySearchFunc(g.IPs, ip, netip.Addr.Compare); ok {
			return i
		}
	}
	return -1
}

// Equal reports whether two plans are the same.
func (p Plan) Equal(o Plan) bool {
	return slices.EqualFunc(p.Groups, o.Groups, func(a, b Group) bool {
		return a.VRID == b.VRID && a.Family == b.Family && slices.Equal(a.Members, b.Members) && slices.Equal(a.IPs, b.IPs)
	})
}

// Input is what Compute decides from.
type Input struct {
	// Prev is the recorded plan (empty when none).
	Prev Plan
	// State is the vip protocol's desired state as the core computed it.
	State speaker.State
	// Reserved are VRIDs other VRRP routers use, per space; they are never
	// allocated, and a group holding one gets another.
	Reserved map[Space][]int
}

// Compute returns the plan for in, purely:
//
//   - Members: for each address, its eligible nodes (the core's
//     Announcement.Nodes, which already applies node readiness, labels,
//     interface facts and externalTrafficPolicy Local) with the interface
//     each of them reported, plus the members of its previous group whose
//     speaker is not alive at the moment (sticky: a dead or restarting
//     speaker does not regroup anything; VRRP itself moves the addresses
//     away from a dead node). A member leaves only when its speaker is
//     alive and says it is not eligible, or when its Node is gone.
//   - Master: the member ranked first by internal/election for the
//     address, so masters spread across nodes as layer2 announcers do.
//   - Groups: addresses with the same family, member set and master share
//     one instance; the other members follow the master in the election
//     order of the group.
//   - VRIDs: a group keeps its recorded VRID; a changed group inherits the
//     VRID of the previous group it shares most addresses with (same master
//     first), so membership changes reload an instance instead of replacing
//     it; a new group gets the lowest VRID free in every space it uses,
//     preferring VRIDs that the previous plan did not use. Reserved VRIDs
//     are never used.
//
// Addresses that cannot be placed (no VRID left) are returned with the
// reason. Compute runs in O(A log A + G·N + G²) for A addresses, G groups
// and N nodes.
func Compute(in Input) (Plan, map[netip.Addr]string) {
	prevIdx := map[netip.Addr]int{}
	for i, g := range in.Prev.Groups {
		for _, ip := range g.IPs {
			prevIdx[ip] = i
		}
	}
	type cand struct {
		key     string
		family  int
		master  string
		members []Member
		ips     []netip.Addr
		spaces  []Space
		vrid    int
	}
	cands := map[string]*cand{}
	for _, a := range in.State.Announcements {
		members := map[string]Member{}
		for _, n := range a.Nodes {
			iface := in.State.Nodes[n].Facts[a.Eip].Interface
			if iface == "" {
				continue
			}
			members[n] = Member{Node: n, Interface: iface}
		}
		if i, ok := prevIdx[a.IP]; ok {
			for _, m := range in.Prev.Groups[i].Members {
				info, exists := in.State.Nodes[m.Node]
				if _, in := members[m.Node]; !in && exists && !info.Alive {
					members[m.Node] = m
				}
			}
		}
		if len(members) == 0 {
			continue
		}
		names := make([]string, 0, len(members))
		ms := make([]Member, 0, len(members))
		for n, m := range members {
			names = append(names, n)
			ms = append(ms, m)
		}
		master := election.Rank(a.IP.String(), names)[0]
		fam := FamilyOf(a.IP)
		key := groupKey(fam, ms, master)
		c := cands[key]
		if c == nil {
			c = &cand{key: key, family: fam, master: master}
			rest := make([]string, 0, len(names)-1)
			for _, n := range names {
				if n != master {
					rest = append(rest, n)
				}
			}
			c.members = append(c.members, members[master])
			for _, n := range election.Rank(key, rest) {
				c.members = append(c.members, members[n])
			}
			c.spaces = Group{Family: fam, Members: c.members}.Spaces()
			cands[key] = c
		}
		c.ips = append(c.ips, a.IP.Unmap())
	}

	order := make([]*cand, 0, len(cands))
	for _, c := range cands {
		slices.SortFunc(c.ips, netip.Addr.Compare)
		c.ips = slices.Compact(c.ips)
		order = append(order, c)
	}
	slices.SortFunc(order, func(a, b *cand) int { return cmp.Compare(a.key, b.key) })

	reserved := map[Space]map[int]bool{}
	for s, ids := range in.Reserved {
		for _, id := range ids {
			if reserved[s] == nil {
				reserved[s] = map[int]bool{}
			}
			reserved[s][id] = true
		}
	}
	used := map[Space]map[int]bool{}
	prevUsed := map[Space]map[int]bool{}
	for _, g := range in.Prev.Groups {
		for _, s := range g.Spaces() {
			if prevUsed[s] == nil {
				prevUsed[s] = map[int]bool{}
			}
			prevUsed[s][g.VRID] = true
		}
	}
	free := func(c *cand, id int, avoidPrev bool) bool {
		if id < 1 || id > MaxVRID {
			return false
		}
		for _, s := range c.spaces {
			if used[s][id] || reserved[s][id] || (avoidPrev && prevUsed[s][id]) {
				return false
			}
		}
		return true
	}
	take := func(c *cand, id int) {
		c.vrid = id
		for _, s := range c.spaces {
			if used[s] == nil {
				used[s] = map[int]bool{}
			}
			used[s][id] = true
		}
	}

	// 1. Unchanged groups keep their VRID.
	prevByKey := map[string]int{}
	for i, g := range in.Prev.Groups {
		prevByKey[g.key()] = i
	}
	claimed := map[int]bool{} // previous groups whose VRID is taken over
	for _, c := range order {
		if i, ok := prevByKey[c.key]; ok && free(c, in.Prev.Groups[i].VRID, false) {
			take(c, in.Prev.Groups[i].VRID)
			claimed[i] = true
		}
	}
	// 2. Changed groups inherit from the previous group they overlap most.
	type inherit struct {
		c       *cand
		prev    int
		same    bool
		overlap int
	}
	var inh []inherit
	for _, c := range order {
		if c.vrid != 0 {
			continue
		}
		count := map[int]int{}
		for _, ip := range c.ips {
			if i, ok := prevIdx[ip]; ok && in.Prev.Groups[i].Family == c.family {
				count[i]++
			}
		}
		for i, n := range count {
			g := in.Prev.Groups[i]
			inh = append(inh, inherit{c: c, prev: i, same: len(g.Members) > 0 && g.Members[0].Node == c.master, overlap: n})
		}
	}
	slices.SortFunc(inh, func(a, b inherit) int {
		if a.same != b.same {
			if a.same {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.overlap, a.overlap), cmp.Compare(in.Prev.Groups[a.prev].VRID, in.Prev.Groups[b.prev].VRID),
			cmp.Compare(a.c.key, b.c.key))
	})
	for _, x := range inh {
		if x.c.vrid != 0 || claimed[x.prev] {
			continue
		}
		if id := in.Prev.Groups[x.prev].VRID; free(x.c, id, false) {
			take(x.c, id)
			claimed[x.prev] = true
		}
	}
	// 3. New groups get the lowest free VRID, preferring ones not in use
	// before (a node that applies the new plan late still runs the old
	// instance for a moment).
	unplanned := map[netip.Addr]string{}
	for _, c := range order {
		if c.vrid != 0 {
			continue
		}
		for _, avoidPrev := range []bool{true, false} {
			for id := 1; id <= MaxVRID && c.vrid == 0; id++ {
				if free(c, id, avoidPrev) {
					take(c, id)
				}
			}
			if c.vrid != 0 {
				break
			}
		}
		if c.vrid == 0 {
			names := make([]string, len(c.spaces))
			for i, s := range c.spaces {
				names[i] = s.String()
			}
			for _, ip := range c.ips {
				unplanned[ip] = "no VRRP router ID left on " + strings.Join(names, ", ")
			}
		}
	}

	var out Plan
	for _, c := range order {
		if c.vrid != 0 {
			out.Groups = append(out.Groups, Group{VRID: c.vrid, Family: c.family, Members: c.members, IPs: c.ips})
		}
	}
	slices.SortFunc(out.Groups, func(a, b Group) int {
		return cmp.Or(cmp.Compare(a.Family, b.Family), cmp.Compare(a.VRID, b.VRID), cmp.Compare(a.key(), b.key()))
	})
	return out, unplanned
}
