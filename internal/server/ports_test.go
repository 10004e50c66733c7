package server_test

import (
	"regexp"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/dns"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/extradhcpopts"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsbinding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsecurity"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"muon/internal/server/servertest"
)

var macRE = regexp.MustCompile(`^fa:16:3e:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$`)

func TestPortAddresses(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		n, s1 := netWithSubnet(t, c, "10.60.1.0/24")
		// Automatic addresses on s2 come from .100-.150, clear of the
		// ones the cases ask for by hand.
		s2 := mkSubnet(t, c, body{"network_id": n.ID, "ip_version": 4, "cidr": "10.60.2.0/24",
			"allocation_pools": []any{map[string]any{"start": "10.60.2.100", "end": "10.60.2.150"}}})
		other, otherSub := netWithSubnet(t, c, "10.61.0.0/24")
		mkPort(t, c, body{"network_id": n.ID, "fixed_ips": []any{map[string]any{"ip_address": "10.60.1.50"}}})
		mkPort(t, c, body{"network_id": n.ID, "mac_address": "fa:16:3e:00:00:01"})

		tests := []struct {
			name   string
			req    body // network_id is filled in
			status int
			fault  string
			want   []fixedIP // "" ip_address: any in the subnet
			mac    string    // "" for generated
		}{
			{"automatic", body{}, 201, "", []fixedIP{{SubnetID: "any"}}, ""},
			{"by-subnet", body{"fixed_ips": []any{map[string]any{"subnet_id": s2.ID}}}, 201, "", []fixedIP{{SubnetID: s2.ID}}, ""},
			{"by-ip", body{"fixed_ips": []any{map[string]any{"ip_address": "10.60.2.77"}}}, 201, "", []fixedIP{{s2.ID, "10.60.2.77"}}, ""},
			{"by-subnet-and-ip", body{"fixed_ips": []any{map[string]any{"subnet_id": s1.ID, "ip_address": "10.60.1.77"}}}, 201, "", []fixedIP{{s1.ID, "10.60.1.77"}}, ""},
			{"two", body{"fixed_ips": []any{map[string]any{"subnet_id": s1.ID}, map[string]any{"subnet_id": s2.ID}}}, 201, "", []fixedIP{{SubnetID: s1.ID}, {SubnetID: s2.ID}}, ""},
			{"none", body{"fixed_ips": []any{}}, 201, "", []fixedIP{}, ""},
			{"mac-given", body{"mac_address": "FA:16:3E:AB:CD:EF"}, 201, "", []fixedIP{{SubnetID: "any"}}, "fa:16:3e:ab:cd:ef"},
			{"mac-in-use", body{"mac_address": "fa:16:3e:00:00:01"}, 409, "MacAddressInUse", nil, ""},
			{"mac-bad", body{"mac_address": "fa:16:3e:00:01"}, 400, "HTTPBadRequest", nil, ""},
			{"ip-in-use", body{"fixed_ips": []any{map[string]any{"ip_address": "10.60.1.50"}}}, 409, "IpAddressAlreadyAllocated", nil, ""},
			{"ip-off-network", body{"fixed_ips": []any{map[string]any{"ip_address": "10.99.0.5"}}}, 400, "InvalidIpForNetwork", nil, ""},
			{"ip-off-subnet", body{"fixed_ips": []any{map[string]any{"subnet_id": s1.ID, "ip_address": "10.60.2.5"}}}, 400, "InvalidIpForSubnet", nil, ""},
			{"subnet-of-other-network", body{"fixed_ips": []any{map[string]any{"subnet_id": otherSub.ID}}}, 400, "InvalidInput", nil, ""},
			{"subnet-missing", body{"fixed_ips": []any{map[string]any{"subnet_id": "2b2c7a3e-0000-4000-8000-000000000000"}}}, 404, "SubnetNotFound", nil, ""},
			{"network-missing", body{"network_id": "2b2c7a3e-0000-4000-8000-000000000000"}, 404, "NetworkNotFound", nil, ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if _, ok := tc.req["network_id"]; !ok {
					tc.req["network_id"] = n.ID
				}
				r := ports.Create(bg, c, tc.req)
				if tc.status != 201 {
					wantFault(t, r.Err, tc.status, tc.fault)
					return
				}
				p := must[port](t, r, "port")
				if len(p.FixedIPs) != len(tc.want) {
					t.Fatalf("fixed_ips %v, want %v", p.FixedIPs, tc.want)
				}
				for i, w := range tc.want {
					g := p.FixedIPs[i]
					// An automatic address comes from one of the IPv4 subnets.
					subnetOK := g.SubnetID == w.SubnetID || w.SubnetID == "any" && (g.SubnetID == s1.ID || g.SubnetID == s2.ID)
					if !subnetOK || w.IPAddress != "" && g.IPAddress != w.IPAddress || g.IPAddress == "" {
						t.Errorf("fixed_ips[%d] = %v, want %v", i, g, w)
					}
				}
				if tc.mac != "" && p.MACAddress != tc.mac || tc.mac == "" && !macRE.MatchString(p.MACAddress) {
					t.Errorf("mac_address %q, want %q or a generated fa:16:3e one", p.MACAddress, tc.mac)
				}
				if p.Status != "DOWN" || !p.AdminStateUp || p.ProjectID != "p1" {
					t.Errorf("status %s admin_state_up %v project %s", p.Status, p.AdminStateUp, p.ProjectID)
				}
			})
		}

		t.Run("same-mac-other-network", func(t *testing.T) {
			mkPort(t, c, body{"network_id": other.ID, "mac_address": "fa:16:3e:00:00:01"})
		})
		t.Run("update-fixed-ips", func(t *testing.T) {
			p := mkPort(t, c, body{"network_id": n.ID, "fixed_ips": []any{map[string]any{"subnet_id": s1.ID}}})
			first := p.FixedIPs[0].IPAddress
			// A subnet-only entry keeps the address the port has there.
			u := must[port](t, ports.Update(bg, c, p.ID, ports.UpdateOpts{FixedIPs: []ports.IP{{SubnetID: s1.ID}, {SubnetID: s2.ID, IPAddress: "10.60.2.200"}}}), "port")
			if len(u.FixedIPs) != 2 || u.FixedIPs[0].IPAddress != first || u.FixedIPs[1].IPAddress != "10.60.2.200" {
				t.Fatalf("fixed_ips %v, want [%s 10.60.2.200]", u.FixedIPs, first)
			}
			// Dropping an address frees it for others.
			u = must[port](t, ports.Update(bg, c, p.ID, ports.UpdateOpts{FixedIPs: []ports.IP{{SubnetID: s2.ID, IPAddress: "10.60.2.200"}}}), "port")
			if len(u.FixedIPs) != 1 {
				t.Fatalf("fixed_ips %v", u.FixedIPs)
			}
			mkPort(t, c, body{"network_id": n.ID, "fixed_ips": []any{map[string]any{"ip_address": first}}})
			_, err := ports.Update(bg, c, p.ID, ports.UpdateOpts{FixedIPs: []ports.IP{{IPAddress: "10.60.1.50"}}}).Extract()
			wantFault(t, err, 409, "IpAddressAlreadyAllocated")
			// The refused update changed nothing.
			if g := must[port](t, ports.Get(bg, c, p.ID), "port"); !slices.Equal(g.FixedIPs, u.FixedIPs) {
				t.Errorf("after refused update fixed_ips %v, want %v", g.FixedIPs, u.FixedIPs)
			}
		})
		t.Run("device", func(t *testing.T) {
			p := mkPort(t, c, body{"network_id": n.ID, "device_id": "vm-1", "device_owner": "compute:nova"})
			if p.DeviceID != "vm-1" || p.DeviceOwner != "compute:nova" {
				t.Errorf("device %q %q", p.DeviceID, p.DeviceOwner)
			}
			u := must[port](t, ports.Update(bg, c, p.ID, ports.UpdateOpts{DeviceID: ptr(""), DeviceOwner: ptr("")}), "port")
			if u.DeviceID != "" || u.DeviceOwner != "" {
				t.Errorf("device after clearing %q %q", u.DeviceID, u.DeviceOwner)
			}
		})
		t.Run("delete-frees-ip-and-mac", func(t *testing.T) {
			p := mkPort(t, c, body{"network_id": n.ID, "fixed_ips": []any{map[string]any{"ip_address": "10.60.1.99"}}})
			if err := ports.Delete(bg, c, p.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			mkPort(t, c, body{"network_id": n.ID, "mac_address": p.MACAddress, "fixed_ips": []any{map[string]any{"ip_address": "10.60.1.99"}}})
		})
	})
}

func TestPortExtensions(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c, admin := e.Client("p1", false), e.Admin()
		n, _ := netWithSubnet(t, c, "10.62.0.0/24")

		t.Run("allowed-address-pairs", func(t *testing.T) {
			p := must[port](t, ports.Create(bg, c, ports.CreateOpts{NetworkID: n.ID, AllowedAddressPairs: []ports.AddressPair{
				{IPAddress: "10.62.0.200"}, {IPAddress: "192.168.0.0/24", MACAddress: "fa:16:3e:99:99:99"},
			}}), "port")
			want := []map[string]string{
				{"ip_address": "10.62.0.200", "mac_address": p.MACAddress},
				{"ip_address": "192.168.0.0/24", "mac_address": "fa:16:3e:99:99:99"},
			}
			if len(p.AllowedAddressPairs) != 2 || !mapsEqual(p.AllowedAddressPairs[0], want[0]) || !mapsEqual(p.AllowedAddressPairs[1], want[1]) {
				t.Errorf("allowed_address_pairs %v, want %v", p.AllowedAddressPairs, want)
			}
			u := must[port](t, ports.Update(bg, c, p.ID, ports.UpdateOpts{AllowedAddressPairs: &[]ports.AddressPair{}}), "port")
			if len(u.AllowedAddressPairs) != 0 {
				t.Errorf("after clearing: %v", u.AllowedAddressPairs)
			}
			_, err := ports.Create(bg, c, portsecurity.PortCreateOptsExt{
				CreateOptsBuilder:   ports.CreateOpts{NetworkID: n.ID, AllowedAddressPairs: []ports.AddressPair{{IPAddress: "10.62.0.201"}}},
				PortSecurityEnabled: ptr(false),
			}).Extract()
			wantFault(t, err, 409, "AddressPairAndPortSecurityRequired")
			_, err = ports.Update(bg, c, p.ID, ports.UpdateOpts{AllowedAddressPairs: &[]ports.AddressPair{{IPAddress: "not-an-ip"}}}).Extract()
			wantFault(t, err, 400, "HTTPBadRequest")
		})

		t.Run("extra-dhcp-opts", func(t *testing.T) {
			p := must[port](t, ports.Create(bg, c, extradhcpopts.CreateOptsExt{
				CreateOptsBuilder: ports.CreateOpts{NetworkID: n.ID},
				ExtraDHCPOpts: []extradhcpopts.CreateExtraDHCPOpt{
					{OptName: "bootfile-name", OptValue: "pxelinux.0"},
					{OptName: "tftp-server", OptValue: "2001:db8::1", IPVersion: gophercloud.IPv6},
				},
			}), "port")
			if len(p.ExtraDHCPOpts) != 2 {
				t.Fatalf("extra_dhcp_opts %v", p.ExtraDHCPOpts)
			}
			byName := map[string]map[string]any{}
			for _, o := range p.ExtraDHCPOpts {
				byName[o["opt_name"].(string)] = o
			}
			if o := byName["bootfile-name"]; o["opt_value"] != "pxelinux.0" || o["ip_version"] != float64(4) {
				t.Errorf("bootfile-name: %v, want pxelinux.0 over ip_version 4", o)
			}
			if o := byName["tftp-server"]; o["opt_value"] != "2001:db8::1" || o["ip_version"] != float64(6) {
				t.Errorf("tftp-server: %v", o)
			}
			plain := mkPort(t, c, body{"network_id": n.ID})
			if plain.ExtraDHCPOpts == nil || len(plain.ExtraDHCPOpts) != 0 {
				t.Errorf("default extra_dhcp_opts %v, want []", plain.ExtraDHCPOpts)
			}
		})

		t.Run("port-security", func(t *testing.T) {
			open := mkNet(t, c, body{"port_security_enabled": false})
			p := mkPort(t, c, body{"network_id": open.ID})
			if p.PortSecurityEnabled {
				t.Error("port on a network without port security has it on")
			}
			p = must[port](t, ports.Create(bg, c, portsecurity.PortCreateOptsExt{CreateOptsBuilder: ports.CreateOpts{NetworkID: open.ID}, PortSecurityEnabled: ptr(true)}), "port")
			if !p.PortSecurityEnabled {
				t.Error("explicit port_security_enabled=true ignored")
			}
			// Port security goes off only with the port's security groups.
			_, err := ports.Update(bg, c, p.ID, portsecurity.PortUpdateOptsExt{UpdateOptsBuilder: ports.UpdateOpts{}, PortSecurityEnabled: ptr(false)}).Extract()
			wantFault(t, err, 409, "PortSecurityPortHasSecurityGroup")
			u := must[port](t, ports.Update(bg, c, p.ID, portsecurity.PortUpdateOptsExt{UpdateOptsBuilder: ports.UpdateOpts{SecurityGroups: &[]string{}}, PortSecurityEnabled: ptr(false)}), "port")
			if u.PortSecurityEnabled {
				t.Error("update to false ignored")
			}
			if p := mkPort(t, c, body{"network_id": n.ID}); !p.PortSecurityEnabled {
				t.Error("port on a default network has port security off")
			}
		})

		t.Run("dns", func(t *testing.T) {
			p := must[port](t, ports.Create(bg, c, dns.PortCreateOptsExt{
				CreateOptsBuilder: ports.CreateOpts{NetworkID: n.ID, FixedIPs: []ports.IP{{IPAddress: "10.62.0.10"}}},
				DNSName:           "web1",
			}), "port")
			want := map[string]string{"hostname": "web1", "ip_address": "10.62.0.10", "fqdn": "web1.openstacklocal."}
			if p.DNSName != "web1" || len(p.DNSAssignment) != 1 || !mapsEqual(p.DNSAssignment[0], want) {
				t.Errorf("dns_name %q dns_assignment %v, want %v", p.DNSName, p.DNSAssignment, want)
			}
			u := must[port](t, ports.Update(bg, c, p.ID, dns.PortUpdateOptsExt{UpdateOptsBuilder: ports.UpdateOpts{}, DNSName: ptr("")}), "port")
			want = map[string]string{"hostname": "host-10-62-0-10", "ip_address": "10.62.0.10", "fqdn": "host-10-62-0-10.openstacklocal."}
			if len(u.DNSAssignment) != 1 || !mapsEqual(u.DNSAssignment[0], want) {
				t.Errorf("without dns_name: %v, want %v", u.DNSAssignment, want)
			}
		})

		t.Run("binding-admin-only", func(t *testing.T) {
			heartbeat(t, e, "compute-1", lbConf("192.0.2.1", false))
			r := ports.Create(bg, admin, portsbinding.CreateOptsExt{
				CreateOptsBuilder: ports.CreateOpts{NetworkID: n.ID},
				HostID:            "compute-1",
				Profile:           map[string]any{"local_link_information": "x"},
			})
			p := must[port](t, r, "port")
			if p.HostID != "compute-1" || p.VNICType != "normal" || p.VIFType != "bridge" {
				t.Errorf("admin view: host %q vnic %q vif %q", p.HostID, p.VNICType, p.VIFType)
			}
			mine := mkPort(t, c, body{"network_id": n.ID})
			raw := rawOf(t, ports.Get(bg, c, mine.ID).Result, "port")
			for _, k := range []string{"binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details"} {
				if _, ok := raw[k]; ok {
					t.Errorf("member sees %s", k)
				}
			}
			if raw["binding:vnic_type"] != "normal" {
				t.Errorf("member's binding:vnic_type %v, want normal", raw["binding:vnic_type"])
			}
			if araw := rawOf(t, ports.Get(bg, admin, mine.ID).Result, "port"); araw["binding:vif_type"] != "unbound" || araw["binding:host_id"] != "" {
				t.Errorf("admin view of an unbound port: vif_type %v host %v", araw["binding:vif_type"], araw["binding:host_id"])
			}
			_, err := ports.Create(bg, c, portsbinding.CreateOptsExt{CreateOptsBuilder: ports.CreateOpts{NetworkID: n.ID}, HostID: "compute-1"}).Extract()
			wantFault(t, err, 403, "PolicyNotAuthorized")
			_, err = ports.Update(bg, c, mine.ID, portsbinding.UpdateOptsExt{UpdateOptsBuilder: ports.UpdateOpts{}, HostID: ptr("compute-1")}).Extract()
			wantFault(t, err, 403, "PolicyNotAuthorized")
			u := must[port](t, ports.Update(bg, c, mine.ID, portsbinding.UpdateOptsExt{UpdateOptsBuilder: ports.UpdateOpts{}, VNICType: "direct"}), "port")
			if u.VNICType != "direct" {
				t.Errorf("member could not set binding:vnic_type: %q", u.VNICType)
			}
			// Non-admin lists hide binding attributes too.
			all, err := ports.List(c, nil).AllPages(bg)
			if err != nil {
				t.Fatal(err)
			}
			var items []map[string]any
			if err := ports.ExtractPortsInto(all, &items); err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				if _, ok := it["binding:host_id"]; ok {
					t.Fatalf("member's list shows binding:host_id")
				}
			}
		})
	})
}

func mapsEqual[V comparable](a map[string]V, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
