package ipam

import (
	"net/netip"
	"strings"
	"testing"
)

func pfxs(s string) []netip.Prefix {
	if s == "" {
		return nil
	}
	var out []netip.Prefix
	for _, p := range strings.Split(s, ",") {
		out = append(out, pfx(p))
	}
	return out
}

func pfxString(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

func TestCompact(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"one", "10.0.0.0/24", "10.0.0.0/24"},
		{"adjacent", "10.0.0.0/25,10.0.0.128/25", "10.0.0.0/24"},
		{"contained", "10.0.0.0/8,10.1.0.0/16", "10.0.0.0/8"},
		{"duplicate", "10.0.0.0/24,10.0.0.0/24", "10.0.0.0/24"},
		{"host-bits", "10.0.0.7/24", "10.0.0.0/24"},
		{"unaligned-run", "10.0.0.128/25,10.0.1.0/24", "10.0.0.128/25,10.0.1.0/24"},
		{"sorted", "192.168.0.0/16,10.0.0.0/8", "10.0.0.0/8,192.168.0.0/16"},
		{"three-to-two", "10.0.0.0/24,10.0.1.0/24,10.0.2.0/24", "10.0.0.0/23,10.0.2.0/24"},
		{"v4-then-v6", "2001:db8::/64,10.0.0.0/8,2001:db8:0:1::/64", "10.0.0.0/8,2001:db8::/63"},
		{"everything-v4", "0.0.0.0/1,128.0.0.0/1", "0.0.0.0/0"},
		{"everything-v6", "::/1,8000::/1", "::/0"},
		{"top", "255.255.255.255/32,255.255.255.254/32", "255.255.255.254/31"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pfxString(Compact(pfxs(tc.in))); got != tc.want {
				t.Fatalf("Compact(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestValidatePoolPrefixes(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		version int
		want    string
		typ     string
	}{
		{"ok", []string{"10.0.0.0/8"}, 0, "10.0.0.0/8", ""},
		{"compacted", []string{"10.10.0.0/17", "10.10.128.0/17"}, 4, "10.10.0.0/16", ""},
		{"host-bits", []string{"10.10.0.5/16"}, 0, "10.10.0.0/16", ""},
		{"whole-space", []string{"0.0.0.0/0"}, 0, "0.0.0.0/0", ""},
		{"empty", nil, 0, "", "EmptySubnetPoolPrefixList"},
		{"mixed", []string{"10.0.0.0/8", "2001:db8::/32"}, 0, "", "PrefixVersionMismatch"},
		{"wrong-version", []string{"10.0.0.0/8"}, 6, "", "PrefixVersionMismatch"},
		{"bad", []string{"10.0.0.0/8", "nope"}, 0, "", "HTTPBadRequest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ValidatePoolPrefixes(tc.in, tc.version)
			if tc.typ != "" {
				checkFault(t, err, 400, tc.typ, "")
				return
			}
			if err != nil || pfxString(got) != tc.want {
				t.Fatalf("ValidatePoolPrefixes = %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestAllocatePrefix(t *testing.T) {
	tests := []struct {
		name, pool, used string
		plen             int
		want             string
	}{
		{"first", "10.0.0.0/16", "", 24, "10.0.0.0/24"},
		{"next", "10.0.0.0/16", "10.0.0.0/24", 24, "10.0.1.0/24"},
		{"best-fit-small-hole", "10.0.0.0/16", "10.0.0.0/24,10.0.2.0/23", 24, "10.0.1.0/24"},
		{"best-fit-keeps-big-block", "10.0.0.0/16", "10.0.0.0/25", 26, "10.0.0.128/26"},
		{"smallest-block-wins-over-lower", "10.0.0.0/24,10.1.0.0/26", "", 26, "10.1.0.0/26"},
		{"equal-blocks-lowest", "10.2.0.0/24,10.1.0.0/24", "", 25, "10.1.0.0/25"},
		{"used-covers-all", "10.0.0.0/24", "10.0.0.0/24", 24, ""},
		{"too-big", "10.1.1.0/24,192.168.1.0/24", "", 21, ""},
		{"fragmented", "10.0.0.0/24", "10.0.0.0/26,10.0.0.128/26", 25, ""},
		{"used-other-family-ignored", "10.0.0.0/24", "2001:db8::/32", 24, "10.0.0.0/24"},
		{"used-outside", "10.0.0.0/24", "10.0.1.0/24", 25, "10.0.0.0/25"},
		{"v6", "2001:db8::/48", "2001:db8::/64", 64, "2001:db8:0:1::/64"},
		{"v6-whole-space", "::/0", "", 64, "::/64"},
		{"v4-whole-space", "0.0.0.0/0", "0.0.0.0/1", 1, "128.0.0.0/1"},
		{"exact", "10.0.0.0/24", "", 24, "10.0.0.0/24"},
		{"no-pool", "", "", 24, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AllocatePrefix(pfxs(tc.pool), pfxs(tc.used), tc.plen)
			if tc.want == "" {
				checkFault(t, err, 500, "SubnetAllocationError", "")
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("AllocatePrefix = %v, %v; want %s", got, err, tc.want)
			}
		})
	}
	_, err := AllocatePrefix(pfxs("10.1.1.0/24"), nil, 21)
	checkFault(t, err, 500, "SubnetAllocationError",
		"Failed to allocate subnet: Insufficient prefix space to allocate subnet size /21.")
	_, err = AllocatePrefix(pfxs("10.0.0.0/8"), nil, 33)
	checkFault(t, err, 400, "InvalidInput", "")
	_, err = AllocatePrefix(pfxs("10.0.0.0/8"), nil, -1)
	checkFault(t, err, 400, "InvalidInput", "")
}

func TestAllocateSpecific(t *testing.T) {
	tests := []struct {
		name, pool, used, want string
		ok                     bool
	}{
		{"free", "10.0.0.0/16", "", "10.0.5.0/24", true},
		{"whole", "10.0.0.0/16", "", "10.0.0.0/16", true},
		{"across-merged-prefixes", "10.0.0.0/25,10.0.0.128/25", "", "10.0.0.0/24", true},
		{"taken", "10.0.0.0/16", "10.0.5.0/24", "10.0.5.0/24", false},
		{"partly-taken", "10.0.0.0/16", "10.0.5.128/25", "10.0.5.0/24", false},
		{"outside", "10.0.0.0/24", "", "10.1.0.0/21", false},
		{"too-big", "10.1.0.0/24", "", "10.1.0.0/21", false},
		{"other-family", "10.0.0.0/8", "", "2001:db8::/64", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := AllocateSpecific(pfxs(tc.pool), pfxs(tc.used), pfx(tc.want))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkFault(t, err, 500, "SubnetAllocationError",
				"Failed to allocate subnet: Cannot allocate requested subnet from the available set of prefixes.")
		})
	}
}

func TestContainedIn(t *testing.T) {
	tests := []struct {
		name, p, pool string
		want          bool
	}{
		{"inside", "10.0.5.0/24", "10.0.0.0/16", true},
		{"equal", "10.0.0.0/16", "10.0.0.0/16", true},
		{"spans-two", "10.0.0.0/24", "10.0.0.0/25,10.0.0.128/25", true},
		{"bigger", "10.0.0.0/8", "10.0.0.0/16", false},
		{"outside", "192.168.0.0/24", "10.0.0.0/8", false},
		{"family", "2001:db8::/64", "0.0.0.0/0", false},
		{"no-pool", "10.0.0.0/24", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ContainedIn(pfx(tc.p), pfxs(tc.pool)); got != tc.want {
				t.Fatalf("ContainedIn = %v", got)
			}
		})
	}
}

func TestAvailable(t *testing.T) {
	got := pfxString(Available(pfxs("10.0.0.0/24"), pfxs("10.0.0.64/26,10.0.0.200/32")))
	want := "10.0.0.0/26,10.0.0.128/26,10.0.0.192/29,10.0.0.201/32,10.0.0.202/31,10.0.0.204/30,10.0.0.208/28,10.0.0.224/27"
	if got != want {
		t.Fatalf("Available = %s\nwant %s", got, want)
	}
}

func TestCheckPrefixLen(t *testing.T) {
	if err := CheckPrefixLen(24, 8, 32); err != nil {
		t.Fatal(err)
	}
	checkFault(t, CheckPrefixLen(30, 8, 28), 400, "MaxPrefixSubnetAllocationError",
		"Unable to allocate subnet with prefix length 30, maximum allowed prefix is 28.")
	checkFault(t, CheckPrefixLen(20, 21, 28), 400, "MinPrefixSubnetAllocationError",
		"Unable to allocate subnet with prefix length 20, minimum allowed prefix is 21.")
}

func TestValidatePrefixBounds(t *testing.T) {
	tests := []struct {
		name                   string
		version, min, max, def int
		typ, msg               string
	}{
		{"v4-defaults", 4, 8, 32, 8, "", ""},
		{"v6-defaults", 6, 64, 128, 64, "", ""},
		{"negative-min", 4, -1, 32, 8, "UnsupportedMinSubnetPoolPrefix", "Prefix '-1' not supported in IPv4 pool."},
		{"min-over-max", 4, 24, 16, 20, "IllegalSubnetPoolPrefixBounds", "Illegal prefix bounds: min_prefixlen=24, max_prefixlen=16."},
		{"max-over-family", 4, 8, 33, 8, "IllegalSubnetPoolPrefixBounds", "Illegal prefix bounds: max_prefixlen=33, ip_version_max=32."},
		{"default-under-min", 4, 16, 28, 8, "IllegalSubnetPoolPrefixBounds", "Illegal prefix bounds: default_prefixlen=8, min_prefixlen=16."},
		{"default-over-max", 6, 64, 96, 120, "IllegalSubnetPoolPrefixBounds", "Illegal prefix bounds: default_prefixlen=120, max_prefixlen=96."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePrefixBounds(tc.version, tc.min, tc.max, tc.def)
			if tc.typ == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkFault(t, err, 400, tc.typ, tc.msg)
		})
	}
}
