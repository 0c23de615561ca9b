package ipam

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		first     string
		last      string
		size      int64
		wantErr   string
		wantFamil Family
	}{
		{name: "single IPv4", in: "203.0.113.10", first: "203.0.113.10", last: "203.0.113.10", size: 1, wantFamil: IPv4},
		{name: "IPv4 /28 counts network and broadcast", in: "203.0.113.0/28", first: "203.0.113.0", last: "203.0.113.15", size: 16, wantFamil: IPv4},
		{name: "IPv4 /24 (OpenELB Add Eip)", in: "192.168.1.0/24", first: "192.168.1.0", last: "192.168.1.255", size: 256, wantFamil: IPv4},
		{name: "CIDR host bits are ignored", in: "203.0.113.5/28", first: "203.0.113.0", last: "203.0.113.15", size: 16, wantFamil: IPv4},
		{name: "IPv4 /32", in: "203.0.113.7/32", first: "203.0.113.7", last: "203.0.113.7", size: 1, wantFamil: IPv4},
		{name: "IPv4 /0", in: "0.0.0.0/0", first: "0.0.0.0", last: "255.255.255.255", size: 1 << 32, wantFamil: IPv4},
		{name: "IPv4 range", in: "192.168.1.240-192.168.1.250", first: "192.168.1.240", last: "192.168.1.250", size: 11, wantFamil: IPv4},
		{name: "range of one address", in: "203.0.113.9-203.0.113.9", first: "203.0.113.9", last: "203.0.113.9", size: 1, wantFamil: IPv4},
		{name: "IPv6 /120", in: "2001:0db8::0/120", first: "2001:db8::", last: "2001:db8::ff", size: 256, wantFamil: IPv6},
		{name: "IPv6 /64 saturates poolSize", in: "2001:db8:1::/64", first: "2001:db8:1::", last: "2001:db8:1:0:ffff:ffff:ffff:ffff", size: math.MaxInt64, wantFamil: IPv6},
		{name: "IPv6 /65 is 2^63, one above MaxInt64", in: "2001:db8:1::/65", first: "2001:db8:1::", last: "2001:db8:1:0:7fff:ffff:ffff:ffff", size: math.MaxInt64, wantFamil: IPv6},
		{name: "IPv6 /66", in: "2001:db8:1::/66", first: "2001:db8:1::", last: "2001:db8:1:0:3fff:ffff:ffff:ffff", size: 1 << 62, wantFamil: IPv6},
		{name: "IPv6 /1 saturates", in: "8000::/1", first: "8000::", last: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", size: math.MaxInt64, wantFamil: IPv6},
		{name: "IPv6 just below the IPv4-mapped block", in: "::1-::fffe:ffff:ffff", first: "::1", last: "::fffe:ffff:ffff", size: 1<<48 - 1<<32 - 1, wantFamil: IPv6},
		{name: "IPv6 just above the IPv4-mapped block", in: "::1:0:0:0/112", first: "::1:0:0:0", last: "::1:0:0:ffff", size: 1 << 16, wantFamil: IPv6},
		{name: "IPv6 /8", in: "2000::/8", first: "2000::", last: "20ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", size: math.MaxInt64, wantFamil: IPv6},
		{name: "IPv6 range", in: "2001:db8::10-2001:db8::1f", first: "2001:db8::10", last: "2001:db8::1f", size: 16, wantFamil: IPv6},
		{name: "empty", in: "", wantErr: "empty address"},
		{name: "garbage", in: "foo", wantErr: "invalid eip address format"},
		{name: "reversed range", in: "203.0.113.20-203.0.113.10", wantErr: "reversed"},
		{name: "three-part range", in: "203.0.113.1-203.0.113.2-203.0.113.3", wantErr: "exactly two ends"},
		{name: "mixed families", in: "203.0.113.1-2001:db8::1", wantErr: "mixes IPv4 and IPv6"},
		{name: "bad prefix", in: "203.0.113.0/33", wantErr: "not a CIDR"},
		{name: "zone", in: "fe80::1%eth0", wantErr: "zones"},
		{name: "IPv4-mapped IPv6", in: "::ffff:203.0.113.1", wantErr: "IPv4-mapped"},
		{name: "IPv6 /0 covers IPv4-mapped", in: "::/0", wantErr: "IPv4-mapped"},
		{name: "IPv6 /80 covers IPv4-mapped (fuzz find)", in: "::/80", wantErr: "IPv4-mapped"},
		{name: "IPv6 /96 is the IPv4-mapped block", in: "0:0:0:0:0:ffff::/96", wantErr: "IPv4-mapped"},
		{name: "IPv6 range across IPv4-mapped", in: "::1-::1:0:0:0", wantErr: "IPv4-mapped"},
		{name: "spaces", in: " 203.0.113.1", wantErr: "invalid eip address format"},
		{name: "leading zeros", in: "203.0.113.01", wantErr: "invalid eip address format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRange(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidAddress) {
					t.Fatalf("ParseRange(%q) = %v, %v; want error containing %q", tt.in, r, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRange(%q): %v", tt.in, err)
			}
			if r.First.String() != tt.first || r.Last.String() != tt.last {
				t.Errorf("ParseRange(%q) = %s..%s, want %s..%s", tt.in, r.First, r.Last, tt.first, tt.last)
			}
			if got := r.Size(); got != tt.size {
				t.Errorf("Size() = %d, want %d", got, tt.size)
			}
			if r.Family() != tt.wantFamil {
				t.Errorf("Family() = %s, want %s", r.Family(), tt.wantFamil)
			}
		})
	}
}

func TestRangeSizeFloat(t *testing.T) {
	for in, want := range map[string]float64{
		"203.0.113.0/24":           256,
		"2001:db8::/64":            math.Exp2(64),
		"2001:db8::/127":           2,
		"203.0.113.4":              1,
		"8000::/1":                 math.Exp2(127),
		"0.0.0.0/0":                math.Exp2(32),
		"2001:db8::/32":            math.Exp2(96),
		"2001:db8::/96":            math.Exp2(32),
		"2001:db8::/63":            math.Exp2(65),
		"2001:db8::1-2001:db8::10": 16,
	} {
		r, err := ParseRange(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.SizeFloat(); got != want {
			t.Errorf("%s: SizeFloat() = %g, want %g", in, got, want)
		}
	}
	// The whole IPv6 space cannot be parsed (it covers IPv4-mapped
	// addresses) but SizeFloat must still not overflow on it.
	all := Range{First: netip.MustParseAddr("::"), Last: netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")}
	if got := all.SizeFloat(); got != math.Exp2(128) {
		t.Errorf("::/0: SizeFloat() = %g, want 2^128", got)
	}
}

func TestRangeRelations(t *testing.T) {
	mr := func(s string) Range {
		r, err := ParseRange(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		a, b     string
		overlaps bool
		covers   bool
	}{
		{"203.0.113.0/24", "203.0.113.10-203.0.113.20", true, true},
		{"203.0.113.0/28", "203.0.113.15-203.0.113.20", true, false},
		{"203.0.113.0/28", "203.0.113.16-203.0.113.20", false, false},
		{"203.0.113.16-203.0.113.20", "203.0.113.0/28", false, false},
		{"2001:db8::/64", "2001:db8::5", true, true},
		{"2001:db8::/64", "203.0.113.5", false, false},
		{"8000::/1", "0.0.0.0/0", false, false},
		{"203.0.113.5", "203.0.113.5", true, true},
	}
	for _, tt := range tests {
		a, b := mr(tt.a), mr(tt.b)
		if got := a.Overlaps(b); got != tt.overlaps {
			t.Errorf("%s overlaps %s = %v, want %v", tt.a, tt.b, got, tt.overlaps)
		}
		if got := b.Overlaps(a); got != tt.overlaps {
			t.Errorf("%s overlaps %s = %v, want %v (symmetric)", tt.b, tt.a, got, tt.overlaps)
		}
		if got := a.Covers(b); got != tt.covers {
			t.Errorf("%s covers %s = %v, want %v", tt.a, tt.b, got, tt.covers)
		}
	}
	if mr("203.0.113.0/24").Contains(netip.MustParseAddr("2001:db8::1")) {
		t.Error("an IPv4 range contains an IPv6 address")
	}
	if mr("203.0.113.0/24").Contains(netip.Addr{}) {
		t.Error("a range contains the zero Addr")
	}
	if got := mr("203.0.113.0/30").String(); got != "203.0.113.0-203.0.113.3" {
		t.Errorf("String() = %q", got)
	}
}

func TestParseAddrList(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "203.0.113.5", want: []string{"203.0.113.5"}},
		{in: "203.0.113.5, 2001:db8::5", want: []string{"203.0.113.5", "2001:db8::5"}},
		{in: " 2001:db8::5 ,203.0.113.5 ", want: []string{"2001:db8::5", "203.0.113.5"}},
		{in: "203.0.113.5,203.0.113.6", wantErr: "two IPv4 addresses"},
		{in: "203.0.113.5,2001:db8::5,203.0.113.6", wantErr: "at most two"},
		{in: "", wantErr: "not an IP address"},
		{in: "203.0.113.5,", wantErr: "not an IP address"},
		{in: "203.0.113.0/24", wantErr: "not an IP address"},
		{in: "::ffff:1.2.3.4", wantErr: "IPv4-mapped"},
	}
	for _, tt := range tests {
		got, err := ParseAddrList(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidAnnotation) {
				t.Errorf("ParseAddrList(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseAddrList(%q): %v", tt.in, err)
			continue
		}
		var s []string
		for _, a := range got {
			s = append(s, a.String())
		}
		if strings.Join(s, ",") != strings.Join(tt.want, ",") {
			t.Errorf("ParseAddrList(%q) = %v, want %v", tt.in, s, tt.want)
		}
	}
}

func TestParseNameList(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "eip-pool", want: "eip-pool"},
		{in: "eip-v4, eip-v6", want: "eip-v4,eip-v6"},
		{in: "a.b", want: "a.b"},
		{in: "", wantErr: "empty Eip name"},
		{in: "a,", wantErr: "empty Eip name"},
		{in: "a,a", wantErr: "twice"},
		{in: "a,b,c", wantErr: "at most two"},
		{in: "Eip", wantErr: "not a valid Eip name"},
		{in: "-eip", wantErr: "must start and end"},
		{in: "eip_1", wantErr: "not a valid Eip name"},
		{in: strings.Repeat("a", 254), wantErr: "longer than 253"},
	}
	for _, tt := range tests {
		got, err := ParseNameList(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseNameList(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != tt.want {
			t.Errorf("ParseNameList(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}
