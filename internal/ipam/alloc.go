package ipam

import (
	"net/netip"
	"slices"
)

// NextFree returns the lowest address of pools (taken in the order given,
// each walked upwards) that is not in used. used need not be sorted and may
// hold duplicates and addresses outside the pools; it is not modified. The
// cost is O(len(pools) log len(used) + len(used)), never the pool size, so
// an IPv6 /64 is as cheap as an IPv4 /29. ok is false when every pool
// address is used.
func NextFree(pools []Range, used []netip.Addr) (netip.Addr, bool) {
	var out [1]netip.Addr
	got := appendFree(out[:0], pools, used, 1)
	if len(got) == 0 {
		return netip.Addr{}, false
	}
	return got[0], true
}

// FreeAddrs returns up to n free addresses in the order NextFree would hand
// them out. Neutron picks an address at random among the first 1000 free
// ones of a pool to make concurrent requests collide less; callers that
// want that behaviour sample from FreeAddrs(pools, used, 1000).
func FreeAddrs(pools []Range, used []netip.Addr, n int) []netip.Addr {
	if n <= 0 {
		return nil
	}
	return appendFree(make([]netip.Addr, 0, min(n, 64)), pools, used, n)
}

func appendFree(dst []netip.Addr, pools []Range, used []netip.Addr, n int) []netip.Addr {
	if !slices.IsSortedFunc(used, netip.Addr.Compare) {
		used = slices.Clone(used)
		slices.SortFunc(used, netip.Addr.Compare)
	}
	for _, p := range pools {
		if !p.Valid() {
			continue
		}
		cand := p.Start
		i, _ := slices.BinarySearchFunc(used, cand, netip.Addr.Compare)
		for {
			for i < len(used) && used[i].Compare(cand) < 0 {
				i++
			}
			if i < len(used) && used[i] == cand {
				if cand == p.End {
					break
				}
				cand = cand.Next()
				continue
			}
			dst = append(dst, cand)
			if len(dst) == n || cand == p.End {
				break
			}
			cand = cand.Next()
		}
		if len(dst) == n {
			break
		}
	}
	return dst
}

// NextFreeFunc is NextFree for callers that can only test addresses one at
// a time. allocated is how many addresses of the subnet are in use: the
// walk gives up once it has met more used addresses than that, so at most
// allocated+1 probes are made even if inUse is wrong, and an empty IPv6 /64
// costs one probe. pools must be disjoint (see ValidatePools): an address
// met twice counts twice against the budget.
func NextFreeFunc(pools []Range, inUse func(netip.Addr) bool, allocated int) (netip.Addr, bool) {
	hits := 0
	for _, p := range pools {
		if !p.Valid() {
			continue
		}
		for cand := p.Start; ; cand = cand.Next() {
			if !inUse(cand) {
				return cand, true
			}
			hits++
			if hits > allocated {
				return netip.Addr{}, false
			}
			if cand == p.End {
				break
			}
		}
	}
	return netip.Addr{}, false
}
