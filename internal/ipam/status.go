package ipam

import (
	"net/netip"
	"slices"
	"strings"
)

// UsedEntry is one address in use and its holders, in the order they got
// it.
type UsedEntry struct {
	Addr    netip.Addr
	Holders []ServiceKey
}

// HoldersString returns "ns/a;ns/b", OpenELB's status.used value.
func (u UsedEntry) HoldersString() string {
	parts := make([]string, len(u.Holders))
	for i, h := range u.Holders {
		parts[i] = h.String()
	}
	return strings.Join(parts, ";")
}

// PoolStatus is the derived state of a pool, for the Eip status.
type PoolStatus struct {
	Range Range
	// Usage is the number of distinct addresses in use.
	Usage int
	// Occupied is true when no address of the range is free.
	Occupied bool
	// Used lists the lowest addresses in use, at most the requested
	// number.
	Used []UsedEntry
	// OutOfRange lists (at most ten) addresses in use outside the range;
	// OutOfRangeCount counts them all.
	OutOfRange      []netip.Addr
	OutOfRangeCount int
	// Conflict names an older pool this one overlaps.
	Conflict string
}

// PoolStatus returns the state of a pool with at most maxUsed entries in
// Used. Cost: O(log n + maxUsed + out-of-range addresses).
func (a *Allocator) PoolStatus(name string, maxUsed int) (PoolStatus, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pools[name]
	if p == nil {
		return PoolStatus{}, false
	}
	st := PoolStatus{Range: p.cfg.Range, Usage: p.held.Len(), Occupied: p.full(), Conflict: p.conflict}
	p.held.Ascend(func(addr netip.Addr) bool {
		if len(st.Used) >= maxUsed {
			return false
		}
		st.Used = append(st.Used, a.entry(addr))
		return true
	})
	out := func(addr netip.Addr) bool {
		st.OutOfRangeCount++
		if len(st.OutOfRange) < 10 {
			st.OutOfRange = append(st.OutOfRange, addr)
		}
		return true
	}
	p.held.AscendLessThan(p.cfg.Range.First, out)
	if next := p.cfg.Range.Last.Next(); next.IsValid() {
		p.held.AscendGreaterOrEqual(next, out)
	}
	return st, true
}

func (a *Allocator) entry(addr netip.Addr) UsedEntry {
	as := a.addrs[addr]
	e := UsedEntry{Addr: addr, Holders: make([]ServiceKey, len(as.owners))}
	for i, o := range as.owners {
		e.Holders[i] = o.svc.Key
	}
	return e
}

// InUseOutside returns the addresses of a pool in use outside the range r
// (for a proposed range change), with their holders, at most limit entries,
// and their total count.
func (a *Allocator) InUseOutside(name string, r Range, limit int) ([]UsedEntry, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pools[name]
	if p == nil {
		return nil, 0
	}
	var out []UsedEntry
	n := 0
	p.held.Ascend(func(addr netip.Addr) bool {
		if !r.Contains(addr) {
			n++
			if len(out) < limit {
				out = append(out, a.entry(addr))
			}
		}
		return true
	})
	return out, n
}

// Services returns the Services holding addresses of a pool, sorted, at
// most max, and their total count.
func (a *Allocator) Services(name string, limit int) ([]ServiceKey, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pools[name]
	if p == nil {
		return nil, 0
	}
	seen := map[ServiceKey]struct{}{}
	p.held.Ascend(func(addr netip.Addr) bool {
		for _, o := range a.addrs[addr].owners {
			seen[o.svc.Key] = struct{}{}
		}
		return true
	})
	keys := make([]ServiceKey, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y ServiceKey) int { return strings.Compare(x.String(), y.String()) })
	n := len(keys)
	if len(keys) > limit {
		keys = keys[:limit]
	}
	return keys, n
}
