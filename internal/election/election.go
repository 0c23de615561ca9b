// Package election ranks nodes for an address deterministically: every
// speaker that sees the same eligible nodes computes the same order, without
// talking to the others or to the API server.
//
// The ranking is rendezvous (highest-random-weight) hashing, as MetalLB and
// OpenELB use it: a node's score for an address is sha256(node + "#" + key)
// and nodes are ordered by score, lowest first. The first node of the order
// announces a layer2 address; later nodes are its successors.
//
// Stickiness: the score of a (node, address) pair depends on nothing else,
// so adding or removing one node changes the winner only of the addresses
// that node wins (or would win): when a node leaves, only its own addresses
// move (each to its own successor); when it returns, exactly those addresses
// move back and every other address keeps its announcer. A speaker restart
// therefore ends with the same announcers as before it, and the choice never
// depends on history, start order or timing. The package is pure: no
// client-go, no kernel calls.
package election

import (
	"bytes"
	"crypto/sha256"
	"slices"
)

// Score is the rendezvous score of node for key: sha256(node + "#" + key).
func Score(node, key string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(node))
	h.Write([]byte{'#'})
	h.Write([]byte(key))
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return s
}

// Rank returns the nodes ordered for key, best first, as a new slice; the
// input is not modified. Duplicate names are removed. Ties (only possible
// for identical names) are impossible after deduplication, so the order is
// total and identical on every speaker. Rank runs in O(n log n) for n nodes.
func Rank(key string, nodes []string) []string {
	type scored struct {
		name  string
		score [sha256.Size]byte
	}
	s := make([]scored, 0, len(nodes))
	seen := make(map[string]struct{}, len(nodes))
	for _, n := range nodes {
		if _, dup := seen[n]; dup {
			continue
		}
		seen[n] = struct{}{}
		s = append(s, scored{name: n, score: Score(n, key)})
	}
	slices.SortFunc(s, func(a, b scored) int {
		if c := bytes.Compare(a.score[:], b.score[:]); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.name), []byte(b.name))
	})
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].name
	}
	return out
}

// Winner returns the first node of Rank(key, nodes), and false when nodes is
// empty. It runs in O(n) without sorting.
func Winner(key string, nodes []string) (string, bool) {
	var (
		best  string
		bestS [sha256.Size]byte
		found bool
	)
	for _, n := range nodes {
		s := Score(n, key)
		if !found || bytes.Compare(s[:], bestS[:]) < 0 || (s == bestS && n < best) {
			best, bestS, found = n, s, true
		}
	}
	return best, found
}
