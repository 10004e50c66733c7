package ipam

import (
	"net/netip"
	"slices"

	"muon/internal/fault"
)

// ValidatePoolPrefixes parses a subnet pool's prefixes (host bits cleared,
// as Neutron stores them) and compacts them. version is the pool's
// ip_version, or 0 to infer it from the first prefix. Errors:
// EmptySubnetPoolPrefixList, InvalidInput for a bad prefix, and
// PrefixVersionMismatch when families mix (all 400).
func ValidatePoolPrefixes(prefixes []string, version int) ([]netip.Prefix, error) {
	if len(prefixes) == 0 {
		return nil, fault.New(400, "EmptySubnetPoolPrefixList", "Empty subnet pool prefix list.")
	}
	out := make([]netip.Prefix, 0, len(prefixes))
	for _, s := range prefixes {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		v := IPVersion(p.Addr())
		if version == 0 {
			version = v
		}
		if v != version {
			return nil, fault.New(400, "PrefixVersionMismatch", "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.")
		}
		out = append(out, p)
	}
	return Compact(out), nil
}

// Compact returns the fewest prefixes covering exactly the union of ps, in
// address order with IPv4 first: contained prefixes are dropped and
// adjacent ones merged (10.0.0.0/25 + 10.0.0.128/25 = 10.0.0.0/24), as
// Neutron compacts a pool's prefix list with netaddr.IPSet.
func Compact(ps []netip.Prefix) []netip.Prefix {
	v4, v6 := spansOf(ps)
	out := make([]netip.Prefix, 0, len(ps))
	for _, s := range v4 {
		out = appendCIDRs(out, s, true)
	}
	for _, s := range v6 {
		out = appendCIDRs(out, s, false)
	}
	return out
}

// spansOf splits valid prefixes by family into merged spans.
func spansOf(ps []netip.Prefix) (v4, v6 []span) {
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		if p.Addr().Is4() {
			v4 = append(v4, prefixSpan(p))
		} else {
			v6 = append(v6, prefixSpan(p))
		}
	}
	return mergeSpans(v4), mergeSpans(v6)
}

// familySpans returns the merged spans of the prefixes of one family.
func familySpans(ps []netip.Prefix, is4 bool) []span {
	v4, v6 := spansOf(ps)
	if is4 {
		return v4
	}
	return v6
}

// ContainedIn reports whether every address of p lies in the union of
// poolPrefixes (which may be uncompacted).
func ContainedIn(p netip.Prefix, poolPrefixes []netip.Prefix) bool {
	if !p.IsValid() {
		return false
	}
	s := prefixSpan(p)
	for _, a := range familySpans(poolPrefixes, p.Addr().Is4()) {
		if a.lo.cmp(s.lo) <= 0 && s.hi.cmp(a.hi) <= 0 {
			return true
		}
	}
	return false
}

// Available returns the free space of a pool, compacted: poolPrefixes minus
// used, in the pool's family (that of the first valid pool prefix).
func Available(poolPrefixes, used []netip.Prefix) []netip.Prefix {
	i := slices.IndexFunc(poolPrefixes, netip.Prefix.IsValid)
	if i < 0 {
		return nil
	}
	is4 := poolPrefixes[i].Addr().Is4()
	free := subtractSpans(familySpans(poolPrefixes, is4), familySpans(used, is4))
	var out []netip.Prefix
	for _, s := range free {
		out = appendCIDRs(out, s, is4)
	}
	return out
}

func allocError(format string, args ...any) *fault.Error {
	return fault.New(500, "SubnetAllocationError", "Failed to allocate subnet: "+format+".", args...)
}

// AllocatePrefix picks a prefix of length prefixLen from a subnet pool
// exactly as Neutron's subnet allocator does: the free space is split into
// CIDR blocks and the first subnet of the smallest block that can hold the
// request is taken (lowest address among equal blocks), which keeps large
// blocks whole. used are the cidrs already allocated from the pool.
//
// When no block fits the error is SubnetAllocationError. Neutron defines it
// without an HTTP status, so its API answers 500; so does ours.
func AllocatePrefix(poolPrefixes, used []netip.Prefix, prefixLen int) (netip.Prefix, error) {
	i := slices.IndexFunc(poolPrefixes, netip.Prefix.IsValid)
	if i < 0 {
		return netip.Prefix{}, allocError("Insufficient prefix space to allocate subnet size /%d", prefixLen)
	}
	w := poolPrefixes[i].Addr().BitLen()
	if prefixLen < 0 || prefixLen > w {
		return netip.Prefix{}, fault.InvalidInput("%d is not a valid prefix length for IPv%d",
			prefixLen, IPVersion(poolPrefixes[i].Addr()))
	}
	best := netip.Prefix{}
	for _, b := range Available(poolPrefixes, used) {
		if b.Bits() <= prefixLen && (!best.IsValid() || b.Bits() > best.Bits()) {
			best = b
		}
	}
	if !best.IsValid() {
		return netip.Prefix{}, allocError("Insufficient prefix space to allocate subnet size /%d", prefixLen)
	}
	return netip.PrefixFrom(best.Addr(), prefixLen), nil
}

// AllocateSpecific checks that the requested cidr is wholly free in the
// pool (inside poolPrefixes, overlapping no used cidr), as Neutron does for a
// subnet created with both subnetpool_id and cidr.
func AllocateSpecific(poolPrefixes, used []netip.Prefix, want netip.Prefix) error {
	if want.IsValid() {
		want = want.Masked()
		s := prefixSpan(want)
		for _, b := range subtractSpans(familySpans(poolPrefixes, want.Addr().Is4()),
			familySpans(used, want.Addr().Is4())) {
			if b.lo.cmp(s.lo) <= 0 && s.hi.cmp(b.hi) <= 0 {
				return nil
			}
		}
	}
	return allocError("Cannot allocate requested subnet from the available set of prefixes")
}

// CheckPrefixLen enforces a pool's min_prefixlen and max_prefixlen on a
// requested subnet size (400, Neutron's Max/MinPrefixSubnetAllocationError).
func CheckPrefixLen(prefixLen, minLen, maxLen int) error {
	if prefixLen > maxLen {
		return fault.New(400, "MaxPrefixSubnetAllocationError",
			"Unable to allocate subnet with prefix length %d, maximum allowed prefix is %d.", prefixLen, maxLen)
	}
	if prefixLen < minLen {
		return fault.New(400, "MinPrefixSubnetAllocationError",
			"Unable to allocate subnet with prefix length %d, minimum allowed prefix is %d.", prefixLen, minLen)
	}
	return nil
}

// DefaultPrefixBounds are Neutron's min_prefixlen and max_prefixlen for a
// pool that does not set them: 8 and 32 for IPv4, 64 and 128 for IPv6.
func DefaultPrefixBounds(version int) (minLen, maxLen int) {
	if version == 6 {
		return 64, 128
	}
	return 8, 32
}

// ValidatePrefixBounds checks a pool's min, max and default prefix lengths
// as Neutron's SubnetPoolHelper does (UnsupportedMinSubnetPoolPrefix,
// IllegalSubnetPoolPrefixBounds; 400).
func ValidatePrefixBounds(version, minLen, maxLen, defLen int) error {
	bounds := func(typ string, n int, base string, baseN int) error {
		return fault.New(400, "IllegalSubnetPoolPrefixBounds",
			"Illegal prefix bounds: %s=%d, %s=%d.", typ, n, base, baseN)
	}
	if minLen < 0 {
		return fault.New(400, "UnsupportedMinSubnetPoolPrefix",
			"Prefix '%d' not supported in IPv%d pool.", minLen, 4)
	}
	if minLen > maxLen {
		return bounds("min_prefixlen", minLen, "max_prefixlen", maxLen)
	}
	if _, top := DefaultPrefixBounds(version); maxLen > top {
		return bounds("max_prefixlen", maxLen, "ip_version_max", top)
	}
	if defLen < minLen {
		return bounds("default_prefixlen", defLen, "min_prefixlen", minLen)
	}
	if defLen > maxLen {
		return bounds("default_prefixlen", defLen, "max_prefixlen", maxLen)
	}
	return nil
}
