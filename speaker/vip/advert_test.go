package vip

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestParseAdvert(t *testing.T) {
	v3 := []byte{0x31, 7, 200, 2, 0, 100, 0xab, 0xcd, 203, 0, 113, 20, 203, 0, 113, 21}
	v6 := append([]byte{0x31, 9, 100, 1, 0, 100, 0, 0}, netip.MustParseAddr("2001:db8:ffff::1").AsSlice()...)
	v2 := []byte{0x21, 51, 100, 1, 0, 1, 0, 0, 203, 0, 113, 9, 0, 0, 0, 0, 0, 0, 0, 0}
	tests := []struct {
		name   string
		b      []byte
		family int
		want   Advert
		err    bool
	}{
		{name: "v3 IPv4", b: v3, family: 4, want: Advert{Version: 3, VRID: 7, Priority: 200, Addrs: ips("203.0.113.20", "203.0.113.21")}},
		{name: "v3 IPv6", b: v6, family: 6, want: Advert{Version: 3, VRID: 9, Priority: 100, Addrs: ips("2001:db8:ffff::1")}},
		{name: "v2", b: v2, family: 4, want: Advert{Version: 2, VRID: 51, Priority: 100, Addrs: ips("203.0.113.9")}},
		{name: "short", b: v3[:5], family: 4, err: true},
		{name: "truncated addresses", b: v3[:13], family: 4, err: true},
		{name: "not an advertisement", b: append([]byte{0x32}, v3[1:]...), family: 4, err: true},
		{name: "VRID 0", b: append([]byte{0x31, 0}, v3[2:]...), family: 4, err: true},
		{name: "version 4", b: append([]byte{0x41}, v3[1:]...), family: 4, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAdvert(tc.b, tc.family)
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error %v", err, tc.err)
			}
			if !tc.err && (got.Version != tc.want.Version || got.VRID != tc.want.VRID || got.Priority != tc.want.Priority || !slices.Equal(got.Addrs, tc.want.Addrs)) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestWatch(t *testing.T) {
	var fresh []Foreign
	w := NewWatch(func(f Foreign) { fresh = append(fresh, f) })
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	w.now = func() time.Time { return now }
	node := netip.MustParseAddr("198.51.100.12")
	stranger := netip.MustParseAddr("198.51.100.200")
	linkLocal := netip.MustParseAddr("fe80::1")
	ad := func(vrid int, addrs ...string) Advert {
		return Advert{Version: 3, VRID: vrid, Priority: 100, Addrs: ips(addrs...)}
	}

	w.Observe("eth0", 4, stranger, ad(3, "203.0.113.252"))
	if len(w.Foreign()) != 0 {
		t.Fatal("classified before Known: nothing is known to be ours yet")
	}
	w.Known(map[netip.Addr]bool{node: true}, map[netip.Addr]bool{netip.MustParseAddr("2001:db8:ffff::1"): true, netip.MustParseAddr("203.0.113.20"): true})
	w.Observe("eth0", 4, node, ad(1, "203.0.113.20"))                      // our node
	w.Observe("eth0", 6, linkLocal, ad(1, "2001:db8:ffff::1"))             // ours: our anchor, multicast from a link-local source
	w.Observe("eth0", 4, stranger, ad(3, "203.0.113.250"))                 // foreign
	w.Observe("eth0", 4, stranger, ad(3, "203.0.113.250"))                 // again
	w.Observe("eth1", 4, stranger, ad(3, "203.0.113.20", "203.0.113.251")) // foreign: not only our addresses
	got := w.Foreign()
	if len(got) != 2 || got[0].Interface != "eth0" || got[0].VRID != 3 || got[1].Interface != "eth1" {
		t.Fatalf("foreign %+v", got)
	}
	if len(fresh) != 2 {
		t.Errorf("onNew called %d times, want 2 (once per router)", len(fresh))
	}
	now = now.Add(ForeignTTL + time.Second)
	if got := w.Foreign(); len(got) != 0 {
		t.Errorf("expired routers listed: %+v", got)
	}
}
