package ipam

import "github.com/google/btree"

// span is an inclusive run of free indices.
type span struct{ lo, hi u128 }

// spanSet is a set of free indices stored as disjoint, non-adjacent spans in
// a B-tree ordered by start. Every operation is O(log s) for s spans, and s
// is at most the number of taken indices plus one.
type spanSet struct {
	t *btree.BTreeG[span]
}

func newSpanSet() spanSet {
	return spanSet{t: btree.NewG(16, func(a, b span) bool { return a.lo.less(b.lo) })}
}

// addSpan adds [lo, hi] to an empty region of the set (no merging; used to
// initialise a range).
func (s spanSet) addSpan(lo, hi u128) { s.t.ReplaceOrInsert(span{lo, hi}) }

// min returns the lowest free index.
func (s spanSet) min() (u128, bool) {
	sp, ok := s.t.Min()
	return sp.lo, ok
}

func (s spanSet) empty() bool { return s.t.Len() == 0 }

// containing returns the span that contains x.
func (s spanSet) containing(x u128) (span, bool) {
	var found span
	ok := false
	s.t.DescendLessOrEqual(span{lo: x}, func(sp span) bool {
		if !sp.hi.less(x) {
			found, ok = sp, true
		}
		return false
	})
	return found, ok
}

// isFree reports whether x is in the set.
func (s spanSet) isFree(x u128) bool {
	_, ok := s.containing(x)
	return ok
}

// take removes x from the set and reports whether it was free.
func (s spanSet) take(x u128) bool {
	sp, ok := s.containing(x)
	if !ok {
		return false
	}
	s.t.Delete(sp)
	if sp.lo.less(x) {
		s.t.ReplaceOrInsert(span{sp.lo, x.sub1()})
	}
	if x.less(sp.hi) {
		s.t.ReplaceOrInsert(span{x.add1(), sp.hi})
	}
	return true
}

// free adds x to the set, merging it with adjacent spans. Adding an index
// that is already free does nothing.
func (s spanSet) free(x u128) {
	var prev, next span
	hasPrev, hasNext := false, false
	s.t.DescendLessOrEqual(span{lo: x}, func(sp span) bool {
		prev, hasPrev = sp, true
		return false
	})
	if hasPrev && !prev.hi.less(x) {
		return // already free
	}
	if !x.isMax() {
		s.t.AscendGreaterOrEqual(span{lo: x.add1()}, func(sp span) bool {
			if sp.lo == x.add1() {
				next, hasNext = sp, true
			}
			return false
		})
	}
	lo, hi := x, x
	if hasPrev && prev.hi.add1() == x {
		s.t.Delete(prev)
		lo = prev.lo
	}
	if hasNext {
		s.t.Delete(next)
		hi = next.hi
	}
	s.t.ReplaceOrInsert(span{lo, hi})
}

// spaceKind maps addresses of a pool to the indices of one of its spaces.
type spaceKind uint8

const (
	// spacePlain numbers addresses by their value (IPv6, and IPv4 pools
	// are split into the two spaces below).
	spacePlain spaceKind = iota
	// spaceV4Inner numbers IPv4 addresses whose last octet is 1-254
	// densely: 254 indices per /24.
	spaceV4Inner
	// spaceV4Edge numbers IPv4 addresses ending in .0 or .255 densely: two
	// indices per /24. They are handed out only when spaceV4Inner is full.
	spaceV4Edge
)

func isEdge(v uint64) bool { o := v & 0xff; return o == 0 || o == 0xff }

// index returns the index of an address value that belongs to the space.
func (k spaceKind) index(a u128) u128 {
	switch k {
	case spaceV4Inner:
		return u128{0, (a.lo>>8)*254 + (a.lo & 0xff) - 1}
	case spaceV4Edge:
		i := (a.lo >> 8) * 2
		if a.lo&0xff == 0xff {
			i++
		}
		return u128{0, i}
	}
	return a
}

// addr is the inverse of index.
func (k spaceKind) addr(i u128) u128 {
	switch k {
	case spaceV4Inner:
		return u128{0, (i.lo/254)<<8 | (i.lo%254 + 1)}
	case spaceV4Edge:
		v := (i.lo / 2) << 8
		if i.lo%2 == 1 {
			v |= 0xff
		}
		return u128{0, v}
	}
	return i
}

// holds reports whether an address value of the pool's family belongs to
// this space.
func (k spaceKind) holds(a u128) bool {
	switch k {
	case spaceV4Inner:
		return !isEdge(a.lo)
	case spaceV4Edge:
		return isEdge(a.lo)
	}
	return true
}

// bounds returns the first and last address values of the space inside
// [first, last] (IPv4 values), and false when there is none.
func (k spaceKind) bounds(first, last uint64) (lo, hi uint64, ok bool) {
	switch k {
	case spaceV4Inner:
		lo, hi = first, last
		for lo <= last && isEdge(lo) { // at most two steps
			lo++
		}
		for hi >= first && isEdge(hi) && hi > 0 {
			hi--
		}
		if isEdge(hi) {
			return 0, 0, false
		}
	case spaceV4Edge:
		lo, hi = first, last
		if !isEdge(lo) {
			lo = lo | 0xff
		}
		if !isEdge(hi) {
			hi = hi &^ 0xff
		}
	default:
		return first, last, true
	}
	return lo, hi, lo <= hi
}

// space is one index space of a pool with its free spans.
type space struct {
	kind spaceKind
	free spanSet
}
