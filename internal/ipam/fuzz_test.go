package ipam

import (
	"net/netip"
	"testing"
)

// FuzzParseRange checks that every accepted Eip address is a well-formed
// range of one family whose String() parses back to the same range. Seed
// corpus: testdata/fuzz/FuzzParseRange.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"203.0.113.10", "203.0.113.0/28", "203.0.113.10-203.0.113.20", "2001:db8::/64", "::/0", "1-2-3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			return
		}
		if !r.First.IsValid() || !r.Last.IsValid() || r.First.Is4() != r.Last.Is4() {
			t.Fatalf("ParseRange(%q) = %v: invalid ends", s, r)
		}
		if r.Last.Less(r.First) {
			t.Fatalf("ParseRange(%q) = %v: reversed", s, r)
		}
		if r.Size() < 1 {
			t.Fatalf("ParseRange(%q): size %d", s, r.Size())
		}
		back, err := ParseRange(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRange(%q).String() = %q parses to %v, %v", s, r.String(), back, err)
		}
		if !r.Contains(r.First) || !r.Contains(r.Last) {
			t.Fatalf("%v does not contain its ends", r)
		}
	})
}

// FuzzParseAddrList checks the requested-addresses annotation parser: at
// most one address per family, no zones, no IPv4-mapped IPv6.
func FuzzParseAddrList(f *testing.F) {
	for _, s := range []string{"203.0.113.5", "203.0.113.5,2001:db8::5", " 2001:db8::5 , 203.0.113.5", "a,b", ",", "::ffff:1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addrs, err := ParseAddrList(s)
		if err != nil {
			return
		}
		if len(addrs) == 0 || len(addrs) > 2 {
			t.Fatalf("ParseAddrList(%q) = %v", s, addrs)
		}
		if len(addrs) == 2 && addrs[0].Is4() == addrs[1].Is4() {
			t.Fatalf("ParseAddrList(%q) = %v: two of one family", s, addrs)
		}
		for _, a := range addrs {
			if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
				t.Fatalf("ParseAddrList(%q) accepted %v", s, a)
			}
			if _, err := netip.ParseAddr(a.String()); err != nil {
				t.Fatalf("%v does not round-trip", a)
			}
		}
	})
}

// FuzzParseNameList checks the Eip-name annotation parser.
func FuzzParseNameList(f *testing.F) {
	for _, s := range []string{"eip-pool", "eip-v4,eip-v6", "a,,b", "A", "a.b-c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		names, err := ParseNameList(s)
		if err != nil {
			return
		}
		if len(names) == 0 || len(names) > 2 {
			t.Fatalf("ParseNameList(%q) = %v", s, names)
		}
		for _, n := range names {
			if checkName(n) != nil {
				t.Fatalf("ParseNameList(%q) accepted %q", s, n)
			}
		}
	})
}
