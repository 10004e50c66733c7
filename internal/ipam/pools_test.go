package ipam

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}

// rng parses "a-b".
func rng(s string) Range {
	a, b, _ := strings.Cut(s, "-")
	return Range{ip(a), ip(b)}
}

func rangesString(rs []Range) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

func TestDefaultPools(t *testing.T) {
	tests := []struct {
		name, cidr, gw, want string
	}{
		{"v4-24-gw-first", "10.0.0.0/24", "10.0.0.1", "10.0.0.2-10.0.0.254"},
		{"v4-24-gw-last", "10.0.0.0/24", "10.0.0.254", "10.0.0.1-10.0.0.253"},
		{"v4-24-gw-middle", "10.0.0.0/24", "10.0.0.100", "10.0.0.1-10.0.0.99,10.0.0.101-10.0.0.254"},
		{"v4-24-no-gw", "10.0.0.0/24", "", "10.0.0.1-10.0.0.254"},
		{"v4-24-gw-outside", "10.0.0.0/24", "10.0.1.1", "10.0.0.1-10.0.0.254"},
		{"v4-24-gw-network", "10.0.0.0/24", "10.0.0.0", "10.0.0.1-10.0.0.254"},
		{"v4-24-gw-v6", "10.0.0.0/24", "::1", "10.0.0.1-10.0.0.254"},
		{"v4-host-bits", "10.0.0.7/24", "10.0.0.1", "10.0.0.2-10.0.0.254"},
		{"v4-30", "10.0.0.0/30", "10.0.0.1", "10.0.0.2-10.0.0.2"},
		{"v4-30-gw-outside", "10.0.0.0/30", "", "10.0.0.1-10.0.0.2"},
		{"v4-31", "10.0.0.0/31", "", "10.0.0.0-10.0.0.1"},
		{"v4-31-gw", "10.0.0.0/31", "10.0.0.1", "10.0.0.0-10.0.0.0"},
		{"v4-31-gw-outside", "10.14.0.20/31", "10.14.0.19", "10.14.0.20-10.14.0.21"},
		{"v4-32", "10.0.0.5/32", "", "10.0.0.5-10.0.0.5"},
		{"v4-32-gw-same", "10.0.0.5/32", "10.0.0.5", "10.0.0.5-10.0.0.5"},
		{"v4-8", "10.0.0.0/8", "10.0.0.1", "10.0.0.2-10.255.255.254"},
		{"v4-whole", "0.0.0.0/1", "", "0.0.0.1-127.255.255.254"},
		{"v6-64-gw-network", "2001::/64", "2001::", "2001::1-2001::ffff:ffff:ffff:ffff"},
		{"v6-64-gw-first", "2001::/64", "2001::1", "2001::2-2001::ffff:ffff:ffff:ffff"},
		{"v6-64-gw-last", "2001::/64", "2001::ffff:ffff:ffff:ffff", "2001::1-2001::ffff:ffff:ffff:fffe"},
		{"v6-126", "2001::/126", "", "2001::1-2001::3"},
		{"v6-127", "2001::/127", "", "2001::1-2001::1"},
		{"v6-127-gw", "2001::/127", "2001::1", ""},
		{"v6-128", "2001::5/128", "2001::5", "2001::5-2001::5"},
		{"v6-1", "8000::/1", "", "8000::1-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := rangesString(DefaultPools(pfx(tc.cidr), ip(tc.gw)))
			if got != tc.want {
				t.Fatalf("DefaultPools(%s, %s) = %s, want %s", tc.cidr, tc.gw, got, tc.want)
			}
		})
	}
}

func TestZeroPrefix(t *testing.T) {
	var zero netip.Prefix
	if DefaultPools(zero, netip.Addr{}) != nil {
		t.Fatal("DefaultPools(zero) must be nil")
	}
	checkFault(t, ValidatePools(zero, nil, netip.Addr{}), 400, "InvalidInput", "")
	if DefaultGateway(zero).IsValid() || CheckSubnetIP(zero, ip("10.0.0.1"), true) || PrefixSize(zero).Sign() != 0 {
		t.Fatal("zero prefix must have nothing")
	}
	if ValidateGateway(zero, ip("10.0.0.1")) == nil {
		t.Fatal("ValidateGateway(zero) must fail")
	}
}

func TestValidatePools(t *testing.T) {
	tests := []struct {
		name, cidr string
		pools      []string
		gw         string
		status     int
		typ, msg   string
	}{
		{"ok", "10.0.0.0/24", []string{"10.0.0.2-10.0.0.100", "10.0.0.200-10.0.0.254"}, "10.0.0.1", 0, "", ""},
		{"ok-none", "10.0.0.0/24", nil, "10.0.0.1", 0, "", ""},
		{"ok-touching", "10.0.0.0/24", []string{"10.0.0.2-10.0.0.100", "10.0.0.101-10.0.0.254"}, "", 0, "", ""},
		{"ok-v4-31-all", "10.0.0.0/31", []string{"10.0.0.0-10.0.0.1"}, "", 0, "", ""},
		{"ok-v4-32", "10.0.0.5/32", []string{"10.0.0.5-10.0.0.5"}, "", 0, "", ""},
		{"ok-v6-last", "2001::/64", []string{"2001::1-2001::ffff:ffff:ffff:fffe"}, "2001::ffff:ffff:ffff:ffff", 0, "", ""},
		{"ok-v6-lla", "fe80::/80", []string{"fe80::2-fe80::ffff:fffa:ffff"}, "fe80::1", 0, "", ""},
		{"reversed", "10.0.0.0/24", []string{"10.0.0.9-10.0.0.2"}, "", 400, "InvalidAllocationPool",
			"The allocation pool {'start': '10.0.0.9', 'end': '10.0.0.2'} is not valid."},
		{"mixed-family", "10.0.0.0/24", []string{"10.0.0.2-::5"}, "", 400, "InvalidAllocationPool", ""},
		{"reversed-after-out-of-bounds", "10.0.0.0/24", []string{"10.0.1.2-10.0.1.5", "10.0.0.9-10.0.0.2"}, "", 400, "InvalidAllocationPool", ""},
		{"wrong-family", "10.0.0.0/24", []string{"2001::1-2001::5"}, "", 400, "InvalidAllocationPool",
			"The allocation pool 2001::1-2001::5 is not valid."},
		{"network-address", "10.0.0.0/24", []string{"10.0.0.0-10.0.0.5"}, "", 400, "OutOfBoundsAllocationPool",
			"The allocation pool 10.0.0.0-10.0.0.5 spans beyond the subnet cidr 10.0.0.0/24."},
		{"broadcast", "10.0.0.0/24", []string{"10.0.0.5-10.0.0.255"}, "", 400, "OutOfBoundsAllocationPool", ""},
		{"outside", "10.0.0.0/24", []string{"10.0.1.5-10.0.1.6"}, "", 400, "OutOfBoundsAllocationPool", ""},
		{"v6-anycast", "2001::/64", []string{"2001::-2001::5"}, "", 400, "OutOfBoundsAllocationPool", ""},
		{"v6-128", "2001::5/128", []string{"2001::5-2001::5"}, "", 400, "OutOfBoundsAllocationPool", ""},
		{"overlap", "10.0.0.0/24", []string{"10.0.0.2-10.0.0.100", "10.0.0.100-10.0.0.254"}, "", 409, "OverlappingAllocationPools",
			"Found overlapping allocation pools: 10.0.0.2-10.0.0.100 10.0.0.100-10.0.0.254 for subnet 10.0.0.0/24."},
		{"overlap-first-pair", "10.0.0.0/24", []string{"10.0.0.50-10.0.0.60", "10.0.0.2-10.0.0.10", "10.0.0.5-10.0.0.70"}, "", 409, "OverlappingAllocationPools",
			"Found overlapping allocation pools: 10.0.0.50-10.0.0.60 10.0.0.5-10.0.0.70 for subnet 10.0.0.0/24."},
		{"duplicate", "10.0.0.0/24", []string{"10.0.0.2-10.0.0.9", "10.0.0.2-10.0.0.9"}, "", 409, "OverlappingAllocationPools", ""},
		{"gateway-in-pool", "10.0.0.0/24", []string{"10.0.0.1-10.0.0.254"}, "10.0.0.1", 409, "GatewayConflictWithAllocationPools",
			"Gateway ip 10.0.0.1 conflicts with allocation pool 10.0.0.1-10.0.0.254."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pools := make([]Range, len(tc.pools))
			for i, s := range tc.pools {
				pools[i] = rng(s)
			}
			err := ValidatePools(pfx(tc.cidr), pools, ip(tc.gw))
			if tc.typ == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkFault(t, err, tc.status, tc.typ, tc.msg)
		})
	}
}

func TestParsePool(t *testing.T) {
	r, err := ParsePool("10.0.0.2", "10.0.0.9")
	if err != nil || r != rng("10.0.0.2-10.0.0.9") {
		t.Fatalf("ParsePool = %v, %v", r, err)
	}
	_, err = ParsePool("10.0.0.x", "10.0.0.9")
	checkFault(t, err, 400, "HTTPBadRequest", "'10.0.0.x' is not a valid IP address")
	_, err = ParsePool("10.0.0.9", "10.0.0.2")
	checkFault(t, err, 400, "InvalidAllocationPool", "The allocation pool {'start': '10.0.0.9', 'end': '10.0.0.2'} is not valid.")
	_, err = ParsePool("10.0.0.9", "::1")
	checkFault(t, err, 400, "InvalidAllocationPool", "")
}

func TestRangeJSON(t *testing.T) {
	b, err := json.Marshal([]Range{rng("10.0.0.2-10.0.0.254")})
	if err != nil || string(b) != `[{"start":"10.0.0.2","end":"10.0.0.254"}]` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var back []Range
	if err := json.Unmarshal([]byte(`[{"start":"2001::1","end":"2001::ff"}]`), &back); err != nil || back[0] != rng("2001::1-2001::ff") {
		t.Fatalf("Unmarshal = %v, %v", back, err)
	}
}

func TestRangeContains(t *testing.T) {
	r := rng("10.0.0.2-10.0.0.9")
	tests := []struct {
		name, ip string
		want     bool
	}{
		{"start", "10.0.0.2", true},
		{"end", "10.0.0.9", true},
		{"below", "10.0.0.1", false},
		{"above", "10.0.0.10", false},
		{"mapped", "::ffff:10.0.0.5", false},
		{"zero", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.Contains(ip(tc.ip)); got != tc.want {
				t.Fatalf("Contains(%s) = %v", tc.ip, got)
			}
		})
	}
	if (Range{}).Contains(ip("10.0.0.1")) {
		t.Fatal("zero Range contains nothing")
	}
}

func TestPoolSize(t *testing.T) {
	tests := []struct {
		name  string
		pools []string
		want  string
	}{
		{"none", nil, "0"},
		{"one", []string{"10.0.0.5-10.0.0.5"}, "1"},
		{"v4-24", []string{"10.0.0.2-10.0.0.254"}, "253"},
		{"two", []string{"10.0.0.1-10.0.0.99", "10.0.0.101-10.0.0.254"}, "253"},
		{"v4-all", []string{"0.0.0.0-255.255.255.255"}, "4294967296"},
		{"v6-64", []string{"2001::1-2001::ffff:ffff:ffff:ffff"}, "18446744073709551615"},
		{"v6-all", []string{"::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, "340282366920938463463374607431768211456"},
		{"invalid-ignored", []string{"10.0.0.9-10.0.0.2"}, "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pools := make([]Range, len(tc.pools))
			for i, s := range tc.pools {
				pools[i] = rng(s)
			}
			if got := PoolSize(pools).String(); got != tc.want {
				t.Fatalf("PoolSize = %s, want %s", got, tc.want)
			}
		})
	}
	if got := PrefixSize(pfx("2001::/64")).String(); got != "18446744073709551616" {
		t.Fatalf("PrefixSize /64 = %s", got)
	}
	if got := PrefixSize(pfx("10.0.0.0/24")).String(); got != "256" {
		t.Fatalf("PrefixSize /24 = %s", got)
	}
}

func TestCountInPools(t *testing.T) {
	pools := []Range{rng("10.0.0.2-10.0.0.9"), rng("10.0.0.20-10.0.0.29")}
	ips := []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.9"), ip("10.0.0.15"), ip("10.0.0.25"), ip("2001::1")}
	if got := CountInPools(pools, ips); got != 3 {
		t.Fatalf("CountInPools = %d, want 3", got)
	}
	if !PoolsContain(pools, ip("10.0.0.21")) || PoolsContain(pools, ip("10.0.0.10")) {
		t.Fatal("PoolsContain wrong")
	}
}

func TestDefaultGateway(t *testing.T) {
	tests := []struct {
		name, cidr, want string
	}{
		{"v4", "10.0.0.0/24", "10.0.0.1"},
		{"v4-host-bits", "10.0.0.9/24", "10.0.0.1"},
		{"v4-31", "10.0.0.0/31", "10.0.0.1"},
		{"v4-32-outside", "10.0.0.5/32", "10.0.0.6"},
		{"v4-32-top", "255.255.255.255/32", ""},
		{"v6-anycast", "2001:db8::/64", "2001:db8::"},
		{"v6-pd", "::/64", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DefaultGateway(pfx(tc.cidr)); got != ip(tc.want) {
				t.Fatalf("DefaultGateway(%s) = %v, want %s", tc.cidr, got, tc.want)
			}
		})
	}
}

func TestValidateGateway(t *testing.T) {
	tests := []struct {
		name, cidr, gw, msg string
	}{
		{"ok", "10.0.0.0/24", "10.0.0.1", ""},
		{"none", "10.0.0.0/24", "", ""},
		{"outside-on-link", "10.0.0.0/24", "192.168.0.1", ""},
		{"network", "10.0.0.0/24", "10.0.0.0", "Invalid input for operation: Gateway is not valid on subnet."},
		{"broadcast", "10.0.0.0/24", "10.0.0.255", "Invalid input for operation: Gateway is not valid on subnet."},
		{"v4-31-any", "10.0.0.0/31", "10.0.0.1", "Invalid input for operation: Gateway is not valid on subnet."},
		{"v4-31-outside", "10.14.0.20/31", "10.14.0.19", ""},
		{"v6-network-ok", "2001::/64", "2001::", ""},
		{"v6-last-ok", "2001::/112", "2001::ffff", ""},
		{"v6-lla-outside", "2001::/64", "fe80::1", ""},
		{"family", "10.0.0.0/24", "::1", "Invalid input for operation: gateway_ip '::1' does not match the ip_version '4'."},
		{"mapped", "10.0.0.0/24", "::ffff:10.0.0.1", "Invalid input for operation: gateway_ip '::ffff:10.0.0.1' does not match the ip_version '4'."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateGateway(pfx(tc.cidr), ip(tc.gw))
			if tc.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkFault(t, err, 400, "InvalidInput", tc.msg)
		})
	}
}

func TestCheckSubnetIP(t *testing.T) {
	tests := []struct {
		name, cidr, ip string
		router, want   bool
	}{
		{"v4-host", "10.0.0.0/24", "10.0.0.5", false, true},
		{"v4-network", "10.0.0.0/24", "10.0.0.0", true, false},
		{"v4-broadcast", "10.0.0.0/24", "10.0.0.255", true, false},
		{"v4-outside", "10.0.0.0/24", "10.0.1.5", false, false},
		{"v6-anycast-port", "2001::/64", "2001::", false, false},
		{"v6-anycast-router", "2001::/64", "2001::", true, true},
		{"v6-host", "2001::/64", "2001::5", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CheckSubnetIP(pfx(tc.cidr), ip(tc.ip), tc.router); got != tc.want {
				t.Fatalf("CheckSubnetIP = %v", got)
			}
		})
	}
}

func TestOverlaps(t *testing.T) {
	tests := []struct {
		name, a, b string
		want       bool
	}{
		{"same", "10.0.0.0/24", "10.0.0.0/24", true},
		{"contained", "10.0.0.0/8", "10.1.0.0/16", true},
		{"adjacent", "10.0.0.0/25", "10.0.0.128/25", false},
		{"host-bits", "10.0.0.5/24", "10.0.0.200/32", true},
		{"families", "0.0.0.0/0", "::/0", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Overlaps(pfx(tc.a), pfx(tc.b)); got != tc.want {
				t.Fatalf("Overlaps = %v", got)
			}
		})
	}
}
