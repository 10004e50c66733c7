// Package ipam holds Neutron's address arithmetic as pure functions: parsing
// and validating subnet input (cidr, gateway, allocation pools, host routes,
// nameservers, MACs), computing default pools, picking free addresses,
// EUI-64 addresses, random MACs and subnet pool prefix allocation.
//
// Nothing here touches a database. Client mistakes come back as *fault.Error
// carrying Neutron's exception type and message. Two kinds exist, as in
// Neutron: attribute validator failures (neutron-lib validate_*; 400
// HTTPBadRequest whose message is the bare reason, wrapping
// ErrInvalidValue; ForAttr words them for an attribute) and plugin checks
// (InvalidInput, InvalidAllocationPool, OverlappingAllocationPools, ...).
//
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are IPv6, as in netaddr: they
// are never unmapped, so an IPv4 subnet does not contain them.
package ipam

import (
	"math/big"
	"math/bits"
	"net/netip"
	"slices"
)

// u128 is an address as a 128-bit unsigned number. IPv4 addresses use the
// low 32 bits, so arithmetic is the same for both families.
type u128 struct{ hi, lo uint64 }

var maxU128 = u128{^uint64(0), ^uint64(0)}

func toU(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var u u128
	for i := range 8 {
		u.hi = u.hi<<8 | uint64(b[i])
		u.lo = u.lo<<8 | uint64(b[8+i])
	}
	return u
}

func fromU(u u128, is4 bool) netip.Addr {
	if is4 {
		v := uint32(u.lo)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	var b [16]byte
	for i := range 8 {
		b[7-i] = byte(u.hi >> (8 * i))
		b[15-i] = byte(u.lo >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

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

func (u u128) add(v u128) (u128, bool) {
	lo, c := bits.Add64(u.lo, v.lo, 0)
	hi, c := bits.Add64(u.hi, v.hi, c)
	return u128{hi, lo}, c != 0
}

func (u u128) sub(v u128) u128 {
	lo, b := bits.Sub64(u.lo, v.lo, 0)
	hi, _ := bits.Sub64(u.hi, v.hi, b)
	return u128{hi, lo}
}

func (u u128) addOne() (u128, bool) { return u.add(u128{lo: 1}) }
func (u u128) subOne() u128         { return u.sub(u128{lo: 1}) }

func (u u128) isZero() bool { return u.hi == 0 && u.lo == 0 }

// trailingZeros counts trailing zero bits, 128 for zero.
func (u u128) trailingZeros() int {
	if u.lo != 0 {
		return bits.TrailingZeros64(u.lo)
	}
	if u.hi != 0 {
		return 64 + bits.TrailingZeros64(u.hi)
	}
	return 128
}

// bitLen is the number of bits needed to hold u.
func (u u128) bitLen() int {
	if u.hi != 0 {
		return 64 + bits.Len64(u.hi)
	}
	return bits.Len64(u.lo)
}

// pow2 returns 2**k for k < 128.
func pow2(k int) u128 {
	if k >= 64 {
		return u128{hi: 1 << (k - 64)}
	}
	return u128{lo: 1 << k}
}

func (u u128) big() *big.Int {
	n := new(big.Int).SetUint64(u.hi)
	n.Lsh(n, 64)
	return n.Or(n, new(big.Int).SetUint64(u.lo))
}

// width is the address width in bits of a's family.
func width(a netip.Addr) int {
	if a.Is4() {
		return 32
	}
	return 128
}

// span is an inclusive run of addresses of one family, as numbers.
type span struct{ lo, hi u128 }

// prefixSpan returns the first and last address of p (masked).
func prefixSpan(p netip.Prefix) span {
	p = p.Masked()
	lo := toU(p.Addr())
	host := width(p.Addr()) - p.Bits()
	if host == 0 {
		return span{lo, lo}
	}
	var mask u128
	if host == 128 {
		mask = maxU128
	} else {
		mask = pow2(host).subOne()
	}
	return span{lo, u128{lo.hi | mask.hi, lo.lo | mask.lo}}
}

// lastAddr is the last address of p, the IPv4 broadcast address.
func lastAddr(p netip.Prefix) netip.Addr {
	return fromU(prefixSpan(p).hi, p.Addr().Is4())
}

// sortSpans orders spans by start.
func sortSpans(s []span) {
	slices.SortFunc(s, func(a, b span) int { return a.lo.cmp(b.lo) })
}

// mergeSpans sorts s and merges overlapping and adjacent spans in place.
func mergeSpans(s []span) []span {
	if len(s) < 2 {
		return s
	}
	sortSpans(s)
	out := s[:1]
	for _, v := range s[1:] {
		last := &out[len(out)-1]
		next, over := last.hi.addOne()
		if over || v.lo.cmp(next) <= 0 {
			if v.hi.cmp(last.hi) > 0 {
				last.hi = v.hi
			}
			continue
		}
		out = append(out, v)
	}
	return out
}

// subtractSpans returns a minus b; both must be merged (sorted, disjoint).
func subtractSpans(a, b []span) []span {
	var out []span
	j := 0
	for _, s := range a {
		lo := s.lo
		done := false
		for j < len(b) && b[j].hi.cmp(lo) < 0 {
			j++
		}
		for k := j; k < len(b) && b[k].lo.cmp(s.hi) <= 0; k++ {
			if b[k].lo.cmp(lo) > 0 {
				out = append(out, span{lo, b[k].lo.subOne()})
			}
			next, over := b[k].hi.addOne()
			if over || next.cmp(s.hi) > 0 {
				done = true
				break
			}
			if next.cmp(lo) > 0 {
				lo = next
			}
		}
		if !done {
			out = append(out, span{lo, s.hi})
		}
	}
	return out
}

// appendCIDRs appends the fewest prefixes exactly covering s.
func appendCIDRs(dst []netip.Prefix, s span, is4 bool) []netip.Prefix {
	w := 128
	if is4 {
		w = 32
	}
	lo := s.lo
	for {
		k := min(lo.trailingZeros(), w)
		n, over := s.hi.sub(lo).addOne() // addresses left
		if !over {
			k = min(k, n.bitLen()-1)
		}
		dst = append(dst, netip.PrefixFrom(fromU(lo, is4), w-k))
		if k == 128 {
			return dst
		}
		next, over := lo.add(pow2(k))
		if over || next.cmp(s.hi) > 0 {
			return dst
		}
		lo = next
	}
}
