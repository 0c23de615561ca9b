package ipam

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestSpanSetAgainstModel drives a spanSet and a plain set with the same
// random operations and compares them after each step.
func TestSpanSetAgainstModel(t *testing.T) {
	const n = 64
	rng := rand.New(rand.NewPCG(1, 2))
	s := newSpanSet()
	s.addSpan(u128{0, 0}, u128{0, n - 1})
	free := map[uint64]bool{}
	for i := uint64(0); i < n; i++ {
		free[i] = true
	}
	for step := 0; step < 5000; step++ {
		x := rng.Uint64N(n)
		if rng.IntN(2) == 0 {
			if got := s.take(u128{0, x}); got != free[x] {
				t.Fatalf("step %d: take(%d) = %v, model %v", step, x, got, free[x])
			}
			free[x] = false
		} else {
			s.free(u128{0, x})
			free[x] = true
		}
		lowest, ok := uint64(0), false
		for i := uint64(0); i < n; i++ {
			if free[i] {
				lowest, ok = i, true
				break
			}
		}
		got, gotOK := s.min()
		if ok != gotOK || (ok && got.lo != lowest) {
			t.Fatalf("step %d: min() = %v,%v; model %d,%v", step, got, gotOK, lowest, ok)
		}
		// spans are disjoint, ordered and never adjacent
		var prev *span
		s.t.Ascend(func(sp span) bool {
			if sp.hi.less(sp.lo) {
				t.Fatalf("step %d: reversed span %v", step, sp)
			}
			if prev != nil && !prev.hi.add1().less(sp.lo) {
				t.Fatalf("step %d: spans %v and %v touch", step, *prev, sp)
			}
			p := sp
			prev = &p
			return true
		})
		for i := uint64(0); i < n; i++ {
			if s.isFree(u128{0, i}) != free[i] {
				t.Fatalf("step %d: isFree(%d) = %v, model %v", step, i, !free[i], free[i])
			}
		}
	}
}

func TestSpanSetExtremes(t *testing.T) {
	s := newSpanSet()
	maxV := u128{^uint64(0), ^uint64(0)}
	s.addSpan(u128{}, maxV)
	if !s.take(maxV) || !s.take(u128{}) {
		t.Fatal("cannot take the ends of the full 128-bit space")
	}
	if s.isFree(maxV) || s.isFree(u128{}) {
		t.Fatal("ends still free")
	}
	s.free(maxV)
	s.free(u128{})
	if s.t.Len() != 1 {
		t.Fatalf("freeing the ends left %d spans, want 1", s.t.Len())
	}
	// carry across the 64-bit boundary
	mid := u128{0, ^uint64(0)}
	s.take(mid)
	s.take(mid.add1())
	s.free(mid)
	s.free(mid.add1())
	if s.t.Len() != 1 {
		t.Fatalf("freeing across 2^64 left %d spans", s.t.Len())
	}
}

func TestSpaceIndexRoundTrip(t *testing.T) {
	for _, a := range []string{"0.0.0.0", "0.0.0.1", "0.0.0.254", "0.0.0.255", "203.0.113.0", "203.0.113.1", "203.0.113.254", "203.0.113.255", "255.255.255.255", "255.255.255.254"} {
		v := u128From(netip.MustParseAddr(a))
		for _, k := range []spaceKind{spaceV4Inner, spaceV4Edge} {
			if !k.holds(v) {
				continue
			}
			if back := k.addr(k.index(v)); back != v {
				t.Errorf("%s: kind %d index round trip gives %v", a, k, addrFrom(back, true))
			}
		}
	}
	// Inner indices are dense and ordered across /24 boundaries.
	in := spaceV4Inner
	if in.index(u128From(netip.MustParseAddr("203.0.113.254"))).add1() != in.index(u128From(netip.MustParseAddr("203.0.114.1"))) {
		t.Error("inner space is not dense across .254 → .1")
	}
	ed := spaceV4Edge
	if ed.index(u128From(netip.MustParseAddr("203.0.113.255"))).add1() != ed.index(u128From(netip.MustParseAddr("203.0.114.0"))) {
		t.Error("edge space is not dense across .255 → .0")
	}
}

func TestSpaceBounds(t *testing.T) {
	tests := []struct {
		r            string
		inner, edges string // "" = no such space
	}{
		{"203.0.113.0/24", "203.0.113.1-203.0.113.254", "203.0.113.0-203.0.113.255"},
		{"203.0.113.0/28", "203.0.113.1-203.0.113.15", "203.0.113.0"},
		{"203.0.113.255-203.0.114.0", "", "203.0.113.255-203.0.114.0"},
		{"203.0.113.10-203.0.113.20", "203.0.113.10-203.0.113.20", ""},
		{"203.0.113.255", "", "203.0.113.255"},
		{"0.0.0.0", "", "0.0.0.0"},
		{"0.0.0.0/0", "0.0.0.1-255.255.255.254", "0.0.0.0-255.255.255.255"},
		{"203.0.113.254-203.0.114.1", "203.0.113.254-203.0.114.1", "203.0.113.255-203.0.114.0"},
	}
	for _, tt := range tests {
		r, err := ParseRange(tt.r)
		if err != nil {
			t.Fatal(err)
		}
		f, l := u128From(r.First).lo, u128From(r.Last).lo
		for _, c := range []struct {
			k    spaceKind
			want string
		}{{spaceV4Inner, tt.inner}, {spaceV4Edge, tt.edges}} {
			lo, hi, ok := c.k.bounds(f, l)
			got := ""
			if ok {
				got = Range{addrFrom(u128{0, lo}, true), addrFrom(u128{0, hi}, true)}.String()
			}
			if got != c.want {
				t.Errorf("%s kind %d: bounds = %q, want %q", tt.r, c.k, got, c.want)
			}
		}
	}
}
