package ipam

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
)

// Family is an IP address family.
type Family uint8

// The address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String returns "IPv4" or "IPv6", the spelling of Service.spec.ipFamilies.
func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

// FamilyOf returns the family of a valid address.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// ErrInvalidAddress marks an Eip address that cannot be parsed.
var ErrInvalidAddress = errors.New("invalid eip address format")

// ErrInvalidAnnotation marks a Service annotation or field that cannot be
// parsed.
var ErrInvalidAnnotation = errors.New("invalid annotation")

// Range is an inclusive range of addresses of one family.
type Range struct {
	First, Last netip.Addr
}

// ParseRange parses an Eip spec.address: a single IP ("203.0.113.10"), a
// CIDR ("203.0.113.0/28"; host bits are ignored and every address of the
// prefix is in the range, network and broadcast included, as in OpenELB) or
// an inclusive range of one family ("203.0.113.10-203.0.113.20"). Errors
// wrap ErrInvalidAddress and say what is wrong.
func ParseRange(s string) (Range, error) {
	if s == "" {
		return Range{}, fmt.Errorf("%w: empty address", ErrInvalidAddress)
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Range{}, fmt.Errorf("%w: %q is not a CIDR: %v", ErrInvalidAddress, s, err)
		}
		if err := checkAddr(p.Addr()); err != nil {
			return Range{}, fmt.Errorf("%w: %q: %v", ErrInvalidAddress, s, err)
		}
		p = p.Masked()
		first := u128From(p.Addr())
		bitsLen := p.Addr().BitLen()
		hostBits := bitsLen - p.Bits()
		last := first
		// Set the host bits.
		switch {
		case hostBits >= 128:
			last = u128{^uint64(0), ^uint64(0)}
		case hostBits >= 64:
			last.lo = ^uint64(0)
			last.hi |= (uint64(1) << (hostBits - 64)) - 1
		case hostBits > 0:
			last.lo |= (uint64(1) << hostBits) - 1
		}
		return checkMapped(s, Range{First: p.Addr(), Last: addrFrom(last, p.Addr().Is4())})
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		if strings.Count(s, "-") != 1 {
			return Range{}, fmt.Errorf("%w: %q: a range has exactly two ends (first-last)", ErrInvalidAddress, s)
		}
		first, err := parseOne(s[:i])
		if err != nil {
			return Range{}, fmt.Errorf("%w: %q: first address: %v", ErrInvalidAddress, s, err)
		}
		last, err := parseOne(s[i+1:])
		if err != nil {
			return Range{}, fmt.Errorf("%w: %q: last address: %v", ErrInvalidAddress, s, err)
		}
		if first.Is4() != last.Is4() {
			return Range{}, fmt.Errorf("%w: %q mixes IPv4 and IPv6", ErrInvalidAddress, s)
		}
		if last.Less(first) {
			return Range{}, fmt.Errorf("%w: %q is reversed: %s comes after %s", ErrInvalidAddress, s, first, last)
		}
		return checkMapped(s, Range{First: first, Last: last})
	}
	a, err := parseOne(s)
	if err != nil {
		return Range{}, fmt.Errorf("%w: %q: %v", ErrInvalidAddress, s, err)
	}
	return Range{First: a, Last: a}, nil
}

// mappedBlock is ::ffff:0:0/96, the IPv4-mapped IPv6 addresses. No pool
// may hand them out: they would be announced and shown as IPv4 by most
// tools, and ParseRange refuses them as range ends.
var mappedBlock = Range{
	First: netip.MustParseAddr("::ffff:0.0.0.0"),
	Last:  netip.MustParseAddr("::ffff:255.255.255.255"),
}

// checkMapped refuses an IPv6 range that covers IPv4-mapped addresses
// (for example "::/80" or "::/0").
func checkMapped(s string, r Range) (Range, error) {
	if r.Overlaps(mappedBlock) {
		return Range{}, fmt.Errorf("%w: %q overlaps ::ffff:0:0/96 (IPv4-mapped IPv6 addresses), which cannot be allocated; write IPv4 pools as IPv4 and keep IPv6 pools out of that block", ErrInvalidAddress, s)
	}
	return r, nil
}

func parseOne(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return a, checkAddr(a)
}

func checkAddr(a netip.Addr) error {
	if a.Zone() != "" {
		return fmt.Errorf("%s: zones are not allowed", a)
	}
	if a.Is4In6() {
		return fmt.Errorf("%s: IPv4-mapped IPv6 addresses are not allowed, write the IPv4 address", a)
	}
	return nil
}

// Family returns the range's family.
func (r Range) Family() Family { return FamilyOf(r.First) }

// Contains reports whether a lies in the range.
func (r Range) Contains(a netip.Addr) bool {
	return a.IsValid() && a.Is4() == r.First.Is4() && !a.Less(r.First) && !r.Last.Less(a)
}

// Overlaps reports whether two ranges share an address.
func (r Range) Overlaps(o Range) bool {
	return r.First.Is4() == o.First.Is4() && !r.Last.Less(o.First) && !o.Last.Less(r.First)
}

// Covers reports whether o lies entirely inside r.
func (r Range) Covers(o Range) bool { return r.Contains(o.First) && r.Contains(o.Last) }

// String returns "first-last", or the single address.
func (r Range) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

// size returns the number of addresses; ok is false when it is 2^128.
func (r Range) size() (n u128, ok bool) {
	d := u128From(r.Last).sub(u128From(r.First))
	if d.isMax() {
		return d, false
	}
	return d.add1(), true
}

// Size returns the number of addresses in the range, network and broadcast
// addresses included, saturated at math.MaxInt64 (9223372036854775807):
// an IPv6 /65 or larger reports that value. This is the Eip's poolSize.
func (r Range) Size() int64 {
	n, ok := r.size()
	if !ok {
		return maxInt64
	}
	return n.saturatedInt64()
}

// SizeFloat returns the number of addresses as a float64 (for metrics;
// exact up to 2^53, approximate above).
func (r Range) SizeFloat() float64 {
	n, ok := r.size()
	if !ok {
		return math.Exp2(128)
	}
	return n.float()
}

const maxInt64 = 1<<63 - 1

// ParseAddr parses one requested address (surrounding spaces allowed).
// Errors wrap ErrInvalidAnnotation.
func ParseAddr(s string) (netip.Addr, error) {
	a, err := parseOne(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %q is not an IP address: %v", ErrInvalidAnnotation, s, err)
	}
	return a, nil
}

// ParseAddrList parses a comma separated list of requested addresses, at
// most one per family (the dual-stack annotation). Errors wrap
// ErrInvalidAnnotation.
func ParseAddrList(s string) ([]netip.Addr, error) {
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		return nil, fmt.Errorf("%w: %q: at most two addresses, one IPv4 and one IPv6", ErrInvalidAnnotation, s)
	}
	out := make([]netip.Addr, 0, len(parts))
	for _, p := range parts {
		a, err := ParseAddr(p)
		if err != nil {
			return nil, err
		}
		for _, b := range out {
			if b.Is4() == a.Is4() {
				return nil, fmt.Errorf("%w: %q: two %s addresses, at most one per family", ErrInvalidAnnotation, s, FamilyOf(a))
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// ParseNameList parses a comma separated list of Eip names (one per family
// for dual-stack, so at most two). Errors wrap ErrInvalidAnnotation.
func ParseNameList(s string) ([]string, error) {
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		return nil, fmt.Errorf("%w: %q: at most two Eip names, one per family", ErrInvalidAnnotation, s)
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if err := checkName(p); err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrInvalidAnnotation, s, err)
		}
		for _, q := range out {
			if q == p {
				return nil, fmt.Errorf("%w: %q names Eip %s twice", ErrInvalidAnnotation, s, p)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// checkName accepts a Kubernetes object name (DNS-1123 subdomain).
func checkName(s string) error {
	if s == "" {
		return errors.New("empty Eip name")
	}
	if len(s) > 253 {
		return errors.New("Eip name longer than 253 characters")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '-' && c != '.' {
			return fmt.Errorf("%q is not a valid Eip name (lower case letters, digits, '-' and '.')", s)
		}
		if (i == 0 || i == len(s)-1) && !alnum {
			return fmt.Errorf("%q is not a valid Eip name (must start and end with a letter or digit)", s)
		}
	}
	return nil
}
