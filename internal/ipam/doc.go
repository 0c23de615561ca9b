// Package ipam is the pure Eip allocator of the controller role: it parses
// Eip addresses, chooses a pool for a Service, hands out addresses, decides
// whether two Services may share one, and rebuilds its state from the
// allocations recorded on Services. It knows nothing about Kubernetes
// clients; the glue lives in controllers/ipam and internal/ipam/kube.
//
// Data structures and costs (n = addresses in use, P = pools):
//
//   - A pool is an inclusive range of one family, stored as 128-bit
//     integers, so IPv6 pools of any size (a /64, even ::/0) are never
//     enumerated and never overflow.
//   - Free addresses of a pool are a set of disjoint free spans kept in a
//     B-tree ordered by start. The lowest free address is the first span's
//     start: O(log n). Taking or freeing a given address splits or merges
//     spans: O(log n).
//   - IPv4 addresses ending in .0 or .255 live in a second index space of
//     the same pool (dense numbering of only those addresses), so "hand
//     them out only when nothing else is free" is the same O(log n) lookup
//     in the first space, then in the second.
//   - Addresses in use are a hash map (address → holders), O(1), plus a
//     per-pool sorted B-tree for ordered status listings.
//   - A taken address is removed from every pool whose range contains it
//     (O(P log n)); overlapping pools are a misconfiguration the webhook
//     refuses, and the later of two overlapping pools gets no new
//     allocations.
//
// The Allocator is safe for concurrent use; every operation holds one mutex,
// which serialises allocation as the design requires.
package ipam
