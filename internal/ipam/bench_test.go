package ipam

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// benchPool fills a pool with inUse Services, then measures one churn
// operation per iteration: release a random Service, assign a new one
// (automatic allocation from the default pool) and commit it.
func benchPool(b *testing.B, cidr string, inUse int) {
	a := New(Options{})
	a.SetPool(Pool{Name: "p", Range: mr(cidr), Default: true})
	keys := make([]ServiceKey, inUse)
	for i := range keys {
		s := Service{Key: ServiceKey{"ns", fmt.Sprintf("s%d", i)}}
		got, err := a.Assign(s)
		if err != nil {
			b.Fatal(err)
		}
		a.Commit(s.Key, []netip.Addr{got[0].Addr})
		keys[i] = s.Key
	}
	rng := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := rng.IntN(len(keys))
		a.Release(keys[j])
		s := Service{Key: ServiceKey{"ns", fmt.Sprintf("n%d", i)}}
		got, err := a.Assign(s)
		if err != nil {
			b.Fatal(err)
		}
		a.Commit(s.Key, []netip.Addr{got[0].Addr})
		keys[j] = s.Key
	}
}

// BenchmarkAssignRelease measures assign+release in an IPv4 /16 and in an
// IPv6 /64 at several fill levels; the time per operation stays flat as
// the number of addresses in use grows (O(log n)).
func BenchmarkAssignRelease(b *testing.B) {
	for _, c := range []struct {
		cidr  string
		inUse int
	}{
		{"10.10.0.0/16", 1000},
		{"10.10.0.0/16", 10000},
		{"10.10.0.0/16", 50000},
		{"2001:db8::/64", 1000},
		{"2001:db8::/64", 10000},
		{"2001:db8::/64", 50000},
	} {
		b.Run(fmt.Sprintf("%s/inUse=%d", c.cidr, c.inUse), func(b *testing.B) { benchPool(b, c.cidr, c.inUse) })
	}
}

// BenchmarkPoolStatus measures the Eip status snapshot (1,000 used
// entries) of a /64 with 50,000 addresses in use.
func BenchmarkPoolStatus(b *testing.B) {
	a := New(Options{})
	a.SetPool(Pool{Name: "p", Range: mr("2001:db8::/64"), Default: true})
	for i := 0; i < 50000; i++ {
		s := Service{Key: ServiceKey{"ns", fmt.Sprintf("s%d", i)}}
		if _, err := a.Assign(s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if st, _ := a.PoolStatus("p", 1000); st.Usage != 50000 {
			b.Fatal(st.Usage)
		}
	}
}
