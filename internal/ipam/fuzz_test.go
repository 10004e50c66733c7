package ipam

import (
	"bytes"
	"math/big"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"muon/internal/fault"
)

// mustFault fails unless err is a client fault (4xx, or the 500 Neutron
// gives SubnetAllocationError).
func mustFault(t *testing.T, err error) {
	t.Helper()
	f, ok := fault.As(err)
	if !ok {
		t.Fatalf("error %v is not a fault", err)
	}
	if f.Type == "" || f.Message == "" || (f.Status != 400 && f.Status != 409 && f.Status != 500) {
		t.Fatalf("odd fault %+v", f)
	}
}

func FuzzParseIP(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "010.0.0.1", "2001:db8::1", "::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3", "", " 1.2.3.4", "0000000001.1.1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseIP(s)
		if err != nil {
			mustFault(t, err)
			return
		}
		if !a.IsValid() || a.Zone() != "" {
			t.Fatalf("ParseIP(%q) = %v", s, a)
		}
		if a.Is4() && a.String() != s {
			t.Fatalf("accepted non-canonical IPv4 %q", s)
		}
		if b, err := ParseIP(a.String()); err != nil || b != a {
			t.Fatalf("round trip %q: %v %v", s, b, err)
		}
	})
}

func FuzzParseCIDR(f *testing.F) {
	for _, s := range []string{"10.0.0.0/24", "10.0.0.1/24", "0.0.0.0/0", "::/64", "2001:db8::/64", "10.0.0.0/33", "10.0.0.0", "fe80::%1/64", "10.0.0.0/024"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := ParsePrefix(s); err == nil {
			if p != p.Masked() {
				t.Fatalf("ParsePrefix(%q) = %v not masked", s, p)
			}
		} else {
			mustFault(t, err)
		}
		if p, err := ParseRouteCIDR(s); err == nil {
			if p != p.Masked() || p.Addr().IsLoopback() {
				t.Fatalf("ParseRouteCIDR(%q) = %v", s, p)
			}
		} else {
			mustFault(t, err)
		}
		p, err := ParseCIDR(s)
		if err != nil {
			mustFault(t, err)
			return
		}
		if p != p.Masked() || p.Bits() == 0 || (p.Addr().Is6() && p.Addr().IsUnspecified()) {
			t.Fatalf("ParseCIDR(%q) = %v", s, p)
		}
		if q, err := ParseCIDR(p.String()); err != nil || q != p {
			t.Fatalf("round trip %q: %v %v", s, q, err)
		}
		_ = CheckDHCP(p)
	})
}

func FuzzParseMAC(f *testing.F) {
	for _, s := range []string{"fa:16:3e:00:00:01", "FA-16-3E-00-00-01", "fa16.3e00.0001", "fa163e:000001", "fa163e000001", "a:b:c:d:e:f", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "1.2.3", "::::::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = CheckMACNotMulticast(s)
		m, err := ParseMAC(s)
		if err != nil {
			mustFault(t, err)
			return
		}
		if len(m) != 17 || m == "00:00:00:00:00:00" || m == "ff:ff:ff:ff:ff:ff" || strings.ToLower(m) != m {
			t.Fatalf("ParseMAC(%q) = %q", s, m)
		}
		if again, err := ParseMAC(m); err != nil || again != m {
			t.Fatalf("not canonical: %q -> %q %v", m, again, err)
		}
		if a, err := EUI64(netip.MustParsePrefix("2001:db8::/64"), m); err != nil || !netip.MustParsePrefix("2001:db8::/64").Contains(a) {
			t.Fatalf("EUI64(%s) = %v %v", m, a, err)
		}
	})
}

func FuzzGenerateMAC(f *testing.F) {
	f.Add("fa:16:3e:00:00:00", []byte{1, 2, 3})
	f.Add("fa:16:3e:4f:00:00", []byte{0, 0, 0})
	f.Add("fa:16:3e", []byte{})
	f.Fuzz(func(t *testing.T, base string, random []byte) {
		m, err := GenerateMAC(base, bytes.NewReader(random))
		if err != nil {
			return
		}
		if len(m) != 17 || !strings.EqualFold(m[:8], base[:8]) {
			t.Fatalf("GenerateMAC(%q) = %q", base, m)
		}
		if base[9:11] != "00" && !strings.EqualFold(m[9:11], base[9:11]) {
			t.Fatalf("GenerateMAC(%q) = %q lost the fourth octet", base, m)
		}
	})
}

// fuzzPrefix builds a prefix from raw fuzz input.
func fuzzPrefix(raw []byte, bits uint8, v6 bool) netip.Prefix {
	var b [16]byte
	copy(b[:], raw)
	if v6 {
		return netip.PrefixFrom(netip.AddrFrom16(b), int(bits)%129).Masked()
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte(b[:4])), int(bits)%33).Masked()
}

func FuzzDefaultPools(f *testing.F) {
	f.Add([]byte{10, 0, 0, 0}, uint8(24), false, uint64(1))
	f.Add([]byte{10, 0, 0, 0}, uint8(31), false, uint64(0))
	f.Add([]byte{10, 0, 0, 0}, uint8(32), false, uint64(0))
	f.Add([]byte{0x20, 0x01}, uint8(64), true, uint64(5))
	f.Add([]byte{0x20, 0x01}, uint8(127), true, uint64(1))
	f.Add([]byte{0x20, 0x01}, uint8(128), true, uint64(0))
	f.Fuzz(func(t *testing.T, raw []byte, bits uint8, v6 bool, gwOff uint64) {
		cidr := fuzzPrefix(raw, bits, v6)
		// a gateway somewhere in (or just past) the subnet, or none
		var gw netip.Addr
		if gwOff != 0 {
			u, _ := toU(cidr.Addr()).add(u128{lo: gwOff - 1})
			gw = fromU(u, !v6)
		}
		pools := DefaultPools(cidr, gw)
		size := new(big.Int)
		for i, p := range pools {
			if !p.Valid() || !cidr.Contains(p.Start) || !cidr.Contains(p.End) {
				t.Fatalf("DefaultPools(%v, %v) = %v", cidr, gw, pools)
			}
			if i > 0 && pools[i-1].End.Compare(p.Start) >= 0 {
				t.Fatalf("pools not ascending: %v", pools)
			}
			size.Add(size, p.Size())
		}
		if PoolSize(pools).Cmp(size) != 0 {
			t.Fatal("PoolSize disagrees")
		}
		single := cidr.IsSingleIP()
		if !single && gw.IsValid() && PoolsContain(pools, gw) {
			t.Fatalf("gateway %v in pools %v", gw, pools)
		}
		if v6 && single {
			return // Neutron's pools for a /128 fail its own bounds check
		}
		if err := ValidatePools(cidr, pools, netip.Addr{}); err != nil {
			t.Fatalf("default pools of %v rejected: %v", cidr, err)
		}
		if err := ValidateGateway(cidr, gw); err == nil && !single {
			if err := ValidatePools(cidr, pools, gw); err != nil {
				t.Fatalf("default pools of %v with gateway %v rejected: %v", cidr, gw, err)
			}
		}
	})
}

func FuzzValidatePools(f *testing.F) {
	f.Add(uint8(24), []byte{2, 100, 101, 254}, uint8(1))
	f.Add(uint8(24), []byte{2, 100, 100, 254}, uint8(0))
	f.Add(uint8(28), []byte{9, 2}, uint8(5))
	f.Fuzz(func(t *testing.T, bits uint8, ends []byte, gw uint8) {
		cidr := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, 0}), 24+int(bits)%9)
		var pools []Range
		for i := 0; i+1 < len(ends) && len(pools) < 16; i += 2 {
			pools = append(pools, Range{netip.AddrFrom4([4]byte{10, 0, 0, ends[i]}), netip.AddrFrom4([4]byte{10, 0, 0, ends[i+1]})})
		}
		g := netip.AddrFrom4([4]byte{10, 0, 0, gw})
		err := ValidatePools(cidr, pools, g)
		if err != nil {
			mustFault(t, err)
			return
		}
		// accepted: every address is in at most one pool, never the gateway,
		// never outside the usable part of the subnet
		var owner [256]int
		for i, p := range pools {
			for a := p.Start; ; a = a.Next() {
				o := a.As4()[3]
				if owner[o] != 0 || a == g || !CheckSubnetIP(cidr, a, false) && !(cidr.Bits() >= 31 && cidr.Contains(a)) {
					t.Fatalf("accepted bad pools %v in %v gw %v", pools, cidr, g)
				}
				owner[o] = i + 1
				if a == p.End {
					break
				}
			}
		}
	})
}

func FuzzNextFree(f *testing.F) {
	f.Add([]byte{2, 9, 20, 21}, []byte{2, 3, 4, 20})
	f.Add([]byte{9, 2}, []byte{})
	f.Add([]byte{0, 255}, []byte{0, 1, 2, 3})
	f.Fuzz(func(t *testing.T, ends, usedRaw []byte) {
		var pools []Range
		for i := 0; i+1 < len(ends) && len(pools) < 8; i += 2 {
			pools = append(pools, Range{netip.AddrFrom4([4]byte{10, 0, 0, ends[i]}), netip.AddrFrom4([4]byte{10, 0, 0, ends[i+1]})})
		}
		var used []netip.Addr
		inUse := map[netip.Addr]bool{}
		for _, b := range usedRaw {
			a := netip.AddrFrom4([4]byte{10, 0, 0, b})
			used = append(used, a)
			inUse[a] = true
		}
		// brute force, in pool order
		var want []netip.Addr
		for _, p := range pools {
			if !p.Valid() {
				continue
			}
			for a := p.Start; ; a = a.Next() {
				if !inUse[a] {
					want = append(want, a)
				}
				if a == p.End {
					break
				}
			}
		}
		got, ok := NextFree(pools, used)
		if ok != (len(want) > 0) || (ok && got != want[0]) {
			t.Fatalf("NextFree(%v, %v) = %v %v, want %v", pools, used, got, ok, want)
		}
		// NextFreeFunc's probe budget assumes disjoint pools, as validated
		_, _, overlap := overlapping(pools)
		got2, ok2 := NextFreeFunc(pools, func(a netip.Addr) bool { return inUse[a] }, len(inUse))
		if !overlap && (got2 != got || ok2 != ok) {
			t.Fatalf("NextFreeFunc = %v %v, want %v %v", got2, ok2, got, ok)
		}
		n := len(want)%7 + 1
		all := FreeAddrs(pools, used, n)
		if len(all) != min(n, len(want)) {
			t.Fatalf("FreeAddrs len %d want %d", len(all), min(n, len(want)))
		}
		for i := range all {
			if all[i] != want[i] {
				t.Fatalf("FreeAddrs = %v, want prefix of %v", all, want)
			}
		}
	})
}

// prefixesFrom reads (last octet, length) pairs as prefixes in 10.0.0.0/24.
func prefixesFrom(raw []byte, max int) []netip.Prefix {
	var out []netip.Prefix
	for i := 0; i+1 < len(raw) && len(out) < max; i += 2 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, raw[i]}), 24+int(raw[i+1])%9).Masked())
	}
	return out
}

// covered marks which addresses of 10.0.0.0/24 the prefixes cover.
func covered(ps []netip.Prefix) (m [256]bool) {
	for _, p := range ps {
		for i := range 256 {
			if p.Contains(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})) {
				m[i] = true
			}
		}
	}
	return m
}

func FuzzCompact(f *testing.F) {
	f.Add([]byte{0, 1, 128, 1})
	f.Add([]byte{0, 0, 5, 8})
	f.Fuzz(func(t *testing.T, raw []byte) {
		in := prefixesFrom(raw, 32)
		out := Compact(in)
		if covered(in) != covered(out) {
			t.Fatalf("Compact(%v) = %v changes coverage", in, out)
		}
		for i := 1; i < len(out); i++ {
			if lastAddr(out[i-1]).Compare(out[i].Addr()) >= 0 {
				t.Fatalf("Compact not sorted/disjoint: %v", out)
			}
			a, b := out[i-1], out[i]
			if a.Bits() == b.Bits() && a.Bits() > 0 {
				if parent := netip.PrefixFrom(a.Addr(), a.Bits()-1).Masked(); parent.Addr() == a.Addr() && parent.Contains(b.Addr()) {
					t.Fatalf("Compact left siblings %v %v", a, b)
				}
			}
		}
		if again := Compact(out); len(again) != len(out) {
			t.Fatalf("Compact not idempotent: %v -> %v", out, again)
		}
	})
}

func FuzzAllocatePrefix(f *testing.F) {
	f.Add([]byte{0, 0}, []byte{0, 1}, uint8(1))
	f.Add([]byte{0, 1, 128, 2}, []byte{128, 3}, uint8(3))
	f.Fuzz(func(t *testing.T, poolRaw, usedRaw []byte, plen uint8) {
		pool := prefixesFrom(poolRaw, 8)
		used := prefixesFrom(usedRaw, 16)
		want := 24 + int(plen)%9
		got, err := AllocatePrefix(pool, used, want)
		free := covered(pool)
		for i, u := range covered(used) {
			if u {
				free[i] = false
			}
		}
		// is there any free aligned block of that size?
		size := 1 << (32 - want)
		exists := false
		for start := 0; start < 256 && !exists; start += size {
			all := true
			for i := start; i < start+size; i++ {
				all = all && free[i]
			}
			exists = all
		}
		if err != nil {
			mustFault(t, err)
			if exists {
				t.Fatalf("AllocatePrefix(%v, %v, %d) failed though space exists", pool, used, want)
			}
			return
		}
		if !exists || got.Bits() != want || !ContainedIn(got, pool) {
			t.Fatalf("AllocatePrefix(%v, %v, %d) = %v", pool, used, want, got)
		}
		for _, u := range used {
			if Overlaps(got, u) {
				t.Fatalf("AllocatePrefix = %v overlaps used %v", got, u)
			}
		}
		if err := AllocateSpecific(pool, used, got); err != nil {
			t.Fatalf("AllocateSpecific disagrees on %v: %v", got, err)
		}
	})
}

func FuzzValidatePoolPrefixes(f *testing.F) {
	f.Add("10.0.0.0/8,10.1.0.0/16")
	f.Add("10.0.0.0/8,2001:db8::/32")
	f.Add("")
	f.Fuzz(func(t *testing.T, list string) {
		var in []string
		if list != "" {
			in = strings.Split(list, ",")
		}
		out, err := ValidatePoolPrefixes(in, 0)
		if err != nil {
			mustFault(t, err)
			return
		}
		if len(out) == 0 || len(out) > 2*128*len(in) {
			t.Fatalf("ValidatePoolPrefixes(%q) = %v", list, out)
		}
		for _, p := range out {
			if p.Addr().Is4() != out[0].Addr().Is4() {
				t.Fatalf("mixed families: %v", out)
			}
		}
	})
}

func FuzzValidateHostRoute(f *testing.F) {
	f.Add("10.0.0.0/8", "10.0.0.1", uint8(4))
	f.Add("::/0", "fe80::1", uint8(6))
	f.Add("127.0.0.0/8", "x", uint8(0))
	f.Fuzz(func(t *testing.T, dest, nexthop string, v uint8) {
		version := []int{0, 4, 6}[v%3]
		h, err := ValidateHostRoute(dest, nexthop, version)
		if err != nil {
			mustFault(t, err)
			return
		}
		if h.Destination != h.Destination.Masked() || !h.NextHop.IsValid() {
			t.Fatalf("ValidateHostRoute(%q, %q) = %v", dest, nexthop, h)
		}
		if version != 0 && (IPVersion(h.NextHop) != version || IPVersion(h.Destination.Addr()) != version) {
			t.Fatalf("version %d not enforced: %v", version, h)
		}
	})
}

func FuzzValidateNameservers(f *testing.F) {
	f.Add("8.8.8.8,1.1.1.1", uint8(4), 5)
	f.Add("8.8.8.8,8.8.8.8", uint8(4), 5)
	f.Add("::1", uint8(6), -1)
	f.Fuzz(func(t *testing.T, list string, v uint8, max int) {
		version := []int{0, 4, 6}[v%3]
		in := strings.Split(list, ",")
		out, err := ValidateNameservers(in, version, max, "")
		if err != nil {
			mustFault(t, err)
			return
		}
		if len(out) != len(in) || (max >= 0 && len(in) > max) {
			t.Fatalf("ValidateNameservers(%q) = %v", list, out)
		}
		seen := map[netip.Addr]bool{}
		for _, a := range out {
			if version != 0 && IPVersion(a) != version {
				t.Fatalf("version %d not enforced: %v", version, out)
			}
			seen[a] = true
		}
	})
}

func FuzzParsePool(f *testing.F) {
	f.Add("10.0.0.2", "10.0.0.9")
	f.Add("10.0.0.9", "10.0.0.2")
	f.Add("::1", "10.0.0.1")
	f.Fuzz(func(t *testing.T, start, end string) {
		r, err := ParsePool(start, end)
		if err != nil {
			mustFault(t, err)
			return
		}
		if !r.Valid() || r.Size().Sign() <= 0 || !r.Contains(r.Start) || !r.Contains(r.End) {
			t.Fatalf("ParsePool(%q, %q) = %v", start, end, r)
		}
	})
}

// FuzzPrefixSets throws prefixes of any family and length at the set
// arithmetic and checks its invariants.
func FuzzPrefixSets(f *testing.F) {
	f.Add([]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 48, 1}, []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 1}, uint8(64))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, poolRaw, usedRaw []byte, plen uint8) {
		read := func(raw []byte) []netip.Prefix {
			var out []netip.Prefix
			for i := 0; i+18 <= len(raw) && len(out) < 8; i += 18 {
				out = append(out, fuzzPrefix(raw[i:i+16], raw[i+16], raw[i+17]&1 == 1))
			}
			return out
		}
		pool, used := read(poolRaw), read(usedRaw)
		c := Compact(append(slices.Clone(pool), used...))
		for i := 1; i < len(c); i++ {
			if c[i-1].Addr().BitLen() == c[i].Addr().BitLen() && lastAddr(c[i-1]).Compare(c[i].Addr()) >= 0 {
				t.Fatalf("Compact not sorted/disjoint: %v", c)
			}
		}
		for _, p := range pool {
			if !ContainedIn(p, c) {
				t.Fatalf("%v lost by Compact: %v", p, c)
			}
		}
		avail := Available(pool, used)
		for _, a := range avail {
			if !ContainedIn(a, pool) {
				t.Fatalf("Available %v outside pool %v", a, pool)
			}
			for _, u := range used {
				if Overlaps(a, u) {
					t.Fatalf("Available %v overlaps used %v", a, u)
				}
			}
		}
		if len(pool) == 0 {
			return
		}
		got, err := AllocatePrefix(pool, used, int(plen)%(pool[0].Addr().BitLen()+1))
		if err != nil {
			mustFault(t, err)
			return
		}
		if !ContainedIn(got, pool) || AllocateSpecific(pool, used, got) != nil {
			t.Fatalf("AllocatePrefix = %v not free in %v minus %v", got, pool, used)
		}
	})
}
