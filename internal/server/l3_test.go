package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/extraroutes"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/portforwarding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"muon/internal/server/servertest"
)

// router and floatingIP are the API's documents as the tests read them.
type router struct {
	ID          string          `json:"id"`
	Status      string          `json:"status"`
	ProjectID   string          `json:"project_id"`
	Gateway     *routerGateway  `json:"external_gateway_info"`
	Routes      []routers.Route `json:"routes"`
	HA          *bool           `json:"ha"`
	Distributed *bool           `json:"distributed"`
	Revision    int             `json:"revision_number"`
}

type routerGateway struct {
	NetworkID  string    `json:"network_id"`
	EnableSNAT bool      `json:"enable_snat"`
	FixedIPs   []fixedIP `json:"external_fixed_ips"`
}

type floatingIP struct {
	ID              string           `json:"id"`
	Address         string           `json:"floating_ip_address"`
	NetworkID       string           `json:"floating_network_id"`
	PortID          *string          `json:"port_id"`
	FixedIP         *string          `json:"fixed_ip_address"`
	RouterID        *string          `json:"router_id"`
	Status          string           `json:"status"`
	ProjectID       string           `json:"project_id"`
	PortDetails     map[string]any   `json:"port_details"`
	PortForwardings []map[string]any `json:"port_forwardings"`
}

type ifaceInfo struct {
	ID        string   `json:"id"`
	PortID    string   `json:"port_id"`
	SubnetID  string   `json:"subnet_id"`
	SubnetIDs []string `json:"subnet_ids"`
	NetworkID string   `json:"network_id"`
	ProjectID string   `json:"project_id"`
}

func (b body) ToRouterCreateMap() (map[string]any, error) {
	return map[string]any{"router": map[string]any(b)}, nil
}
func (u upd) ToRouterUpdateMap() (map[string]any, error) {
	return map[string]any{"router": map[string]any(u.B)}, nil
}
func (b body) ToFloatingIPCreateMap() (map[string]any, error) {
	return map[string]any{"floatingip": map[string]any(b)}, nil
}

func mkRouter(t *testing.T, c *gophercloud.ServiceClient, b body) router {
	t.Helper()
	return must[router](t, routers.Create(bg, c, b), "router")
}

func addIface(t *testing.T, c *gophercloud.ServiceClient, rid string, opts routers.AddInterfaceOpts) ifaceInfo {
	t.Helper()
	var info ifaceInfo
	if err := routers.AddInterface(bg, c, rid, opts).ExtractInto(&info); err != nil {
		t.Fatalf("add interface %+v: %v", opts, err)
	}
	return info
}

func mkFIP(t *testing.T, c *gophercloud.ServiceClient, b body) floatingIP {
	t.Helper()
	return must[floatingIP](t, floatingips.Create(bg, c, b), "floatingip")
}

// extNet makes the admin's external network with a subnet.
func extNet(t *testing.T, e *servertest.Env, cidr string) (network, subnet) {
	t.Helper()
	n := mkNet(t, e.Admin(), body{"name": "public-" + cidr, "router:external": true})
	s := mkSubnet(t, e.Admin(), body{"network_id": n.ID, "ip_version": 4, "cidr": cidr})
	return n, s
}

// TestRouterFlow is the book's flow: an external network, a router with
// its gateway there, two tenant subnets as interfaces, a port and a
// floating IP associated with it.
func TestRouterFlow(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		ext, extSub := extNet(t, e, "203.0.113.0/24")
		c := e.Client("p1", false)
		r := mkRouter(t, c, body{"name": "r1", "external_gateway_info": map[string]any{"network_id": ext.ID}})
		if r.Status != "ACTIVE" || r.Gateway == nil || r.Gateway.NetworkID != ext.ID || !r.Gateway.EnableSNAT ||
			len(r.Gateway.FixedIPs) != 1 || r.Gateway.FixedIPs[0].SubnetID != extSub.ID || r.ProjectID != "p1" {
			t.Fatalf("router %+v gateway %+v", r, r.Gateway)
		}
		if r.HA != nil || r.Distributed != nil {
			t.Errorf("ha/distributed shown to a member: %v %v", r.HA, r.Distributed)
		}
		if a := must[router](t, routers.Get(bg, e.Admin(), r.ID), "router"); a.HA == nil || *a.HA || a.Distributed == nil || *a.Distributed {
			t.Errorf("admin sees ha %v distributed %v, want false false", a.HA, a.Distributed)
		}
		n1, s1 := netWithSubnet(t, c, "10.1.0.0/24")
		_, s2 := netWithSubnet(t, c, "10.2.0.0/24")
		i1 := addIface(t, c, r.ID, routers.AddInterfaceOpts{SubnetID: s1.ID})
		i2 := addIface(t, c, r.ID, routers.AddInterfaceOpts{SubnetID: s2.ID})
		if i1.ID != r.ID || i1.SubnetID != s1.ID || len(i1.SubnetIDs) != 1 || i1.NetworkID != n1.ID || i1.ProjectID != "p1" || i2.PortID == "" {
			t.Fatalf("interface info %+v", i1)
		}
		ip := must[port](t, ports.Get(bg, c, i1.PortID), "port")
		if ip.DeviceOwner != "network:router_interface" || ip.DeviceID != r.ID || len(ip.FixedIPs) != 1 || ip.FixedIPs[0].IPAddress != "10.1.0.1" {
			t.Errorf("interface port %+v", ip)
		}
		// The gateway port is no project's: the member does not see it.
		gws := listIDs(t, ports.List(c, ports.ListOpts{DeviceOwner: "network:router_gateway"}), "ports")
		if len(gws) != 0 {
			t.Errorf("member sees gateway ports %v", gws)
		}
		if gws = listIDs(t, ports.List(e.Admin(), ports.ListOpts{DeviceOwner: "network:router_gateway", DeviceID: r.ID}), "ports"); len(gws) != 1 {
			t.Fatalf("gateway ports %v", gws)
		}

		vm := mkPort(t, c, body{"network_id": n1.ID, "device_owner": "compute:nova"})
		f := mkFIP(t, c, body{"floating_network_id": ext.ID, "port_id": vm.ID})
		if f.PortID == nil || *f.PortID != vm.ID || f.FixedIP == nil || *f.FixedIP != vm.FixedIPs[0].IPAddress ||
			f.RouterID == nil || *f.RouterID != r.ID || f.Status != "DOWN" || !strings.HasPrefix(f.Address, "203.0.113.") {
			t.Fatalf("floating IP %+v", f)
		}
		if f.PortDetails["device_owner"] != "compute:nova" || f.PortDetails["network_id"] != n1.ID {
			t.Errorf("port_details %v", f.PortDetails)
		}
		if got := listIDs(t, floatingips.List(c, floatingips.ListOpts{PortID: vm.ID}), "floatingips"); len(got) != 1 || got[0] != f.ID {
			t.Errorf("floating IPs of the port %v", got)
		}
		// Disassociate, associate again, and a port's deletion
		// disassociates.
		d := must[floatingIP](t, floatingips.Update(bg, c, f.ID, floatingips.UpdateOpts{PortID: ptr("")}), "floatingip")
		if d.PortID != nil || d.FixedIP != nil || d.RouterID != nil || d.PortDetails != nil {
			t.Errorf("after disassociation %+v", d)
		}
		must[floatingIP](t, floatingips.Update(bg, c, f.ID, floatingips.UpdateOpts{PortID: &vm.ID}), "floatingip")
		if err := ports.Delete(bg, c, vm.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if g := must[floatingIP](t, floatingips.Get(bg, c, f.ID), "floatingip"); g.PortID != nil || g.RouterID != nil {
			t.Errorf("after the port's deletion %+v", g)
		}
		// Teardown releases everything.
		if err := floatingips.Delete(bg, c, f.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{s1.ID, s2.ID} {
			if _, err := routers.RemoveInterface(bg, c, r.ID, routers.RemoveInterfaceOpts{SubnetID: s}).Extract(); err != nil {
				t.Fatalf("remove interface: %v", err)
			}
		}
		wantFault(t, ports.Get(bg, c, i1.PortID).Err, 404, "PortNotFound")
		if err := routers.Delete(bg, c, r.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if left := listIDs(t, ports.List(e.Admin(), ports.ListOpts{NetworkID: ext.ID}), "ports"); len(left) != 0 {
			t.Errorf("ports left on the external network: %v", left)
		}
	})
}

// TestL3Faults answers every refusal with Neutron's status and type.
func TestL3Faults(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		ext, extSub := extNet(t, e, "198.51.100.0/24")
		c := e.Client("p1", false)
		admin := e.Admin()
		r := mkRouter(t, c, body{"name": "r", "external_gateway_info": map[string]any{"network_id": ext.ID}})
		r2 := mkRouter(t, c, body{"name": "r2"})
		n1, s1 := netWithSubnet(t, c, "10.1.0.0/24")
		_, s2 := netWithSubnet(t, c, "10.2.0.0/24")
		_, wide := netWithSubnet(t, c, "10.0.0.0/8")
		n4, s4 := netWithSubnet(t, c, "10.4.0.0/24")
		noGW := mkSubnet(t, c, body{"network_id": mkNet(t, c, body{}).ID, "ip_version": 4, "cidr": "10.5.0.0/24", "gateway_ip": nil})
		addIface(t, c, r.ID, routers.AddInterfaceOpts{SubnetID: s1.ID})
		i2 := addIface(t, c, r.ID, routers.AddInterfaceOpts{SubnetID: s2.ID})
		vm := mkPort(t, c, body{"network_id": n1.ID})
		vm2 := mkPort(t, c, body{"network_id": n1.ID, "fixed_ips": []any{map[string]any{"subnet_id": s1.ID}}})
		lonely := mkPort(t, c, body{"network_id": n4.ID})
		f := mkFIP(t, c, body{"floating_network_id": ext.ID, "port_id": vm.ID})
		must[router](t, routers.Update(bg, c, r.ID, upd{body{"routes": []any{map[string]any{"destination": "172.16.0.0/16", "nexthop": "10.2.0.10"}}}}), "router")
		gwPort := listIDs(t, ports.List(admin, ports.ListOpts{DeviceOwner: "network:router_gateway", DeviceID: r.ID}), "ports")
		missing := "2b2c7a3e-0000-4000-8000-000000000000"
		rawIface := func(action, b string) error {
			status, out := e.Do(t, "PUT", "/v2.0/routers/"+r.ID+"/"+action, "p1", false, b)
			if status == 200 {
				return nil
			}
			return gophercloud.ErrUnexpectedResponseCode{Actual: status, Body: []byte(out)}
		}
		gw := func(b map[string]any) body { return body{"external_gateway_info": b} }

		tests := []struct {
			name   string
			do     func() error
			status int
			fault  string
		}{
			{"gateway-not-external", func() error { return routers.Create(bg, c, gw(map[string]any{"network_id": n1.ID})).Err }, 400, "BadRequest"},
			{"gateway-network-missing", func() error { return routers.Create(bg, c, gw(map[string]any{"network_id": missing})).Err }, 404, "NetworkNotFound"},
			{"gateway-bad-key", func() error { return routers.Create(bg, c, gw(map[string]any{"network_id": ext.ID, "x": 1})).Err }, 400, "HTTPBadRequest"},
			{"gateway-snat-member", func() error {
				return routers.Create(bg, c, gw(map[string]any{"network_id": ext.ID, "enable_snat": false})).Err
			}, 403, "PolicyNotAuthorized"},
			{"gateway-fixed-ips-member", func() error {
				return routers.Create(bg, c, gw(map[string]any{"network_id": ext.ID, "external_fixed_ips": []any{map[string]any{"subnet_id": extSub.ID}}})).Err
			}, 403, "PolicyNotAuthorized"},
			{"gateway-ip-is-subnet-gateway", func() error {
				return routers.Create(bg, admin, gw(map[string]any{"network_id": ext.ID, "external_fixed_ips": []any{map[string]any{"ip_address": "198.51.100.1"}}})).Err
			}, 400, "BadRequest"},
			{"distributed-member", func() error { return routers.Create(bg, c, body{"distributed": true}).Err }, 403, "PolicyNotAuthorized"},
			{"ha-member", func() error { return routers.Create(bg, c, body{"ha": true}).Err }, 403, "PolicyNotAuthorized"},
			{"distributed-while-up", func() error { return routers.Update(bg, admin, r2.ID, upd{body{"distributed": true}}).Err }, 400, "BadRequest"},
			{"routes-on-create", func() error { return routers.Create(bg, c, body{"routes": []any{}}).Err }, 400, "HTTPBadRequest"},
			{"flavor-missing", func() error { return routers.Create(bg, c, body{"flavor_id": missing}).Err }, 404, "FlavorNotFound"},
			{"router-missing", func() error { return routers.Get(bg, c, missing).Err }, 404, "RouterNotFound"},
			{"router-other-project", func() error { return routers.Get(bg, e.Client("p2", false), r.ID).Err }, 404, "RouterNotFound"},
			{"interface-no-gateway", func() error {
				return routers.AddInterface(bg, c, r.ID, routers.AddInterfaceOpts{SubnetID: noGW.ID}).Err
			}, 400, "BadRequest"},
			{"interface-twice", func() error { return routers.AddInterface(bg, c, r.ID, routers.AddInterfaceOpts{SubnetID: s1.ID}).Err }, 400, "BadRequest"},
			{"interface-overlap", func() error {
				return routers.AddInterface(bg, c, r.ID, routers.AddInterfaceOpts{SubnetID: wide.ID}).Err
			}, 400, "BadRequest"},
			{"interface-other-router", func() error { return routers.AddInterface(bg, c, r2.ID, routers.AddInterfaceOpts{SubnetID: s1.ID}).Err }, 409, "IpAddressAlreadyAllocated"},
			{"interface-port-other-router", func() error { return routers.AddInterface(bg, c, r2.ID, routers.AddInterfaceOpts{PortID: vm2.ID}).Err }, 409, "SubnetInUse"},
			{"interface-subnet-missing", func() error {
				return routers.AddInterface(bg, c, r.ID, routers.AddInterfaceOpts{SubnetID: missing}).Err
			}, 404, "SubnetNotFound"},
			{"interface-subnet-other-project", func() error {
				return routers.AddInterface(bg, e.Client("p2", false), mkRouter(t, e.Client("p2", false), body{}).ID, routers.AddInterfaceOpts{SubnetID: s4.ID}).Err
			}, 404, "SubnetNotFound"},
			{"interface-port-in-use", func() error {
				return routers.AddInterface(bg, c, r2.ID, routers.AddInterfaceOpts{PortID: i2.PortID}).Err
			}, 409, "PortInUse"},
			{"interface-neither", func() error { return rawIface("add_router_interface", `{}`) }, 400, "BadRequest"},
			{"interface-both", func() error {
				return rawIface("add_router_interface", `{"subnet_id": "`+s4.ID+`", "port_id": "`+lonely.ID+`"}`)
			}, 400, "BadRequest"},
			{"remove-not-attached", func() error {
				return routers.RemoveInterface(bg, c, r.ID, routers.RemoveInterfaceOpts{SubnetID: s4.ID}).Err
			}, 404, "RouterInterfaceNotFoundForSubnet"},
			{"remove-port-not-interface", func() error {
				return routers.RemoveInterface(bg, c, r.ID, routers.RemoveInterfaceOpts{PortID: lonely.ID}).Err
			}, 404, "RouterInterfaceNotFound"},
			{"remove-used-by-fip", func() error {
				return routers.RemoveInterface(bg, c, r.ID, routers.RemoveInterfaceOpts{SubnetID: s1.ID}).Err
			}, 409, "RouterInterfaceInUseByFloatingIP"},
			{"remove-used-by-route", func() error {
				return routers.RemoveInterface(bg, c, r.ID, routers.RemoveInterfaceOpts{SubnetID: s2.ID}).Err
			}, 409, "RouterInterfaceInUseByRoute"},
			{"clear-gateway-used-by-fip", func() error { return routers.Update(bg, c, r.ID, upd{body{"external_gateway_info": nil}}).Err }, 409, "RouterExternalGatewayInUseByFloatingIp"},
			{"delete-router-with-interfaces", func() error { return routers.Delete(bg, c, r.ID).Err }, 409, "RouterInUse"},
			{"delete-interface-port", func() error { return ports.Delete(bg, c, i2.PortID).Err }, 409, "L3PortInUse"},
			{"delete-gateway-port", func() error { return ports.Delete(bg, admin, gwPort[0]).Err }, 409, "L3PortInUse"},
			{"route-not-connected", func() error {
				return routers.Update(bg, c, r.ID, upd{body{"routes": []any{map[string]any{"destination": "0.0.0.0/0", "nexthop": "192.0.2.1"}}}}).Err
			}, 400, "InvalidRoutes"},
			{"route-nexthop-is-router", func() error {
				return routers.Update(bg, c, r.ID, upd{body{"routes": []any{map[string]any{"destination": "0.0.0.0/0", "nexthop": "10.1.0.1"}}}}).Err
			}, 400, "InvalidRoutes"},
			{"route-bad-destination", func() error {
				return routers.Update(bg, c, r.ID, upd{body{"routes": []any{map[string]any{"destination": "10.0.0.300/8", "nexthop": "10.1.0.9"}}}}).Err
			}, 400, "HTTPBadRequest"},
			{"fip-not-external", func() error { return floatingips.Create(bg, c, body{"floating_network_id": n1.ID}).Err }, 400, "BadRequest"},
			{"fip-network-missing", func() error { return floatingips.Create(bg, c, body{"floating_network_id": missing}).Err }, 404, "NetworkNotFound"},
			{"fip-address-member", func() error {
				return floatingips.Create(bg, c, body{"floating_network_id": ext.ID, "floating_ip_address": "198.51.100.77"}).Err
			}, 403, "PolicyNotAuthorized"},
			{"fip-address-taken", func() error {
				return floatingips.Create(bg, admin, body{"floating_network_id": ext.ID, "floating_ip_address": f.Address}).Err
			}, 409, "IpAddressAlreadyAllocated"},
			{"fip-unreachable", func() error {
				return floatingips.Create(bg, c, body{"floating_network_id": ext.ID, "port_id": lonely.ID}).Err
			}, 404, "ExternalGatewayForFloatingIPNotFound"},
			{"fip-fixed-ip-not-on-port", func() error {
				return floatingips.Create(bg, c, body{"floating_network_id": ext.ID, "port_id": vm2.ID, "fixed_ip_address": "10.1.0.99"}).Err
			}, 400, "BadRequest"},
			{"fip-fixed-ip-without-port", func() error {
				return floatingips.Create(bg, c, body{"floating_network_id": ext.ID, "fixed_ip_address": "10.1.0.99"}).Err
			}, 400, "BadRequest"},
			{"fip-already-associated", func() error {
				return floatingips.Create(bg, c, body{"floating_network_id": ext.ID, "port_id": vm.ID}).Err
			}, 409, "FloatingIPPortAlreadyAssociated"},
			{"fip-port-missing", func() error {
				return floatingips.Create(bg, c, body{"floating_network_id": ext.ID, "port_id": missing}).Err
			}, 404, "PortNotFound"},
			{"fip-missing", func() error { return floatingips.Get(bg, c, missing).Err }, 404, "FloatingIPNotFound"},
			{"fip-other-project", func() error { return floatingips.Delete(bg, e.Client("p2", false), f.ID).Err }, 404, "FloatingIPNotFound"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) { wantFault(t, tc.do(), tc.status, tc.fault) })
		}
		// The refusals changed nothing.
		if got := listIDs(t, floatingips.List(c, nil), "floatingips"); len(got) != 1 {
			t.Errorf("floating IPs after refusals: %v", got)
		}
		if g := must[router](t, routers.Get(bg, c, r.ID), "router"); len(g.Routes) != 1 || g.Gateway == nil {
			t.Errorf("router after refusals: %+v", g)
		}
	})
}

func TestRouterInterfaceByPortAndRoutes(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		ext, _ := extNet(t, e, "192.0.2.0/24")
		c := e.Client("p1", false)
		r := mkRouter(t, c, body{"external_gateway_info": map[string]any{"network_id": ext.ID}})
		n, s := netWithSubnet(t, c, "10.3.0.0/24")
		p := mkPort(t, c, body{"network_id": n.ID, "fixed_ips": []any{map[string]any{"ip_address": "10.3.0.5"}}})
		info := addIface(t, c, r.ID, routers.AddInterfaceOpts{PortID: p.ID})
		if info.PortID != p.ID || info.SubnetID != s.ID {
			t.Fatalf("interface %+v", info)
		}
		if g := must[port](t, ports.Get(bg, c, p.ID), "port"); g.DeviceOwner != "network:router_interface" || g.DeviceID != r.ID {
			t.Errorf("adopted port %+v", g)
		}
		// Routes: set, add, remove atomically; a nexthop on the interface's
		// subnet or the gateway's is connected.
		u := must[router](t, routers.Update(bg, c, r.ID, routers.UpdateOpts{Routes: &[]routers.Route{{DestinationCIDR: "172.16.0.0/16", NextHop: "10.3.0.20"}}}), "router")
		if len(u.Routes) != 1 || u.Revision <= r.Revision {
			t.Fatalf("routes %+v revision %d after %d", u.Routes, u.Revision, r.Revision)
		}
		add, err := extraroutes.Add(bg, c, r.ID, extraroutes.Opts{Routes: &[]routers.Route{
			{DestinationCIDR: "172.17.0.0/16", NextHop: "192.0.2.200"}, {DestinationCIDR: "172.16.0.0/16", NextHop: "10.3.0.20"}}}).Extract()
		if err != nil || len(add.Routes) != 2 {
			t.Fatalf("add_extraroutes %+v %v", add, err)
		}
		rm, err := extraroutes.Remove(bg, c, r.ID, extraroutes.Opts{Routes: &[]routers.Route{{DestinationCIDR: "172.16.0.0/16", NextHop: "10.3.0.20"}}}).Extract()
		if err != nil || len(rm.Routes) != 1 || rm.Routes[0].DestinationCIDR != "172.17.0.0/16" {
			t.Fatalf("remove_extraroutes %+v %v", rm, err)
		}
		_, err = extraroutes.Add(bg, c, r.ID, extraroutes.Opts{Routes: &[]routers.Route{{DestinationCIDR: "10.9.0.0/16", NextHop: "10.99.0.1"}}}).Extract()
		wantFault(t, err, 400, "InvalidRoutes")
		// Removing the interface by port deletes the port.
		if _, err := routers.RemoveInterface(bg, c, r.ID, routers.RemoveInterfaceOpts{PortID: p.ID}).Extract(); err != nil {
			t.Fatal(err)
		}
		wantFault(t, ports.Get(bg, c, p.ID).Err, 404, "PortNotFound")
		// The subnet is free for another router now.
		r2 := mkRouter(t, c, body{})
		addIface(t, c, r2.ID, routers.AddInterfaceOpts{SubnetID: s.ID})
		wantFault(t, ports.Delete(bg, c, p.ID).ExtractErr(), 404, "PortNotFound")
		// A subnet with a router interface cannot be deleted.
		wantFault(t, subnetsDelete(c, s.ID), 409, "SubnetInUse")
		// Gateway: cleared and set again; an admin picks SNAT and address.
		g := must[router](t, routers.Update(bg, c, r.ID, upd{body{"external_gateway_info": nil, "routes": []any{}}}), "router")
		if g.Gateway != nil {
			t.Fatalf("gateway after clearing %+v", g.Gateway)
		}
		g = must[router](t, routers.Update(bg, e.Admin(), r.ID, upd{body{"external_gateway_info": map[string]any{
			"network_id": ext.ID, "enable_snat": false, "external_fixed_ips": []any{map[string]any{"ip_address": "192.0.2.50"}}}}}), "router")
		if g.Gateway == nil || g.Gateway.EnableSNAT || len(g.Gateway.FixedIPs) != 1 || g.Gateway.FixedIPs[0].IPAddress != "192.0.2.50" {
			t.Fatalf("gateway %+v", g.Gateway)
		}
		// Deleting the router removes its gateway port.
		if err := routers.Delete(bg, c, r.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if left := listIDs(t, ports.List(e.Admin(), ports.ListOpts{DeviceID: r.ID}), "ports"); len(left) != 0 {
			t.Errorf("ports of the deleted router: %v", left)
		}
	})
}

func TestPortForwarding(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		ext, _ := extNet(t, e, "203.0.113.0/24")
		c := e.Client("p1", false)
		r := mkRouter(t, c, body{"external_gateway_info": map[string]any{"network_id": ext.ID}})
		n, s := netWithSubnet(t, c, "10.7.0.0/24")
		addIface(t, c, r.ID, routers.AddInterfaceOpts{SubnetID: s.ID})
		vm := mkPort(t, c, body{"network_id": n.ID})
		vm2 := mkPort(t, c, body{"network_id": n.ID})
		f := mkFIP(t, c, body{"floating_network_id": ext.ID})
		ip := vm.FixedIPs[0].IPAddress
		pf, err := portforwarding.Create(bg, c, f.ID, portforwarding.CreateOpts{Protocol: "tcp", InternalPort: 22, ExternalPort: 2222,
			InternalIPAddress: ip, InternalPortID: vm.ID, Description: "ssh"}).Extract()
		if err != nil || pf.ExternalPort != 2222 || pf.InternalPort != 22 || pf.InternalIPAddress != ip || pf.Protocol != "tcp" {
			t.Fatalf("create %+v %v", pf, err)
		}
		g := must[floatingIP](t, floatingips.Get(bg, c, f.ID), "floatingip")
		if g.RouterID == nil || *g.RouterID != r.ID || len(g.PortForwardings) != 1 {
			t.Errorf("floating IP with a port forwarding %+v", g)
		}
		if got := listIDs(t, portforwarding.List(c, portforwarding.ListOpts{}, f.ID), "port_forwardings"); len(got) != 1 || got[0] != pf.ID {
			t.Errorf("list %v", got)
		}
		if _, err := portforwarding.Get(bg, c, f.ID, pf.ID).Extract(); err != nil {
			t.Fatal(err)
		}
		u, err := portforwarding.Update(bg, c, f.ID, pf.ID, portforwarding.UpdateOpts{ExternalPort: 2200}).Extract()
		if err != nil || u.ExternalPort != 2200 || u.InternalPort != 22 {
			t.Fatalf("update %+v %v", u, err)
		}
		// A range next to it.
		status, out := e.Do(t, "POST", "/v2.0/floatingips/"+f.ID+"/port_forwardings", "p1", false,
			`{"port_forwarding": {"protocol": "udp", "internal_port_range": "5000:5010", "external_port_range": "6000:6010", "internal_ip_address": "`+ip+`", "internal_port_id": "`+vm.ID+`"}}`)
		if status != 201 {
			t.Fatalf("range: %d %s", status, out)
		}
		pfIn := func(b map[string]any) string {
			m := map[string]any{"protocol": "tcp", "internal_port": 80, "external_port": 8080, "internal_ip_address": ip, "internal_port_id": vm.ID}
			for k, v := range b {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			return jsonOf(map[string]any{"port_forwarding": m})
		}
		other := mkFIP(t, c, body{"floating_network_id": ext.ID, "port_id": vm2.ID})
		lonelyNet, _ := netWithSubnet(t, c, "10.8.0.0/24")
		lonely := mkPort(t, c, body{"network_id": lonelyNet.ID})
		tests := []struct {
			name, fip, body string
			status          int
			fault           string
		}{
			{"same-external-port", f.ID, pfIn(map[string]any{"external_port": 2200, "internal_port": 23}), 400, "BadRequest"},
			{"external-in-range", f.ID, pfIn(map[string]any{"protocol": "udp", "external_port": 6005}), 400, "BadRequest"},
			{"same-internal-socket", f.ID, pfIn(map[string]any{"internal_port": 22}), 400, "BadRequest"},
			{"ip-not-on-port", f.ID, pfIn(map[string]any{"internal_ip_address": "10.7.0.254"}), 400, "BadRequest"},
			{"unreachable", f.ID, pfIn(map[string]any{"internal_ip_address": nil, "internal_port_id": lonely.ID}), 400, "BadRequest"},
			{"fip-associated", other.ID, pfIn(nil), 409, "FloatingIPPortAlreadyAssociated"},
			{"port-has-fip", f.ID, pfIn(map[string]any{"internal_ip_address": vm2.FixedIPs[0].IPAddress, "internal_port_id": vm2.ID}), 409, "PortHasBindingFloatingIP"},
			{"bad-protocol", f.ID, pfIn(map[string]any{"protocol": "icmp"}), 400, "HTTPBadRequest"},
			{"bad-port", f.ID, pfIn(map[string]any{"external_port": 70000}), 400, "HTTPBadRequest"},
			{"no-external-port", f.ID, pfIn(map[string]any{"external_port": nil}), 400, "BadRequest"},
			{"fip-missing", "2b2c7a3e-0000-4000-8000-000000000000", pfIn(nil), 404, "FloatingIPNotFound"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				status, out := e.Do(t, "POST", "/v2.0/floatingips/"+tc.fip+"/port_forwardings", "p1", false, tc.body)
				if status != tc.status || faultType([]byte(out)) != tc.fault {
					t.Fatalf("got %d %s, want %d %s", status, out, tc.status, tc.fault)
				}
			})
		}
		_, err = portforwarding.Get(bg, c, f.ID, "2b2c7a3e-0000-4000-8000-000000000000").Extract()
		wantFault(t, err, 404, "PortForwardingNotFound")
		_, err = portforwarding.Get(bg, e.Client("p2", false), f.ID, pf.ID).Extract()
		wantFault(t, err, 404, "FloatingIPNotFound")
		// A floating IP with port forwardings is not associated with a port.
		_, err = floatingips.Update(bg, c, f.ID, floatingips.UpdateOpts{PortID: &vm.ID}).Extract()
		wantFault(t, err, 409, "FipInUseByPortForwarding")
		// Deleting one, then the port, takes them all.
		if err := portforwarding.Delete(bg, c, f.ID, pf.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if err := ports.Delete(bg, c, vm.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		g = must[floatingIP](t, floatingips.Get(bg, c, f.ID), "floatingip")
		if len(g.PortForwardings) != 0 || g.RouterID != nil {
			t.Errorf("after the port's deletion %+v", g)
		}
	})
}

func TestL3Quotas(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		ext, _ := extNet(t, e, "203.0.113.0/24")
		one := 1
		if _, err := quotas.Update(bg, e.Admin(), "q1", quotas.UpdateOpts{Router: &one, FloatingIP: &one}).Extract(); err != nil {
			t.Fatal(err)
		}
		c := e.Client("q1", false)
		mkRouter(t, c, body{})
		wantFault(t, routers.Create(bg, c, body{}).Err, 409, "OverQuota")
		mkFIP(t, c, body{"floating_network_id": ext.ID})
		wantFault(t, floatingips.Create(bg, c, body{"floating_network_id": ext.ID}).Err, 409, "OverQuota")
		// Gateway and floating IP ports count against no project.
		d := getJSON(t, func() (int, string) { return e.Do(t, "GET", "/v2.0/quotas/q1/details", "q1", false, "") }, 200)
		q := d["quota"].(map[string]any)
		if used := q["port"].(map[string]any)["used"]; used != float64(0) {
			t.Errorf("ports used %v, want 0", used)
		}
		if used := q["router"].(map[string]any)["used"]; used != float64(1) {
			t.Errorf("routers used %v, want 1", used)
		}
	})
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func subnetsDelete(c *gophercloud.ServiceClient, id string) error {
	return subnets.Delete(bg, c, id).ExtractErr()
}

// TestRouterEmptyGatewayAndNullRoutes: an empty external_gateway_info is
// no gateway (create) or clears it (update), and routes null is no
// routes, as Neutron's dict_or_nodata and convert_none_to_empty_list.
func TestRouterEmptyGatewayAndNullRoutes(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		ext, _ := extNet(t, e, "198.51.100.0/24")
		c := e.Client("p1", false)
		r := mkRouter(t, c, body{"name": "r", "external_gateway_info": map[string]any{}})
		if r.Gateway != nil {
			t.Fatalf("gateway of a router made with {}: %+v", r.Gateway)
		}
		g := must[router](t, routers.Update(bg, c, r.ID, upd{body{"external_gateway_info": map[string]any{"network_id": ext.ID}}}), "router")
		if g.Gateway == nil || g.Gateway.NetworkID != ext.ID {
			t.Fatalf("gateway %+v", g.Gateway)
		}
		g = must[router](t, routers.Update(bg, c, r.ID, upd{body{"external_gateway_info": map[string]any{}}}), "router")
		if g.Gateway != nil {
			t.Fatalf("gateway after {}: %+v", g.Gateway)
		}
		if left := listIDs(t, ports.List(e.Admin(), ports.ListOpts{DeviceID: r.ID}), "ports"); len(left) != 0 {
			t.Errorf("gateway ports left: %v", left)
		}
		// Keys without network_id are still refused.
		_, err := routers.Create(bg, c, body{"external_gateway_info": map[string]any{"enable_snat": false}}).Extract()
		wantFault(t, err, 400, "HTTPBadRequest")

		_, s := netWithSubnet(t, c, "10.8.0.0/24")
		addIface(t, c, r.ID, routers.AddInterfaceOpts{SubnetID: s.ID})
		u := must[router](t, routers.Update(bg, c, r.ID, upd{body{"routes": []any{map[string]any{"destination": "172.20.0.0/16", "nexthop": "10.8.0.9"}}}}), "router")
		if len(u.Routes) != 1 {
			t.Fatalf("routes %+v", u.Routes)
		}
		raw := rawOf(t, routers.Update(bg, c, r.ID, upd{body{"routes": nil}}).Result, "router")
		if rs, ok := raw["routes"].([]any); !ok || len(rs) != 0 {
			t.Fatalf("routes after null: %#v", raw["routes"])
		}
		// With no routes left the interface can go.
		if _, err := routers.RemoveInterface(bg, c, r.ID, routers.RemoveInterfaceOpts{SubnetID: s.ID}).Extract(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDeleteExternalNetworkWithFloatingIPs: deleting an external network
// releases its unassociated floating IPs (Neutron's
// delete_disassociated_floatingips); an associated one keeps it in use.
func TestDeleteExternalNetworkWithFloatingIPs(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		a := e.Admin()
		ext, extSub := extNet(t, e, "203.0.113.0/24")
		free := mkFIP(t, a, body{"floating_network_id": ext.ID})
		if err := networks.Delete(bg, a, ext.ID).ExtractErr(); err != nil {
			t.Fatalf("delete external network with a free floating IP: %v", err)
		}
		wantFault(t, floatingips.Get(bg, a, free.ID).Err, 404, "FloatingIPNotFound")
		wantFault(t, subnets.Get(bg, a, extSub.ID).Err, 404, "SubnetNotFound")
		if left := listIDs(t, ports.List(a, ports.ListOpts{NetworkID: ext.ID}), "ports"); len(left) != 0 {
			t.Errorf("ports left on the deleted network: %v", left)
		}

		// Associated: the network stays, and so does the floating IP.
		ext2, _ := extNet(t, e, "198.51.100.0/24")
		c := e.Client("p1", false)
		r := mkRouter(t, c, body{"external_gateway_info": map[string]any{"network_id": ext2.ID}})
		n, s := netWithSubnet(t, c, "10.4.0.0/24")
		addIface(t, c, r.ID, routers.AddInterfaceOpts{SubnetID: s.ID})
		p := mkPort(t, c, body{"network_id": n.ID})
		used := mkFIP(t, c, body{"floating_network_id": ext2.ID, "port_id": p.ID})
		unused := mkFIP(t, c, body{"floating_network_id": ext2.ID})
		wantFault(t, networks.Delete(bg, a, ext2.ID).ExtractErr(), 409, "NetworkInUse")
		for _, id := range []string{used.ID, unused.ID} {
			if _, err := floatingips.Get(bg, c, id).Extract(); err != nil {
				t.Errorf("floating IP %s after a refused network delete: %v", id, err)
			}
		}
	})
}

// TestRouterPortDNSAssignment: a router port on two IPv6 subnets that
// loses one keeps a dns_assignment of the address it still has.
func TestRouterPortDNSAssignment(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		c := e.Client("p1", false)
		n := mkNet(t, c, body{})
		s1 := mkSubnet(t, c, body{"network_id": n.ID, "ip_version": 6, "cidr": "fd00:1::/64", "ipv6_ra_mode": "dhcpv6-stateful", "ipv6_address_mode": "dhcpv6-stateful"})
		s2 := mkSubnet(t, c, body{"network_id": n.ID, "ip_version": 6, "cidr": "fd00:2::/64", "ipv6_ra_mode": "dhcpv6-stateful", "ipv6_address_mode": "dhcpv6-stateful"})
		p := mkPort(t, c, body{"network_id": n.ID, "fixed_ips": []any{
			map[string]any{"subnet_id": s1.ID, "ip_address": "fd00:1::5"}, map[string]any{"subnet_id": s2.ID, "ip_address": "fd00:2::5"}}})
		r := mkRouter(t, c, body{})
		addIface(t, c, r.ID, routers.AddInterfaceOpts{PortID: p.ID})
		if _, err := routers.RemoveInterface(bg, c, r.ID, routers.RemoveInterfaceOpts{SubnetID: s1.ID}).Extract(); err != nil {
			t.Fatal(err)
		}
		code, out := e.Do(t, "GET", "/v2.0/ports/"+p.ID, "p1", false, "")
		var got struct {
			Port struct {
				FixedIPs      []fixedIP        `json:"fixed_ips"`
				DNSAssignment []map[string]any `json:"dns_assignment"`
			}
		}
		if code != 200 || json.Unmarshal([]byte(out), &got) != nil {
			t.Fatalf("port: %d %s", code, out)
		}
		if len(got.Port.FixedIPs) != 1 || got.Port.FixedIPs[0].IPAddress != "fd00:2::5" {
			t.Fatalf("fixed_ips %+v", got.Port.FixedIPs)
		}
		if len(got.Port.DNSAssignment) != 1 || got.Port.DNSAssignment[0]["ip_address"] != "fd00:2::5" {
			t.Errorf("dns_assignment %v, want only fd00:2::5's", got.Port.DNSAssignment)
		}
	})
}
