package ipam

import (
	"fmt"
	"testing"
)

func TestValidateHostRoute(t *testing.T) {
	tests := []struct {
		name, dest, nexthop string
		version             int
		typ, msg            string
	}{
		{"ok", "10.1.0.0/16", "10.0.0.254", 4, "", ""},
		{"default", "0.0.0.0/0", "10.0.0.1", 4, "", ""},
		{"v6", "2001:db8:1::/48", "2001:db8::1", 6, "", ""},
		{"any-version", "2001:db8:1::/48", "2001:db8::1", 0, "", ""},
		{"dest-host-bits", "10.1.0.1/16", "10.0.0.254", 4, "HTTPBadRequest", "'10.1.0.1/16' is not a valid CIDR"},
		{"dest-loopback", "127.0.0.0/8", "10.0.0.254", 4, "HTTPBadRequest", "'127.0.0.0/8' is not a routable CIDR"},
		{"nexthop-bad", "10.1.0.0/16", "10.0.0", 4, "HTTPBadRequest", "'10.0.0' is not a valid IP address"},
		{"nexthop-version", "10.1.0.0/16", "2001::1", 4, "InvalidInput",
			"Invalid input for operation: nexthop '2001::1' does not match the ip_version '4'."},
		{"dest-version", "2001:db8::/64", "10.0.0.1", 4, "InvalidInput",
			"Invalid input for operation: destination '2001:db8::/64' does not match the ip_version '4'."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ValidateHostRoute(tc.dest, tc.nexthop, tc.version)
			if tc.typ == "" {
				if err != nil || h.Destination != pfx(tc.dest) || h.NextHop != ip(tc.nexthop) {
					t.Fatalf("ValidateHostRoute = %v, %v", h, err)
				}
				return
			}
			checkFault(t, err, 400, tc.typ, tc.msg)
		})
	}
}

func TestValidateHostRoutes(t *testing.T) {
	r1 := RawRoute{"10.1.0.0/16", "10.0.0.254"}
	r2 := RawRoute{"10.2.0.0/16", "10.0.0.254"}
	r6 := RawRoute{"2001:db8::/64", "2001::1"}
	bad := RawRoute{"10.2.0.0/16", "x"}
	tests := []struct {
		name   string
		routes []RawRoute
		max    int
		typ    string
		msg    string
	}{
		{"ok", []RawRoute{r1, r2}, 20, "", ""},
		{"none", nil, 20, "", ""},
		{"no-limit", []RawRoute{r1, r2}, -1, "", ""},
		{"duplicate", []RawRoute{r1, r2, r1}, 20, "HTTPBadRequest",
			"Duplicate hostroute '{'destination': '10.1.0.0/16', 'nexthop': '10.0.0.254'}'"},
		{"too-many", []RawRoute{r1, r2}, 1, "HostRoutesExhausted",
			"Unable to complete operation for new subnet. The number of host routes exceeds the limit 1."},
		{"invalid-before-count", []RawRoute{r1, bad}, 1, "HTTPBadRequest", ""},
		{"count-before-version", []RawRoute{r6, r1}, 1, "HostRoutesExhausted", ""},
		{"version", []RawRoute{r1, r6}, 20, "InvalidInput", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ValidateHostRoutes(tc.routes, 4, tc.max, "")
			if tc.typ == "" {
				if err != nil || len(got) != len(tc.routes) {
					t.Fatalf("ValidateHostRoutes = %v, %v", got, err)
				}
				return
			}
			checkFault(t, err, 400, tc.typ, tc.msg)
		})
	}
}

func TestValidateHostRoutesManyDuplicates(t *testing.T) {
	routes := make([]RawRoute, 0, 1001)
	for i := range 1000 {
		routes = append(routes, RawRoute{fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), "10.0.0.1"})
	}
	if _, err := ValidateHostRoutes(routes, 4, -1, "x"); err != nil {
		t.Fatal(err)
	}
	routes = append(routes, routes[500])
	_, err := ValidateHostRoutes(routes, 4, -1, "x")
	checkFault(t, err, 400, "HTTPBadRequest", "")
}

func TestValidateNameservers(t *testing.T) {
	tests := []struct {
		name    string
		servers []string
		version int
		max     int
		typ     string
		msg     string
	}{
		{"ok", []string{"8.8.8.8", "1.1.1.1"}, 4, 5, "", ""},
		{"none", nil, 4, 5, "", ""},
		{"v6", []string{"2001:4860:4860::8888"}, 6, 5, "", ""},
		{"invalid", []string{"8.8.8"}, 4, 5, "HTTPBadRequest",
			"'8.8.8' is not a valid nameserver. '8.8.8' is not a valid IP address"},
		{"leading-zero", []string{"08.8.8.8"}, 4, 5, "HTTPBadRequest",
			"'08.8.8.8' is not a valid nameserver. '08.8.8.8' is not an accepted IP address, '8.8.8.8' is recommended"},
		{"duplicate", []string{"8.8.8.8", "8.8.8.8"}, 4, 5, "HTTPBadRequest", "Duplicate nameserver '8.8.8.8'"},
		{"too-many", []string{"1.1.1.1", "1.1.1.2", "1.1.1.3"}, 4, 2, "DNSNameServersExhausted",
			"Unable to complete operation for sub-1. The number of DNS nameservers exceeds the limit 2."},
		{"version", []string{"8.8.8.8", "::1"}, 4, 5, "InvalidInput",
			"Invalid input for operation: dns_nameserver '::1' does not match the ip_version '4'."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ValidateNameservers(tc.servers, tc.version, tc.max, "sub-1")
			if tc.typ == "" {
				if err != nil || len(got) != len(tc.servers) {
					t.Fatalf("ValidateNameservers = %v, %v", got, err)
				}
				return
			}
			checkFault(t, err, 400, tc.typ, tc.msg)
		})
	}
}
