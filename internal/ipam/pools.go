package ipam

import (
	"math/big"
	"net/netip"

	"muon/internal/fault"
)

// Range is an inclusive run of addresses, the shape of one entry of a
// subnet's allocation_pools ({"start": ..., "end": ...} in JSON).
type Range struct {
	Start netip.Addr `json:"start"`
	End   netip.Addr `json:"end"`
}

// String formats r as netaddr's IPRange does: "10.0.0.2-10.0.0.254".
func (r Range) String() string { return r.Start.String() + "-" + r.End.String() }

// Valid reports whether both ends are set, of one family, and Start <= End.
func (r Range) Valid() bool {
	return r.Start.IsValid() && r.Start.BitLen() == r.End.BitLen() && r.Start.Compare(r.End) <= 0
}

// Contains reports whether ip lies in r.
func (r Range) Contains(ip netip.Addr) bool {
	return r.Valid() && ip.BitLen() == r.Start.BitLen() &&
		r.Start.Compare(ip) <= 0 && ip.Compare(r.End) <= 0
}

// Size is the number of addresses in r, 0 if r is not Valid.
func (r Range) Size() *big.Int {
	if !r.Valid() {
		return new(big.Int)
	}
	n, _ := r.span().hi.sub(r.span().lo).addOne()
	if n.isZero() { // the whole IPv6 space
		return new(big.Int).Lsh(big.NewInt(1), 128)
	}
	return n.big()
}

func (r Range) span() span { return span{toU(r.Start), toU(r.End)} }

// poolRepr formats a pool as the Python dict Neutron echoes in
// InvalidAllocationPool when the range could not even be built.
func poolRepr(start, end string) string {
	return "{'start': '" + start + "', 'end': '" + end + "'}"
}

// ParsePool parses one allocation pool. Each end must be an IP address
// (InvalidInput, as validate_ip_pools); the ends must be of one family and
// in order (InvalidAllocationPool, 400).
func ParsePool(start, end string) (Range, error) {
	s, err := ParseIP(start)
	if err != nil {
		return Range{}, err
	}
	e, err := ParseIP(end)
	if err != nil {
		return Range{}, err
	}
	r := Range{s, e}
	if !r.Valid() {
		return Range{}, invalidPool(poolRepr(start, end))
	}
	return r, nil
}

func invalidPool(pool string) *fault.Error {
	return fault.New(400, "InvalidAllocationPool", "The allocation pool %s is not valid.", pool)
}

// usable is the part of cidr Neutron lets pools cover: IPv4 drops the
// network and broadcast addresses (except /31 and /32, which use every
// address), IPv6 drops the subnet-router anycast address (the first one).
// ok is false when nothing is usable (an IPv6 /128).
func usable(cidr netip.Prefix) (span, bool) {
	s := prefixSpan(cidr)
	if s.lo == s.hi {
		return s, cidr.Addr().Is4()
	}
	if cidr.Addr().Is4() {
		if cidr.Bits() <= 30 {
			s.lo, _ = s.lo.addOne()
			s.hi = s.hi.subOne()
		}
		return s, true
	}
	s.lo, _ = s.lo.addOne()
	return s, true
}

// DefaultPools computes a subnet's allocation pools as Neutron's
// generate_pools does: the usable addresses of cidr (see usable) minus the
// gateway, split around it. A single-address subnet (/32, /128) yields that
// address whatever the gateway. gateway may be the zero Addr (no gateway).
// The zero Prefix has no pools.
func DefaultPools(cidr netip.Prefix, gateway netip.Addr) []Range {
	if !cidr.IsValid() {
		return nil
	}
	is4 := cidr.Addr().Is4()
	all := prefixSpan(cidr)
	if all.lo == all.hi {
		a := fromU(all.lo, is4)
		return []Range{{a, a}}
	}
	s, _ := usable(cidr)
	if !gateway.IsValid() || gateway.BitLen() != cidr.Addr().BitLen() {
		return []Range{{fromU(s.lo, is4), fromU(s.hi, is4)}}
	}
	g := toU(gateway)
	if g.cmp(s.lo) < 0 || g.cmp(s.hi) > 0 {
		return []Range{{fromU(s.lo, is4), fromU(s.hi, is4)}}
	}
	out := make([]Range, 0, 2)
	if g.cmp(s.lo) > 0 {
		out = append(out, Range{fromU(s.lo, is4), fromU(g.subOne(), is4)})
	}
	if g.cmp(s.hi) < 0 {
		n, _ := g.addOne()
		out = append(out, Range{fromU(n, is4), fromU(s.hi, is4)})
	}
	return out
}

// ValidatePools checks a subnet's requested allocation pools in Neutron's
// order: each pool well formed and of the subnet's family
// (InvalidAllocationPool, 400), inside the usable part of cidr
// (OutOfBoundsAllocationPool, 400), pools disjoint
// (OverlappingAllocationPools, 409), and the gateway, if any, outside every
// pool (GatewayConflictWithAllocationPools, 409).
func ValidatePools(cidr netip.Prefix, pools []Range, gateway netip.Addr) error {
	if !cidr.IsValid() {
		return fault.InvalidInput("'%s' is not a valid IP subnet", cidr)
	}
	cidr = cidr.Masked()
	bitLen := cidr.Addr().BitLen()
	lim, ok := usable(cidr)
	for _, p := range pools {
		if !p.Valid() {
			return invalidPool(poolRepr(p.Start.String(), p.End.String()))
		}
	}
	for _, p := range pools {
		if p.Start.BitLen() != bitLen {
			return invalidPool(p.String())
		}
		s := p.span()
		if !ok || s.lo.cmp(lim.lo) < 0 || s.hi.cmp(lim.hi) > 0 {
			return fault.New(400, "OutOfBoundsAllocationPool",
				"The allocation pool %s spans beyond the subnet cidr %s.", p, cidr)
		}
	}
	if i, j, ok := overlapping(pools); ok {
		return fault.Conflict("OverlappingAllocationPools",
			"Found overlapping allocation pools: %s %s for subnet %s.", pools[i], pools[j], cidr)
	}
	if gateway.IsValid() {
		for _, p := range pools {
			if p.Contains(gateway) {
				return fault.Conflict("GatewayConflictWithAllocationPools",
					"Gateway ip %s conflicts with allocation pool %s.", gateway, p)
			}
		}
	}
	return nil
}

// overlapping finds the first pair (i < j, lowest i then lowest j, as
// Neutron scans) of overlapping pools. A sort finds whether there is any in
// O(n log n); only then are pairs scanned.
func overlapping(pools []Range) (int, int, bool) {
	if len(pools) < 2 {
		return 0, 0, false
	}
	s := make([]span, len(pools))
	for i, p := range pools {
		s[i] = p.span()
	}
	sortSpans(s)
	found := false
	for i := 1; i < len(s); i++ {
		if s[i].lo.cmp(s[i-1].hi) <= 0 {
			found = true
			break
		}
	}
	if !found {
		return 0, 0, false
	}
	for i := range pools {
		for j := i + 1; j < len(pools); j++ {
			a, b := pools[i].span(), pools[j].span()
			if a.lo.cmp(b.hi) <= 0 && b.lo.cmp(a.hi) <= 0 {
				return i, j, true
			}
		}
	}
	return 0, 0, false
}

// DefaultGateway is the gateway Neutron picks when the client gives none:
// the first host (network + 1) for IPv4, and for IPv6 the subnet-router
// anycast address (the network address itself), except that an IPv6 subnet
// at "::" gets no gateway. For an IPv4 /32 the result lies outside the
// subnet, as in Neutron; at 255.255.255.255/32 there is none.
func DefaultGateway(cidr netip.Prefix) netip.Addr {
	cidr = cidr.Masked()
	a := cidr.Addr()
	if a.Is6() {
		if a.IsUnspecified() {
			return netip.Addr{}
		}
		return a
	}
	return a.Next()
}

// ValidateGateway checks a requested gateway_ip: of the subnet's family and,
// when it lies inside an IPv4 cidr, neither the network nor the broadcast
// address ("Gateway is not valid on subnet"). A gateway outside the subnet
// is accepted, as Neutron assumes it is on-link. The zero Addr (no
// gateway) passes.
func ValidateGateway(cidr netip.Prefix, gateway netip.Addr) error {
	cidr = cidr.Masked()
	if !gateway.IsValid() {
		return nil
	}
	if err := CheckIPVersion("gateway_ip", gateway.String(), gateway, IPVersion(cidr.Addr())); err != nil {
		return err
	}
	if cidr.Addr().Is4() && cidr.Contains(gateway) &&
		(gateway == cidr.Addr() || gateway == lastAddr(cidr)) {
		return fault.InvalidInput("Gateway is not valid on subnet")
	}
	return nil
}

// CheckSubnetIP is Neutron's check_subnet_ip: whether ip may be a fixed IP
// on cidr. IPv4 refuses the network and broadcast addresses; IPv6 refuses
// the subnet-router anycast address unless routerOwned (the port belongs to
// a router, or its owner is unknown).
func CheckSubnetIP(cidr netip.Prefix, ip netip.Addr, routerOwned bool) bool {
	cidr = cidr.Masked()
	if !cidr.Contains(ip) {
		return false
	}
	if cidr.Addr().Is4() {
		return ip != cidr.Addr() && ip != lastAddr(cidr)
	}
	return routerOwned || ip != cidr.Addr()
}

// Overlaps reports whether two prefixes share an address (never across
// families).
func Overlaps(a, b netip.Prefix) bool { return a.Masked().Overlaps(b.Masked()) }

// PoolsContain reports whether ip lies in any of pools.
func PoolsContain(pools []Range, ip netip.Addr) bool {
	for _, p := range pools {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// PoolSize is the number of addresses in pools, Neutron's total_ips for a
// subnet with allocation pools (pools are assumed disjoint). It may exceed
// 2**64 for IPv6.
func PoolSize(pools []Range) *big.Int {
	total := new(big.Int)
	for _, p := range pools {
		total.Add(total, p.Size())
	}
	return total
}

// PrefixSize is the number of addresses in p, Neutron's total_ips for a
// subnet without pools.
func PrefixSize(p netip.Prefix) *big.Int {
	if !p.IsValid() {
		return new(big.Int)
	}
	return new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits()))
}

// CountInPools counts the addresses of ips that lie in some pool, each
// address counted once per occurrence in ips.
func CountInPools(pools []Range, ips []netip.Addr) int {
	n := 0
	for _, ip := range ips {
		if PoolsContain(pools, ip) {
			n++
		}
	}
	return n
}
