package election

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"testing"
)

// reference ranks by the hex of sha256(node#key), computed independently of
// the package code.
func reference(key string, nodes []string) []string {
	out := slices.Clone(nodes)
	h := func(n string) string {
		s := sha256.Sum256([]byte(n + "#" + key))
		return hex.EncodeToString(s[:])
	}
	sort.Slice(out, func(i, j int) bool { return h(out[i]) < h(out[j]) })
	return out
}

func TestRank(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		nodes []string
		want  []string
	}{
		{name: "empty", key: "203.0.113.20", nodes: nil, want: []string{}},
		{name: "one node", key: "203.0.113.20", nodes: []string{"node1"}, want: []string{"node1"}},
		{name: "duplicates removed", key: "203.0.113.20", nodes: []string{"node1", "node1"}, want: []string{"node1"}},
		{name: "three nodes ipv4", key: "203.0.113.20", nodes: []string{"node1", "node2", "node3"},
			want: reference("203.0.113.20", []string{"node1", "node2", "node3"})},
		{name: "three nodes ipv6", key: "2001:db8::20", nodes: []string{"node3", "node1", "node2"},
			want: reference("2001:db8::20", []string{"node1", "node2", "node3"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.nodes)
			got := Rank(tt.key, tt.nodes)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Rank(%q, %v) = %v, want %v", tt.key, tt.nodes, got, tt.want)
			}
			if !slices.Equal(in, tt.nodes) {
				t.Fatalf("Rank modified its input: %v -> %v", in, tt.nodes)
			}
			w, ok := Winner(tt.key, tt.nodes)
			if ok != (len(tt.want) > 0) || (ok && w != tt.want[0]) {
				t.Fatalf("Winner = %q, %v; want first of %v", w, ok, tt.want)
			}
		})
	}
}

// TestRankIndependentOfOrder: every speaker lists nodes in its own order and
// must still reach the same decision.
func TestRankIndependentOfOrder(t *testing.T) {
	nodes := []string{"a", "b", "c", "d", "e"}
	want := Rank("203.0.113.7", nodes)
	for i := 0; i < 20; i++ {
		perm := slices.Clone(nodes)
		for j := range perm {
			k := (j*7 + i) % len(perm)
			perm[j], perm[k] = perm[k], perm[j]
		}
		if got := Rank("203.0.113.7", perm); !slices.Equal(got, want) {
			t.Fatalf("order %v gives %v, want %v", perm, got, want)
		}
	}
}

func addresses(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("203.0.%d.%d", 113+i/256, i%256)
	}
	return out
}

func winners(addrs, nodes []string) map[string]string {
	out := make(map[string]string, len(addrs))
	for _, a := range addrs {
		if w, ok := Winner(a, nodes); ok {
			out[a] = w
		}
	}
	return out
}

func without(nodes []string, n string) []string {
	return slices.DeleteFunc(slices.Clone(nodes), func(s string) bool { return s == n })
}

// TestStickiness is the documented stance behind lab scenarios (i) and (j):
// a node leaving moves only its own addresses, each to its successor; the
// node returning moves exactly those back; a rolling restart of every
// speaker ends with the initial announcers.
func TestStickiness(t *testing.T) {
	nodes := []string{"node1", "node2", "node3", "node4"}
	addrs := addresses(500)
	initial := winners(addrs, nodes)
	for _, gone := range nodes {
		during := winners(addrs, without(nodes, gone))
		for _, a := range addrs {
			switch {
			case initial[a] != gone && during[a] != initial[a]:
				t.Fatalf("%s left: %s moved from %s to %s although its announcer stayed", gone, a, initial[a], during[a])
			case initial[a] == gone && during[a] != Rank(a, nodes)[1]:
				t.Fatalf("%s left: %s went to %s, want its successor %s", gone, a, during[a], Rank(a, nodes)[1])
			}
		}
		after := winners(addrs, nodes)
		for _, a := range addrs {
			if after[a] != initial[a] {
				t.Fatalf("%s returned: %s announced by %s, was %s", gone, a, after[a], initial[a])
			}
		}
	}
}

// TestSpread: addresses spread over nodes (statistically, like MetalLB).
func TestSpread(t *testing.T) {
	nodes := []string{"node1", "node2", "node3"}
	count := map[string]int{}
	for _, w := range winners(addresses(3000), nodes) {
		count[w]++
	}
	for _, n := range nodes {
		if count[n] < 850 || count[n] > 1150 {
			t.Fatalf("node %s wins %d of 3000 addresses, want about 1000: %v", n, count[n], count)
		}
	}
}

func BenchmarkRank3(b *testing.B) {
	nodes := []string{"node1", "node2", "node3"}
	for i := 0; i < b.N; i++ {
		Rank("203.0.113.20", nodes)
	}
}
