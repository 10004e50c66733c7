package server_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"muon/internal/server/servertest"
)

type pool = subnets.AllocationPool

func TestSubnetCreate(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		tests := []struct {
			name   string
			req    body // network_id is filled in
			status int
			fault  string
			check  func(t *testing.T, s subnet)
		}{
			{"v4-defaults", body{"ip_version": 4, "cidr": "10.1.0.0/24"}, 201, "", func(t *testing.T, s subnet) {
				wantSubnet(t, s, "10.1.0.0/24", ptr("10.1.0.1"), []pool{{Start: "10.1.0.2", End: "10.1.0.254"}})
				if !s.EnableDHCP || s.IPv6RAMode != nil || s.IPv6AddressMode != nil || s.SubnetPoolID != nil {
					t.Errorf("enable_dhcp %v ra %v addr %v pool %v", s.EnableDHCP, s.IPv6RAMode, s.IPv6AddressMode, s.SubnetPoolID)
				}
				if s.DNSNameservers == nil || len(s.DNSNameservers) > 0 || s.HostRoutes == nil || len(s.HostRoutes) > 0 || s.ServiceTypes == nil || len(s.ServiceTypes) > 0 {
					t.Errorf("dns %v routes %v service_types %v, want [] each", s.DNSNameservers, s.HostRoutes, s.ServiceTypes)
				}
			}},
			{"v4-small", body{"ip_version": 4, "cidr": "10.1.1.0/30"}, 201, "", func(t *testing.T, s subnet) {
				wantSubnet(t, s, "10.1.1.0/30", ptr("10.1.1.1"), []pool{{Start: "10.1.1.2", End: "10.1.1.2"}})
			}},
			{"gateway-none", body{"ip_version": 4, "cidr": "10.1.2.0/24", "gateway_ip": nil}, 201, "", func(t *testing.T, s subnet) {
				wantSubnet(t, s, "10.1.2.0/24", nil, []pool{{Start: "10.1.2.1", End: "10.1.2.254"}})
			}},
			{"gateway-last", body{"ip_version": 4, "cidr": "10.1.3.0/24", "gateway_ip": "10.1.3.254"}, 201, "", func(t *testing.T, s subnet) {
				wantSubnet(t, s, "10.1.3.0/24", ptr("10.1.3.254"), []pool{{Start: "10.1.3.1", End: "10.1.3.253"}})
			}},
			{"pools", body{"ip_version": 4, "cidr": "10.1.4.0/24", "allocation_pools": []pool{{Start: "10.1.4.10", End: "10.1.4.20"}, {Start: "10.1.4.30", End: "10.1.4.40"}}}, 201, "", func(t *testing.T, s subnet) {
				wantSubnet(t, s, "10.1.4.0/24", ptr("10.1.4.1"), []pool{{Start: "10.1.4.10", End: "10.1.4.20"}, {Start: "10.1.4.30", End: "10.1.4.40"}})
			}},
			{"dns-and-routes", body{"ip_version": 4, "cidr": "10.1.5.0/24", "dns_nameservers": []string{"8.8.8.8", "1.1.1.1"},
				"host_routes": []subnets.HostRoute{{DestinationCIDR: "192.168.0.0/16", NextHop: "10.1.5.5"}}}, 201, "", func(t *testing.T, s subnet) {
				if !slices.Equal(s.DNSNameservers, []string{"8.8.8.8", "1.1.1.1"}) {
					t.Errorf("dns_nameservers %v, want the order given", s.DNSNameservers)
				}
				if len(s.HostRoutes) != 1 || s.HostRoutes[0].DestinationCIDR != "192.168.0.0/16" || s.HostRoutes[0].NextHop != "10.1.5.5" {
					t.Errorf("host_routes %v", s.HostRoutes)
				}
			}},
			{"dhcp-off", body{"ip_version": 4, "cidr": "10.1.6.0/24", "enable_dhcp": false}, 201, "", func(t *testing.T, s subnet) {
				if s.EnableDHCP {
					t.Error("enable_dhcp stayed on")
				}
			}},
			{"v6-defaults", body{"ip_version": 6, "cidr": "2001:db8:1::/64"}, 201, "", func(t *testing.T, s subnet) {
				wantSubnet(t, s, "2001:db8:1::/64", ptr("2001:db8:1::"), []pool{{Start: "2001:db8:1::1", End: "2001:db8:1:0:ffff:ffff:ffff:ffff"}})
			}},
			{"v6-slaac", body{"ip_version": 6, "cidr": "2001:db8:2::/64", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}, 201, "", func(t *testing.T, s subnet) {
				if deref(s.IPv6RAMode) != "slaac" || deref(s.IPv6AddressMode) != "slaac" {
					t.Errorf("modes %v %v", deref(s.IPv6RAMode), deref(s.IPv6AddressMode))
				}
			}},
			{"v6-stateful", body{"ip_version": 6, "cidr": "2001:db8:3::/80", "ipv6_address_mode": "dhcpv6-stateful"}, 201, "", func(t *testing.T, s subnet) {
				if deref(s.IPv6AddressMode) != "dhcpv6-stateful" || s.IPv6RAMode != nil {
					t.Errorf("modes %v %v", deref(s.IPv6RAMode), deref(s.IPv6AddressMode))
				}
			}},
			// Neutron accepts host bits and stores the network.
			{"cidr-host-bits", body{"ip_version": 4, "cidr": "10.1.7.5/24"}, 201, "", func(t *testing.T, s subnet) {
				if s.CIDR != "10.1.7.0/24" {
					t.Errorf("cidr %s", s.CIDR)
				}
			}},
			{"missing-ip-version", body{"cidr": "10.2.0.0/24"}, 400, "HTTPBadRequest", nil},
			{"version-mismatch", body{"ip_version": 4, "cidr": "2001:db8:9::/64"}, 400, "InvalidInput", nil},
			{"cidr-no-prefix", body{"ip_version": 4, "cidr": "10.2.1.0"}, 400, "HTTPBadRequest", nil},
			{"pool-out-of-bounds", body{"ip_version": 4, "cidr": "10.2.2.0/24", "allocation_pools": []pool{{Start: "10.2.2.10", End: "10.2.3.10"}}}, 400, "OutOfBoundsAllocationPool", nil},
			{"pool-overlap", body{"ip_version": 4, "cidr": "10.2.3.0/24", "allocation_pools": []pool{{Start: "10.2.3.10", End: "10.2.3.20"}, {Start: "10.2.3.15", End: "10.2.3.30"}}}, 409, "OverlappingAllocationPools", nil},
			{"gateway-in-pool", body{"ip_version": 4, "cidr": "10.2.4.0/24", "gateway_ip": "10.2.4.15", "allocation_pools": []pool{{Start: "10.2.4.10", End: "10.2.4.20"}}}, 409, "GatewayConflictWithAllocationPools", nil},
			{"gateway-broadcast", body{"ip_version": 4, "cidr": "10.2.5.0/24", "gateway_ip": "10.2.5.255"}, 400, "InvalidInput", nil},
			{"dns-too-many", body{"ip_version": 4, "cidr": "10.2.6.0/24", "dns_nameservers": []string{"1.0.0.1", "1.0.0.2", "1.0.0.3", "1.0.0.4", "1.0.0.5", "1.0.0.6"}}, 400, "DNSNameServersExhausted", nil},
			{"dns-duplicate", body{"ip_version": 4, "cidr": "10.2.7.0/24", "dns_nameservers": []string{"1.0.0.1", "1.0.0.1"}}, 400, "HTTPBadRequest", nil},
			{"route-bad-nexthop", body{"ip_version": 4, "cidr": "10.2.8.0/24", "host_routes": []subnets.HostRoute{{DestinationCIDR: "192.168.0.0/16", NextHop: "nope"}}}, 400, "HTTPBadRequest", nil},
			{"v6-modes-differ", body{"ip_version": 6, "cidr": "2001:db8:a::/64", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"}, 400, "InvalidInput", nil},
			{"v6-slaac-not-64", body{"ip_version": 6, "cidr": "2001:db8:b::/80", "ipv6_address_mode": "slaac"}, 400, "InvalidInput", nil},
			{"v6-mode-on-v4", body{"ip_version": 4, "cidr": "10.2.9.0/24", "ipv6_address_mode": "slaac"}, 400, "InvalidInput", nil},
			{"v6-mode-dhcp-off", body{"ip_version": 6, "cidr": "2001:db8:c::/64", "ipv6_address_mode": "slaac", "enable_dhcp": false}, 400, "InvalidInput", nil},
			{"v6-bad-mode", body{"ip_version": 6, "cidr": "2001:db8:d::/64", "ipv6_address_mode": "eui"}, 400, "HTTPBadRequest", nil},
			{"dhcp-on-32", body{"ip_version": 4, "cidr": "10.2.10.1/32"}, 400, "InvalidInput", nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				n := mkNet(t, c, body{"name": tc.name})
				tc.req["network_id"] = n.ID
				r := subnets.Create(bg, c, tc.req)
				if tc.status != 201 {
					wantFault(t, r.Err, tc.status, tc.fault)
					// Nothing is left behind.
					if got := must[network](t, networks.Get(bg, c, n.ID), "network"); len(got.Subnets) != 0 {
						t.Errorf("refused subnet left %v on the network", got.Subnets)
					}
					return
				}
				s := must[subnet](t, r, "subnet")
				if s.NetworkID != n.ID || s.ProjectID != "p1" {
					t.Errorf("network_id %s project %s", s.NetworkID, s.ProjectID)
				}
				tc.check(t, s)
				if got := must[network](t, networks.Get(bg, c, n.ID), "network"); !slices.Equal(got.Subnets, []string{s.ID}) {
					t.Errorf("network's subnets %v, want [%s]", got.Subnets, s.ID)
				}
			})
		}
	})
}

func wantSubnet(t *testing.T, s subnet, cidr string, gw *string, pools []pool) {
	t.Helper()
	if s.CIDR != cidr {
		t.Errorf("cidr %s, want %s", s.CIDR, cidr)
	}
	if deref(s.GatewayIP) != deref(gw) {
		t.Errorf("gateway_ip %v, want %v", deref(s.GatewayIP), deref(gw))
	}
	if !slices.Equal(s.AllocationPools, pools) {
		t.Errorf("allocation_pools %v, want %v", s.AllocationPools, pools)
	}
}

func TestSubnetRules(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c, admin := e.Client("p1", false), e.Admin()

		t.Run("no-overlap-in-network", func(t *testing.T) {
			n, _ := netWithSubnet(t, c, "10.10.0.0/16")
			for _, cidr := range []string{"10.10.5.0/24", "10.0.0.0/8", "10.10.0.0/16"} {
				_, err := subnets.Create(bg, c, body{"network_id": n.ID, "ip_version": 4, "cidr": cidr}).Extract()
				wantFault(t, err, 400, "InvalidInput")
			}
			mkSubnet(t, c, body{"network_id": n.ID, "ip_version": 4, "cidr": "10.11.0.0/24"})
			// Another network may reuse the range.
			netWithSubnet(t, c, "10.10.0.0/16")
		})

		t.Run("update", func(t *testing.T) {
			_, s := netWithSubnet(t, c, "10.12.0.0/24")
			u := must[subnet](t, subnets.Update(bg, c, s.ID, subnets.UpdateOpts{
				Name:            ptr("renamed"),
				GatewayIP:       ptr("10.12.0.254"),
				DNSNameservers:  &[]string{"9.9.9.9"},
				HostRoutes:      &[]subnets.HostRoute{{DestinationCIDR: "0.0.0.0/0", NextHop: "10.12.0.1"}},
				EnableDHCP:      ptr(false),
				AllocationPools: []pool{{Start: "10.12.0.100", End: "10.12.0.200"}},
			}), "subnet")
			wantSubnet(t, u, "10.12.0.0/24", ptr("10.12.0.254"), []pool{{Start: "10.12.0.100", End: "10.12.0.200"}})
			if u.Name != "renamed" || u.EnableDHCP || !slices.Equal(u.DNSNameservers, []string{"9.9.9.9"}) || len(u.HostRoutes) != 1 || u.RevisionNumber <= s.RevisionNumber {
				t.Errorf("updated %+v", u)
			}
			u = must[subnet](t, subnets.Update(bg, c, s.ID, upd{body{"gateway_ip": nil}}), "subnet")
			if u.GatewayIP != nil {
				t.Errorf("gateway_ip %v after setting null", *u.GatewayIP)
			}
			for name, b := range map[string]body{
				"cidr":       {"cidr": "10.13.0.0/24"},
				"ip_version": {"ip_version": 6},
				"network_id": {"network_id": s.NetworkID},
				"ra-mode":    {"ipv6_ra_mode": "slaac"},
			} {
				_, err := subnets.Update(bg, c, s.ID, upd{b}).Extract()
				if st, typ := faultOf(err); st != 400 || typ != "HTTPBadRequest" {
					t.Errorf("update %s: %d %s, want 400 HTTPBadRequest", name, st, typ)
				}
			}
			_, err := subnets.Update(bg, c, s.ID, subnets.UpdateOpts{GatewayIP: ptr("10.12.0.150")}).Extract()
			wantFault(t, err, 409, "GatewayConflictWithAllocationPools")
		})

		t.Run("service-types", func(t *testing.T) {
			n := mkNet(t, admin, body{"name": "svc"})
			_, err := subnets.Create(bg, c, body{"network_id": mkNet(t, c, body{}).ID, "ip_version": 4, "cidr": "10.20.0.0/24", "service_types": []string{"network:dhcp"}}).Extract()
			wantFault(t, err, 403, "PolicyNotAuthorized")
			dhcp := mkSubnet(t, admin, body{"network_id": n.ID, "ip_version": 4, "cidr": "10.20.1.0/24", "service_types": []string{"network:dhcp"}})
			plain := mkSubnet(t, admin, body{"network_id": n.ID, "ip_version": 4, "cidr": "10.20.2.0/24"})
			if !slices.Equal(dhcp.ServiceTypes, []string{"network:dhcp"}) {
				t.Errorf("service_types %v", dhcp.ServiceTypes)
			}
			for owner, want := range map[string]string{"network:dhcp": dhcp.ID, "compute:nova": plain.ID, "": plain.ID} {
				p := mkPort(t, admin, body{"network_id": n.ID, "device_owner": owner})
				if len(p.FixedIPs) != 1 || p.FixedIPs[0].SubnetID != want {
					t.Errorf("owner %q got %v, want an address of %s", owner, p.FixedIPs, want)
				}
			}
		})

		t.Run("member-on-others-network", func(t *testing.T) {
			shared := mkNet(t, admin, body{"shared": true})
			_, err := subnets.Create(bg, c, body{"network_id": shared.ID, "ip_version": 4, "cidr": "10.21.0.0/24"}).Extract()
			if st, _ := faultOf(err); st != 403 {
				t.Errorf("subnet on another project's shared network: %v, want 403", err)
			}
			private := mkNet(t, admin, body{})
			_, err = subnets.Create(bg, c, body{"network_id": private.ID, "ip_version": 4, "cidr": "10.21.0.0/24"}).Extract()
			wantFault(t, err, 404, "NetworkNotFound")
		})
	})
}

// eui64 is the SLAAC address of mac in a /64.
func eui64(prefix, mac string) string {
	var b [6]byte
	fmt.Sscanf(mac, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5])
	p := netip.MustParsePrefix(prefix).Addr().As16()
	copy(p[8:], []byte{b[0] ^ 2, b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]})
	return netip.AddrFrom16(p).String()
}

func TestSLAAC(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		n, v4 := netWithSubnet(t, c, "10.30.0.0/24")
		early := mkPort(t, c, body{"network_id": n.ID, "mac_address": "fa:16:3e:11:22:33"})
		slaac := mkSubnet(t, c, body{"network_id": n.ID, "ip_version": 6, "cidr": "2001:db8:30::/64",
			"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"})
		stateless := mkSubnet(t, c, body{"network_id": n.ID, "ip_version": 6, "cidr": "2001:db8:31::/64",
			"ipv6_address_mode": "dhcpv6-stateless"})

		addrsOn := func(p port, sub string) []string {
			var out []string
			for _, f := range p.FixedIPs {
				if f.SubnetID == sub {
					out = append(out, f.IPAddress)
				}
			}
			return out
		}
		t.Run("existing-port", func(t *testing.T) {
			p := must[port](t, ports.Get(bg, c, early.ID), "port")
			if got, want := addrsOn(p, slaac.ID), eui64(slaac.CIDR, "fa:16:3e:11:22:33"); !slices.Equal(got, []string{want}) {
				t.Errorf("port made before the SLAAC subnet has %v there, want [%s]", got, want)
			}
			if want := "2001:db8:30:0:f816:3eff:fe11:2233"; eui64(slaac.CIDR, early.MACAddress) != want {
				t.Fatalf("test's eui64 is wrong: %s", eui64(slaac.CIDR, early.MACAddress))
			}
			if len(addrsOn(p, v4.ID)) != 1 {
				t.Errorf("v4 address lost: %v", p.FixedIPs)
			}
		})
		t.Run("new-port", func(t *testing.T) {
			p := mkPort(t, c, body{"network_id": n.ID})
			if len(p.FixedIPs) != 3 {
				t.Fatalf("fixed_ips %v, want one v4 and two SLAAC addresses", p.FixedIPs)
			}
			for _, s := range []subnet{slaac, stateless} {
				if got := addrsOn(p, s.ID); !slices.Equal(got, []string{eui64(s.CIDR, p.MACAddress)}) {
					t.Errorf("on %s: %v, want the EUI-64 of %s", s.CIDR, got, p.MACAddress)
				}
			}
		})
		t.Run("no-fixed-address", func(t *testing.T) {
			_, err := ports.Create(bg, c, body{"network_id": n.ID, "fixed_ips": []any{map[string]any{"subnet_id": slaac.ID, "ip_address": "2001:db8:30::5"}}}).Extract()
			wantFault(t, err, 400, "InvalidInput")
		})
		t.Run("delete-releases", func(t *testing.T) {
			// SLAAC addresses do not keep the subnet alive.
			if err := subnets.Delete(bg, c, slaac.ID).ExtractErr(); err != nil {
				t.Fatalf("delete SLAAC subnet with ports: %v", err)
			}
			p := must[port](t, ports.Get(bg, c, early.ID), "port")
			if len(addrsOn(p, slaac.ID)) != 0 || len(addrsOn(p, v4.ID)) != 1 {
				t.Errorf("after delete: %v", p.FixedIPs)
			}
		})
	})
}

func TestInUse(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)

		t.Run("subnet", func(t *testing.T) {
			n, s := netWithSubnet(t, c, "10.40.0.0/24")
			dhcp := mkPort(t, c, body{"network_id": n.ID, "device_owner": "network:dhcp"})
			user := mkPort(t, c, body{"network_id": n.ID, "device_owner": "compute:nova", "device_id": "vm1"})
			err := subnets.Delete(bg, c, s.ID).ExtractErr()
			wantFault(t, err, 409, "SubnetInUse")
			if err := ports.Delete(bg, c, user.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if err := subnets.Delete(bg, c, s.ID).ExtractErr(); err != nil {
				t.Fatalf("a DHCP port blocked the subnet delete: %v", err)
			}
			p := must[port](t, ports.Get(bg, c, dhcp.ID), "port")
			if len(p.FixedIPs) != 0 {
				t.Errorf("DHCP port keeps %v of the deleted subnet", p.FixedIPs)
			}
			_, err = subnets.Get(bg, c, s.ID).Extract()
			wantFault(t, err, 404, "SubnetNotFound")
		})
		t.Run("network", func(t *testing.T) {
			n, s := netWithSubnet(t, c, "10.41.0.0/24")
			dhcp := mkPort(t, c, body{"network_id": n.ID, "device_owner": "network:dhcp"})
			user := mkPort(t, c, body{"network_id": n.ID})
			err := networks.Delete(bg, c, n.ID).ExtractErr()
			wantFault(t, err, 409, "NetworkInUse")
			if _, typ := faultOf(err); typ == "NetworkInUse" && !strings.Contains(err.Error(), user.ID) {
				t.Errorf("NetworkInUse does not name the blocking port %s: %v", user.ID, err)
			}
			if err := ports.Delete(bg, c, user.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if err := networks.Delete(bg, c, n.ID).ExtractErr(); err != nil {
				t.Fatalf("a DHCP port blocked the network delete: %v", err)
			}
			for _, err := range []error{
				networks.Get(bg, c, n.ID).Err, subnets.Get(bg, c, s.ID).Err, ports.Get(bg, c, dhcp.ID).Err,
			} {
				if st, _ := faultOf(err); st != 404 {
					t.Errorf("after network delete: %v, want 404", err)
				}
			}
		})
		t.Run("port-not-found", func(t *testing.T) {
			wantFault(t, ports.Delete(bg, c, "9b7e3c55-0000-4000-8000-000000000000").ExtractErr(), 404, "PortNotFound")
		})
	})
}

// TestNullLists: dns_nameservers, host_routes and allowed_address_pairs
// take null as an empty list, on create and update (neutron-lib's
// convert_none_to_empty_list).
func TestNullLists(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		n := mkNet(t, c, body{"name": "n"})
		s := rawOf(t, subnets.Create(bg, c, body{"network_id": n.ID, "cidr": "10.6.0.0/24", "ip_version": 4,
			"dns_nameservers": nil, "host_routes": nil}).Result, "subnet")
		empty := func(label string, v any) {
			t.Helper()
			if l, ok := v.([]any); !ok || len(l) != 0 {
				t.Errorf("%s: %#v, want []", label, v)
			}
		}
		empty("dns_nameservers", s["dns_nameservers"])
		empty("host_routes", s["host_routes"])
		id := s["id"].(string)
		must[subnet](t, subnets.Update(bg, c, id, upd{body{"dns_nameservers": []any{"10.6.0.53"}}}), "subnet")
		u := rawOf(t, subnets.Update(bg, c, id, upd{body{"dns_nameservers": nil, "host_routes": nil}}).Result, "subnet")
		empty("dns_nameservers after update", u["dns_nameservers"])
		empty("host_routes after update", u["host_routes"])

		p := rawOf(t, ports.Create(bg, c, body{"network_id": n.ID, "allowed_address_pairs": nil}).Result, "port")
		empty("allowed_address_pairs", p["allowed_address_pairs"])
		pid := p["id"].(string)
		rawOf(t, ports.Update(bg, c, pid, upd{body{"allowed_address_pairs": []any{map[string]any{"ip_address": "10.6.0.99"}}}}).Result, "port")
		p = rawOf(t, ports.Update(bg, c, pid, upd{body{"allowed_address_pairs": nil}}).Result, "port")
		empty("allowed_address_pairs after update", p["allowed_address_pairs"])
	})
}
