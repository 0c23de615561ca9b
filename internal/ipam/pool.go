package ipam

import (
	"net/netip"
	"slices"
	"time"

	"github.com/google/btree"
)

// Pool is the configuration of one Eip, as the allocator needs it.
type Pool struct {
	// Name is the Eip's name.
	Name string
	// Range is the parsed spec.address.
	Range Range
	// Created orders overlapping pools: the later one is in conflict and
	// gets no new allocations.
	Created time.Time
	// Disabled (spec.disable) stops new allocations.
	Disabled bool
	// Deleting is set while the Eip has a deletionTimestamp.
	Deleting bool
	// Default is the is-default-eip annotation.
	Default bool
	// Priority orders namespace-bound pools: lower first.
	Priority int
	// Namespaces and NamespaceSelector bind the pool to namespaces.
	Namespaces        []string
	NamespaceSelector map[string]string
}

// Unbound reports whether the pool is bound to no namespace.
func (p *Pool) Unbound() bool { return len(p.Namespaces) == 0 && len(p.NamespaceSelector) == 0 }

// BoundTo reports whether the pool is bound to the namespace ns with the
// given labels, by name (namespaces) or by labels (namespaceSelector,
// matchLabels semantics).
func (p *Pool) BoundTo(ns string, labels map[string]string) bool {
	if slices.Contains(p.Namespaces, ns) {
		return true
	}
	if len(p.NamespaceSelector) == 0 {
		return false
	}
	for k, v := range p.NamespaceSelector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// BoundElsewhere reports whether the pool is bound to namespaces and ns is
// not one of them: the case namespace isolation forbids.
func (p *Pool) BoundElsewhere(ns string, labels map[string]string) bool {
	return !p.Unbound() && !p.BoundTo(ns, labels)
}

// pool is a Pool with its allocation state.
type pool struct {
	cfg    Pool
	spaces []space // inner addresses first, then IPv4 .0/.255
	// held are the addresses allocated from this pool, sorted; some may lie
	// outside Range after the range changed.
	held *btree.BTreeG[netip.Addr]
	// conflict names an older pool this one overlaps.
	conflict string
}

func newPool(cfg Pool) *pool {
	p := &pool{cfg: cfg, held: btree.NewG(32, func(a, b netip.Addr) bool { return a.Less(b) })}
	p.resetSpaces()
	return p
}

// resetSpaces makes every address of the range free.
func (p *pool) resetSpaces() {
	r := p.cfg.Range
	first, last := u128From(r.First), u128From(r.Last)
	if !r.First.Is4() {
		s := space{kind: spacePlain, free: newSpanSet()}
		s.free.addSpan(first, last)
		p.spaces = []space{s}
		return
	}
	p.spaces = p.spaces[:0]
	for _, k := range []spaceKind{spaceV4Inner, spaceV4Edge} {
		lo, hi, ok := k.bounds(first.lo, last.lo)
		if !ok {
			continue
		}
		s := space{kind: k, free: newSpanSet()}
		s.free.addSpan(k.index(u128{0, lo}), k.index(u128{0, hi}))
		p.spaces = append(p.spaces, s)
	}
}

func (p *pool) spaceOf(v u128) *space {
	for i := range p.spaces {
		if p.spaces[i].kind.holds(v) {
			return &p.spaces[i]
		}
	}
	return nil
}

// lowest returns the lowest free address, IPv4 .0/.255 last.
func (p *pool) lowest() (netip.Addr, bool) {
	for _, s := range p.spaces {
		if i, ok := s.free.min(); ok {
			return addrFrom(s.kind.addr(i), p.cfg.Range.First.Is4()), true
		}
	}
	return netip.Addr{}, false
}

// full reports whether no address of the range is free.
func (p *pool) full() bool {
	for _, s := range p.spaces {
		if !s.free.empty() {
			return false
		}
	}
	return true
}

// take marks a as not free when it lies in the range.
func (p *pool) take(a netip.Addr) {
	if !p.cfg.Range.Contains(a) {
		return
	}
	v := u128From(a)
	if s := p.spaceOf(v); s != nil {
		s.free.take(s.kind.index(v))
	}
}

// release marks a as free when it lies in the range.
func (p *pool) release(a netip.Addr) {
	if !p.cfg.Range.Contains(a) {
		return
	}
	v := u128From(a)
	if s := p.spaceOf(v); s != nil {
		s.free.free(s.kind.index(v))
	}
}

// isFree reports whether a lies in the range and is free.
func (p *pool) isFree(a netip.Addr) bool {
	if !p.cfg.Range.Contains(a) {
		return false
	}
	v := u128From(a)
	s := p.spaceOf(v)
	return s != nil && s.free.isFree(s.kind.index(v))
}

// usable reports why new addresses cannot come from the pool ("" if they
// can).
func (p *pool) unusable() string {
	switch {
	case p.cfg.Deleting:
		return "Eip " + p.cfg.Name + " is being deleted"
	case p.cfg.Disabled:
		return "Eip " + p.cfg.Name + " is disabled"
	case p.conflict != "":
		return "Eip " + p.cfg.Name + " overlaps Eip " + p.conflict
	}
	return ""
}
