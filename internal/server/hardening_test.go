package server_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"muon/internal/server/servertest"
)

// TestRouterOnSharedSubnet: a member's router cannot take the gateway of
// a subnet the admin shares with everyone (400, no port made), so the
// admin's router still can; a network shared with the member's project by
// name may be attached (LP#1757482, LP#1975603).
func TestRouterOnSharedSubnet(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin, member := e.Admin(), e.Client("p1", false)
		n := mkNet(t, admin, body{"shared": true})
		s := mkSubnet(t, admin, body{"network_id": n.ID, "ip_version": 4, "cidr": "10.90.0.0/24"})
		r := mkRouter(t, member, body{})
		_, err := routers.AddInterface(bg, member, r.ID, routers.AddInterfaceOpts{SubnetID: s.ID}).Extract()
		wantFault(t, err, 400, "BadRequest")
		if !strings.Contains(err.Error(), "not owned by project making the request") {
			t.Errorf("fault %v", err)
		}
		if got := listIDs(t, ports.List(admin, ports.ListOpts{NetworkID: n.ID}), "ports"); len(got) != 0 {
			t.Fatalf("a refused interface left ports %v", got)
		}
		ra := mkRouter(t, admin, body{})
		addIface(t, admin, ra.ID, routers.AddInterfaceOpts{SubnetID: s.ID})

		// Shared with p1 by name: p1's router may attach; the port is
		// the router's project's, as Neutron makes it.
		n2 := mkNet(t, admin, body{})
		s2 := mkSubnet(t, admin, body{"network_id": n2.ID, "ip_version": 4, "cidr": "10.91.0.0/24"})
		code, out := e.Do(t, "POST", "/v2.0/rbac-policies", "admin", true, fmt.Sprintf(
			`{"rbac_policy": {"object_type": "network", "object_id": %q, "action": "access_as_shared", "target_tenant": "p1"}}`, n2.ID))
		if code != 201 {
			t.Fatalf("rbac: %d %s", code, out)
		}
		info := addIface(t, member, r.ID, routers.AddInterfaceOpts{SubnetID: s2.ID})
		if p := must[port](t, ports.Get(bg, admin, info.PortID), "port"); p.ProjectID != "p1" {
			t.Errorf("interface port of project %q, want the router's p1", p.ProjectID)
		}
	})
}

// TestRBACDeleteRacesPortCreates: deleting an access_as_shared policy while
// the project it shares with makes ports there either refuses (409: the
// ports depend on it) or leaves that project no port on the network: a
// 204 never strands a port on a network its project cannot see.
func TestRBACDeleteRacesPortCreates(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		for round := range 4 {
			n := mkNet(t, e.Client("owner", false), body{})
			mkSubnet(t, e.Client("owner", false), body{"network_id": n.ID, "ip_version": 4, "cidr": "10.92.0.0/24"})
			code, out := e.Do(t, "POST", "/v2.0/rbac-policies", "owner", false, fmt.Sprintf(
				`{"rbac_policy": {"object_type": "network", "object_id": %q, "action": "access_as_shared", "target_tenant": "guest"}}`, n.ID))
			if code != 201 {
				t.Fatalf("rbac: %d %s", code, out)
			}
			policy := between(out, `"id":"`, `"`)
			done := make(chan int, 15)
			for range 15 {
				go func() {
					code, _ := e.Do(t, "POST", "/v2.0/ports", "guest", false, fmt.Sprintf(`{"port": {"network_id": %q}}`, n.ID))
					done <- code
				}()
			}
			del, out := e.Do(t, "DELETE", "/v2.0/rbac-policies/"+policy, "owner", false, "")
			made := 0
			for range 15 {
				if c := <-done; c == 201 {
					made++
				}
			}
			left := listIDs(t, ports.List(e.Admin(), ports.ListOpts{NetworkID: n.ID, ProjectID: "guest"}), "ports")
			switch del {
			case 204:
				if len(left) != 0 {
					t.Fatalf("round %d: the policy went (204) and guest kept %d ports on a network it cannot see", round, len(left))
				}
			case 409:
				if len(left) == 0 || len(left) != made {
					t.Fatalf("round %d: 409 with %d guest ports (%d made)", round, len(left), made)
				}
			default:
				t.Fatalf("round %d: delete %d %s", round, del, out)
			}
		}
	})
}

// TestExternalPolicyInUse: an access_as_external policy a router's gateway
// depends on cannot be deleted (409, nothing changed), nor can the
// wildcard one of the default external network.
func TestExternalPolicyInUse(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin := e.Admin()
		n := mkNet(t, admin, body{})
		mkSubnet(t, admin, body{"network_id": n.ID, "ip_version": 4, "cidr": "192.0.2.0/24"})
		code, out := e.Do(t, "POST", "/v2.0/rbac-policies", "admin", true, fmt.Sprintf(
			`{"rbac_policy": {"object_type": "network", "object_id": %q, "action": "access_as_external", "target_tenant": "p1"}}`, n.ID))
		if code != 201 {
			t.Fatalf("rbac: %d %s", code, out)
		}
		policy := between(out, `"id":"`, `"`)
		r := mkRouter(t, e.Client("p1", false), body{"external_gateway_info": map[string]any{"network_id": n.ID}})
		code, out = e.Do(t, "DELETE", "/v2.0/rbac-policies/"+policy, "admin", true, "")
		if code != 409 || !strings.Contains(out, "RbacPolicyInUse") {
			t.Fatalf("deleting the policy p1's router depends on: %d %s", code, out)
		}
		if code, _ := e.Do(t, "GET", "/v2.0/rbac-policies/"+policy, "admin", true, ""); code != 200 {
			t.Errorf("a refused delete removed the policy: %d", code)
		}
		code, out = e.Do(t, "PUT", "/v2.0/rbac-policies/"+policy, "admin", true, `{"rbac_policy": {"target_tenant": "p2"}}`)
		if code != 409 {
			t.Errorf("retargeting the policy p1's router depends on: %d %s", code, out)
		}
		e.Do(t, "PUT", "/v2.0/routers/"+r.ID, "p1", false, `{"router": {"external_gateway_info": {}}}`)
		if code, out := e.Do(t, "DELETE", "/v2.0/rbac-policies/"+policy, "admin", true, ""); code != 204 {
			t.Errorf("deleting the policy once the gateway went: %d %s", code, out)
		}

		def := mkNet(t, admin, body{"router:external": true, "is_default": true})
		code, out = e.Do(t, "GET", "/v2.0/rbac-policies?object_id="+def.ID+"&action=access_as_external", "admin", true, "")
		wild := between(out, `"id":"`, `"`)
		if code != 200 || wild == "" {
			t.Fatalf("the default external network's policy: %d %s", code, out)
		}
		code, out = e.Do(t, "DELETE", "/v2.0/rbac-policies/"+wild, "admin", true, "")
		if code != 409 || !strings.Contains(out, "Default external networks must be shared to everyone") {
			t.Errorf("deleting the default external network's wildcard: %d %s", code, out)
		}
		if n := must[network](t, networks.Get(bg, admin, def.ID), "network"); !n.External {
			t.Errorf("the default external network is no longer external")
		}
	})
}

// TestDNSDomainValidated: a dns_domain that is no domain name is a 400
// and nothing is made or changed.
func TestDNSDomainValidated(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		for _, bad := range []string{"a..b", "-x.org", "exa mple.org", "example.123"} {
			code, out := e.Do(t, "POST", "/v2.0/networks", "p1", false, fmt.Sprintf(`{"network": {"name": "dns-bad", "dns_domain": %q}}`, bad))
			if code != 400 || !strings.Contains(out, "not a valid PQDN or FQDN") {
				t.Errorf("dns_domain %q: %d %s", bad, code, out)
			}
		}
		if got := listIDs(t, networks.List(e.Client("p1", false), networks.ListOpts{Name: "dns-bad"}), "networks"); len(got) != 0 {
			t.Errorf("refused creates made networks %v", got)
		}
		n := mkNet(t, e.Client("p1", false), body{"dns_domain": "example.org."})
		if code, out := e.Do(t, "PUT", "/v2.0/networks/"+n.ID, "p1", false, `{"network": {"dns_domain": "bad..name"}}`); code != 400 {
			t.Errorf("update to a bad dns_domain: %d %s", code, out)
		}
		code, out := e.Do(t, "GET", "/v2.0/networks/"+n.ID, "p1", false, "")
		if code != 200 || !strings.Contains(out, `"dns_domain":"example.org."`) {
			t.Errorf("after a refused update: %d %s", code, out)
		}
	})
}

// TestPortDeviceIDOtherRouter: a member cannot make or turn a port into
// an interface of another project's router (409), and nothing changes.
func TestPortDeviceIDOtherRouter(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		theirs := mkRouter(t, e.Client("p2", false), body{})
		n := mkNet(t, e.Client("p1", false), body{})
		code, out := e.Do(t, "POST", "/v2.0/ports", "p1", false, fmt.Sprintf(
			`{"port": {"network_id": %q, "device_owner": "network:router_interface", "device_id": %q}}`, n.ID, theirs.ID))
		if code != 409 || !strings.Contains(out, "DeviceIDNotOwnedByTenant") {
			t.Errorf("create with another project's router: %d %s", code, out)
		}
		if got := listIDs(t, ports.List(e.Admin(), ports.ListOpts{NetworkID: n.ID}), "ports"); len(got) != 0 {
			t.Errorf("a refused create made %v", got)
		}
		p := mkPort(t, e.Client("p1", false), body{"network_id": n.ID})
		code, out = e.Do(t, "PUT", "/v2.0/ports/"+p.ID, "p1", false, fmt.Sprintf(
			`{"port": {"device_owner": "network:router_interface", "device_id": %q}}`, theirs.ID))
		if code != 409 {
			t.Errorf("update to another project's router: %d %s", code, out)
		}
		if g := must[port](t, ports.Get(bg, e.Admin(), p.ID), "port"); g.DeviceID != "" || g.DeviceOwner != "" {
			t.Errorf("a refused update changed the port: %+v", g)
		}
		// Its own router is fine.
		mine := mkRouter(t, e.Client("p1", false), body{})
		if code, out := e.Do(t, "PUT", "/v2.0/ports/"+p.ID, "p1", false, fmt.Sprintf(
			`{"port": {"device_owner": "network:router_interface", "device_id": %q}}`, mine.ID)); code != 200 {
			t.Errorf("update to its own router: %d %s", code, out)
		}
	})
}

// TestUnstorableIDs: an id with a NUL byte or invalid UTF-8 is simply not
// found, on PostgreSQL (which refuses such text) as on SQLite: 404 for a
// member, an empty list for a filter, never a 500.
func TestUnstorableIDs(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		mkNet(t, e.Client("p1", false), body{})
		for _, id := range []string{"%00", "a%00b", "%FF%FE", "%C3%28"} {
			for _, path := range []string{"/v2.0/networks/" + id, "/v2.0/ports/" + id, "/v2.0/routers/" + id, "/v2.0/security-groups/" + id} {
				if code, out := e.Do(t, "GET", path, "p1", false, ""); code != 404 {
					t.Errorf("GET %s: %d %s", path, code, out)
				}
				if code, out := e.Do(t, "DELETE", path, "p1", false, ""); code != 404 {
					t.Errorf("DELETE %s: %d %s", path, code, out)
				}
			}
			for _, q := range []string{"/v2.0/networks?id=" + id, "/v2.0/ports?network_id=" + id, "/v2.0/subnets?network_id=" + id} {
				code, out := e.Do(t, "GET", q, "p1", false, "")
				if code != 200 || strings.Contains(out, `"id":`) {
					t.Errorf("GET %s: %d %s, want an empty list", q, code, out)
				}
			}
			code, out := e.Do(t, "POST", "/v2.0/ports", "p1", false, `{"port": {"network_id": "`+strings.ReplaceAll(id, "%", "\\u00")+`"}}`)
			if code >= 500 {
				t.Errorf("a port on network %q: %d %s", id, code, out)
			}
		}
	})
}

// TestCreateRacesDelete: creates that point at something being deleted
// (a rule's remote group, a port's subnet) answer 201, 404 or 409 as the
// race falls, never 500 (PostgreSQL's foreign keys used to leak through).
func TestCreateRacesDelete(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		for round := range 5 {
			code, out := e.Do(t, "POST", "/v2.0/security-groups", "p1", false, `{"security_group": {"name": "target"}}`)
			if code != 201 {
				t.Fatalf("group: %d %s", code, out)
			}
			g := between(out, `"id":"`, `"`)
			if code, out = e.Do(t, "POST", "/v2.0/security-groups", "p1", false, `{"security_group": {"name": "holder"}}`); code != 201 {
				t.Fatalf("group: %d %s", code, out)
			}
			h := between(out, `"id":"`, `"`)
			n := mkNet(t, e.Client("p1", false), body{})
			s := mkSubnet(t, e.Client("p1", false), body{"network_id": n.ID, "ip_version": 4, "cidr": "10.93.0.0/24"})
			codes := make(chan int, 20)
			for i := range 10 {
				go func() {
					c, _ := e.Do(t, "POST", "/v2.0/security-group-rules", "p1", false, fmt.Sprintf(
						`{"security_group_rule": {"security_group_id": %q, "direction": "ingress", "protocol": "tcp", "port_range_min": %d, "port_range_max": %d, "remote_group_id": %q}}`, h, 1000+i, 1000+i, g))
					codes <- c
				}()
				go func() {
					c, _ := e.Do(t, "POST", "/v2.0/ports", "p1", false, fmt.Sprintf(`{"port": {"network_id": %q, "fixed_ips": [{"subnet_id": %q}]}}`, n.ID, s.ID))
					codes <- c
				}()
			}
			e.Do(t, "DELETE", "/v2.0/security-groups/"+g, "p1", false, "")
			e.Do(t, "DELETE", "/v2.0/subnets/"+s.ID, "p1", false, "")
			for range 20 {
				if c := <-codes; c >= 500 {
					t.Errorf("round %d: a create racing a delete answered %d", round, c)
				}
			}
		}
	})
}

// TestPortPagesStreamed: a member paging through ports by id (read from
// the store a page at a time) sees each of its ports once, in id order,
// none of another project's, with the filters applied before the limit;
// the links lead to the end and back.
func TestPortPagesStreamed(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		n := mkNet(t, e.Client("p1", false), body{"shared": false})
		shared := mkNet(t, e.Admin(), body{"shared": true})
		var mine []string
		for i := range 13 {
			owner := ""
			if i%3 == 0 {
				owner = "compute:nova"
			}
			mine = append(mine, mkPort(t, e.Client("p1", false), body{"network_id": n.ID, "device_owner": owner}).ID)
			mkPort(t, e.Client("p2", false), body{"network_id": shared.ID}) // not p1's
		}
		slices.Sort(mine)
		walk := func(query string) []string {
			t.Helper()
			var got []string
			path := "/v2.0/ports?" + query
			for range 20 {
				code, out := e.Do(t, "GET", path, "p1", false, "")
				var page struct {
					Ports []struct{ ID string }        `json:"ports"`
					Links []struct{ Rel, Href string } `json:"ports_links"`
				}
				if code != 200 || json.Unmarshal([]byte(out), &page) != nil {
					t.Fatalf("GET %s: %d %s", path, code, out)
				}
				for _, p := range page.Ports {
					got = append(got, p.ID)
				}
				next := ""
				for _, l := range page.Links {
					if l.Rel == "next" {
						next = l.Href
					}
				}
				if next == "" {
					return got
				}
				path = next[strings.Index(next, "/v2.0/"):]
			}
			t.Fatal("no end to the pages")
			return nil
		}
		if got := walk("limit=4"); !slices.Equal(got, mine) {
			t.Errorf("pages of 4: %v\nwant %v", got, mine)
		}
		var nova []string
		for _, id := range mine {
			if g := must[port](t, ports.Get(bg, e.Admin(), id), "port"); g.DeviceOwner == "compute:nova" {
				nova = append(nova, id)
			}
		}
		slices.Sort(nova)
		if got := walk("limit=2&device_owner=compute:nova&sort_key=id&sort_dir=asc"); !slices.Equal(got, nova) {
			t.Errorf("filtered pages: %v\nwant %v", got, nova)
		}
		if code, out := e.Do(t, "GET", "/v2.0/ports?limit=2&marker=00000000-0000-4000-8000-000000000000", "p1", false, ""); code != 404 {
			t.Errorf("a marker that is no port: %d %s", code, out)
		}
	})
}
