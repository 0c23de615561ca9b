package ipam

import (
	"math"
	"math/bits"
	"net/netip"
)

// u128 is an unsigned 128-bit integer: an IPv6 address, an IPv4 address in
// the low 32 bits, or an index into a pool's address space.
type u128 struct{ hi, lo uint64 }

func (u u128) cmp(v u128) int {
	switch {
	case u.hi < v.hi:
		return -1
	case u.hi > v.hi:
		return 1
	case u.lo < v.lo:
		return -1
	case u.lo > v.lo:
		return 1
	}
	return 0
}

func (u u128) less(v u128) bool { return u.cmp(v) < 0 }

// add1 returns u+1, wrapping at 2^128.
func (u u128) add1() u128 {
	lo, c := bits.Add64(u.lo, 1, 0)
	return u128{u.hi + c, lo}
}

// sub1 returns u-1, wrapping at 0.
func (u u128) sub1() u128 {
	lo, b := bits.Sub64(u.lo, 1, 0)
	return u128{u.hi - b, lo}
}

func (u u128) sub(v u128) u128 {
	lo, b := bits.Sub64(u.lo, v.lo, 0)
	hi, _ := bits.Sub64(u.hi, v.hi, b)
	return u128{hi, lo}
}

func (u u128) isMax() bool { return u.hi == math.MaxUint64 && u.lo == math.MaxUint64 }

// saturatedInt64 returns u, or math.MaxInt64 when u does not fit.
func (u u128) saturatedInt64() int64 {
	if u.hi != 0 || u.lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(u.lo)
}

// float returns u as a float64 (approximate above 2^53).
func (u u128) float() float64 {
	return float64(u.hi)*math.Exp2(64) + float64(u.lo)
}

// u128From returns the integer value of an address (IPv4 in the low bits).
func u128From(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var u u128
	for i := 0; i < 8; i++ {
		u.hi = u.hi<<8 | uint64(b[i])
		u.lo = u.lo<<8 | uint64(b[i+8])
	}
	return u
}

// addrFrom is the inverse of u128From for the given family.
func addrFrom(u u128, v4 bool) netip.Addr {
	if v4 {
		return netip.AddrFrom4([4]byte{byte(u.lo >> 24), byte(u.lo >> 16), byte(u.lo >> 8), byte(u.lo)})
	}
	var b [16]byte
	for i := 7; i >= 0; i-- {
		b[i] = byte(u.hi)
		b[i+8] = byte(u.lo)
		u.hi >>= 8
		u.lo >>= 8
	}
	return netip.AddrFrom16(b)
}
