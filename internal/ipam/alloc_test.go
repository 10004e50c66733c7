package ipam

import (
	"net/netip"
	"slices"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = ip(s)
	}
	return out
}

func TestNextFree(t *testing.T) {
	v4 := []Range{rng("10.0.0.2-10.0.0.4"), rng("10.0.0.10-10.0.0.11")}
	v6 := []Range{rng("2001::1-2001::ffff:ffff:ffff:ffff")}
	tests := []struct {
		name  string
		pools []Range
		used  []netip.Addr
		want  string
	}{
		{"empty", v4, nil, "10.0.0.2"},
		{"skip-used", v4, addrs("10.0.0.2", "10.0.0.3"), "10.0.0.4"},
		{"unsorted-dups", v4, addrs("10.0.0.3", "10.0.0.2", "10.0.0.3", "10.0.0.2"), "10.0.0.4"},
		{"hole", v4, addrs("10.0.0.2", "10.0.0.4"), "10.0.0.3"},
		{"next-pool", v4, addrs("10.0.0.4", "10.0.0.3", "10.0.0.2"), "10.0.0.10"},
		{"last-one", v4, addrs("10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.10"), "10.0.0.11"},
		{"full", v4, addrs("10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.10", "10.0.0.11"), ""},
		{"outside-ignored", v4, addrs("10.0.0.1", "10.0.0.5", "2001::1"), "10.0.0.2"},
		{"no-pools", nil, nil, ""},
		{"invalid-pool-skipped", []Range{rng("10.0.0.9-10.0.0.2"), rng("10.0.0.20-10.0.0.20")}, nil, "10.0.0.20"},
		{"v6-64", v6, addrs("2001::1", "2001::2", "2001::3"), "2001::4"},
		{"v6-top", []Range{rng("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")},
			addrs("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), ""},
		{"v4-top", []Range{rng("255.255.255.254-255.255.255.255")}, addrs("255.255.255.254"), "255.255.255.255"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.used)
			got, ok := NextFree(tc.pools, tc.used)
			if !slices.Equal(before, tc.used) {
				t.Fatal("NextFree modified used")
			}
			if tc.want == "" {
				if ok {
					t.Fatalf("NextFree = %v, want none", got)
				}
				return
			}
			if !ok || got != ip(tc.want) {
				t.Fatalf("NextFree = %v, %v; want %s", got, ok, tc.want)
			}
			// The callback form agrees.
			set := map[netip.Addr]bool{}
			for _, a := range tc.used {
				set[a] = true
			}
			got2, ok2 := NextFreeFunc(tc.pools, func(a netip.Addr) bool { return set[a] }, len(set))
			if got2 != got || ok2 != ok {
				t.Fatalf("NextFreeFunc = %v, %v; want %v", got2, ok2, got)
			}
		})
	}
}

func TestFreeAddrs(t *testing.T) {
	pools := []Range{rng("10.0.0.2-10.0.0.5"), rng("10.0.0.10-10.0.0.11")}
	tests := []struct {
		name string
		used []netip.Addr
		n    int
		want []netip.Addr
	}{
		{"zero", nil, 0, nil},
		{"first-three", nil, 3, addrs("10.0.0.2", "10.0.0.3", "10.0.0.4")},
		{"across-pools", addrs("10.0.0.3", "10.0.0.5"), 4, addrs("10.0.0.2", "10.0.0.4", "10.0.0.10", "10.0.0.11")},
		{"more-than-free", addrs("10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"), 10, addrs("10.0.0.10", "10.0.0.11")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := FreeAddrs(pools, tc.used, tc.n); !slices.Equal(got, tc.want) {
				t.Fatalf("FreeAddrs = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNextFreeFuncBounded(t *testing.T) {
	pools := []Range{rng("2001::1-2001::ffff:ffff:ffff:ffff")}
	probes := 0
	lying := func(netip.Addr) bool { probes++; return true }
	if _, ok := NextFreeFunc(pools, lying, 100); ok {
		t.Fatal("nothing is free")
	}
	if probes != 101 {
		t.Fatalf("probes = %d, want 101", probes)
	}
	probes = 0
	a, ok := NextFreeFunc(pools, func(netip.Addr) bool { probes++; return false }, 0)
	if !ok || a != ip("2001::1") || probes != 1 {
		t.Fatalf("empty pool: %v %v after %d probes", a, ok, probes)
	}
}

func TestNextFreeFuncFull(t *testing.T) {
	pools := []Range{rng("10.0.0.2-10.0.0.3")}
	if _, ok := NextFreeFunc(pools, func(netip.Addr) bool { return true }, 2); ok {
		t.Fatal("full pool")
	}
}

// TestNextFreeLarge checks the cost is bounded by the allocations: a /64
// with 100k addresses in use at its start.
func TestNextFreeLarge(t *testing.T) {
	pools := []Range{rng("2001::1-2001::ffff:ffff:ffff:ffff")}
	used := make([]netip.Addr, 0, 100000)
	a := ip("2001::1")
	for range 100000 {
		used = append(used, a)
		a = a.Next()
	}
	got, ok := NextFree(pools, used)
	if !ok || got != a {
		t.Fatalf("NextFree = %v, want %v", got, a)
	}
}

func BenchmarkNextFree(b *testing.B) {
	pools := []Range{rng("10.0.0.2-10.0.255.254")}
	used := make([]netip.Addr, 0, 5000)
	a := ip("10.0.0.2")
	for range 5000 {
		used = append(used, a)
		a = a.Next()
	}
	b.ReportAllocs()
	for b.Loop() {
		NextFree(pools, used)
	}
}
