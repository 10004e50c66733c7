package server_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"muon/internal/agentapi"
	"muon/internal/server/servertest"
)

// l3Beat registers (or keeps alive) the L3 agent of a host.
func l3Beat(t *testing.T, e *servertest.Env, host string) string {
	t.Helper()
	b, _ := json.Marshal(agentapi.Heartbeat{Host: host, AgentType: "L3 agent", Binary: "muon-l3-agent",
		Topic: "l3_agent", StartedAt: "2025-01-02T03:04:05Z", Configurations: map[string]any{"agent_mode": "legacy"}})
	code, out := e.Do(t, "POST", "/muon/v1/agents/heartbeat", "admin", true, string(b))
	var r agentapi.HeartbeatReply
	if code != 200 || json.Unmarshal([]byte(out), &r) != nil || r.ID == "" {
		t.Fatalf("l3 heartbeat %s: %d %s", host, code, out)
	}
	return r.ID
}

// l3Section reads a host's l3 section, in full or (since > 0) as a
// delta; ok is false when the state has none.
func l3Section(t *testing.T, e *servertest.Env, host string, since int64) (agentapi.L3, int64, bool) {
	t.Helper()
	q := ""
	if since > 0 {
		q = fmt.Sprintf("since=%d&wait=0", since)
	}
	s := hostState(t, e, host, q)
	raw, ok := s.Sections[agentapi.L3Section]
	var d agentapi.L3
	if ok {
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("l3 section of %s: %v in %s", host, err, raw)
		}
	}
	return d, s.Revision, ok
}

func portHost(t *testing.T, e *servertest.Env, id string) string {
	t.Helper()
	var p struct {
		Host string `json:"binding:host_id"`
	}
	if err := ports.Get(bg, e.Admin(), id).ExtractIntoStructPtr(&p, "port"); err != nil {
		t.Fatal(err)
	}
	return p.Host
}

// TestL3Scheduling: a router goes to the live L3 agent, its ports are
// bound to the agent's host, the host's l3 section carries the router
// with its addresses, routes and floating IPs, and deltas carry only what
// changed; the agent's report makes floating IPs ACTIVE; the
// l3_agent_scheduler API moves routers, and a dead agent's routers move.
func TestL3Scheduling(t *testing.T) {
	servertest.StoresWith(t, fastAgents, func(t *testing.T, e *servertest.Env) {
		heartbeat(t, e, "net-1", lbConf("192.0.2.10", false))
		heartbeat(t, e, "compute-1", lbConf("192.0.2.11", false))
		a1 := l3Beat(t, e, "net-1")
		ext, extSub := extNet(t, e, "203.0.113.0/24")
		r := mkRouter(t, e.Admin(), body{"name": "r1", "external_gateway_info": map[string]any{"network_id": ext.ID}})
		if _, out := e.Do(t, "GET", "/v2.0/routers/"+r.ID+"/l3-agents", "admin", true, ""); !strings.Contains(out, a1) {
			t.Fatalf("the router's L3 agents: %s", out)
		}
		if _, out := e.Do(t, "GET", "/v2.0/agents/"+a1+"/l3-routers", "admin", true, ""); !strings.Contains(out, r.ID) {
			t.Fatalf("the agent's routers: %s", out)
		}
		n, s := netWithSubnet(t, e.Admin(), "10.7.0.0/24")
		iface := addIface(t, e.Admin(), r.ID, routers.AddInterfaceOpts{SubnetID: s.ID})
		r = must[router](t, routers.Get(bg, e.Admin(), r.ID), "router")
		gwPort := ""
		pages, _ := ports.List(e.Admin(), ports.ListOpts{DeviceID: r.ID, DeviceOwner: "network:router_gateway"}).AllPages(bg)
		if l, _ := ports.ExtractPorts(pages); len(l) == 1 {
			gwPort = l[0].ID
		}
		for _, id := range []string{iface.PortID, gwPort} {
			if h := portHost(t, e, id); h != "net-1" {
				t.Errorf("router port %s is bound to %q, want net-1", id, h)
			}
		}
		// The router's ports are in its host's l2 section.
		if l2 := hostState(t, e, "net-1", ""); !slices.ContainsFunc(l2.Ports, func(p agentapi.Port) bool { return p.ID == iface.PortID }) {
			t.Errorf("the interface port is not in net-1's l2 section: %+v", l2.Ports)
		}

		vm := mkPort(t, e.Admin(), body{"network_id": n.ID, "binding:host_id": "compute-1"})
		fip := mkFIP(t, e.Admin(), body{"floating_network_id": ext.ID, "port_id": vm.ID})
		sec, _, _ := l3Section(t, e, "net-1", 0)
		if len(sec.Routers) != 1 || sec.Routers[0].ID != r.ID || !sec.Routers[0].EnableSNAT || sec.Routers[0].Gateway == nil ||
			len(sec.Routers[0].Interfaces) != 1 {
			t.Fatalf("l3 section routers: %+v", sec.Routers)
		}
		gw := sec.Routers[0].Gateway
		if gw.ID != gwPort || len(gw.Addrs) != 1 || gw.Addrs[0].Gateway != *extSub.GatewayIP || gw.Addrs[0].PrefixLen != 24 {
			t.Errorf("the router's gateway: %+v", gw)
		}
		if in := sec.Routers[0].Interfaces[0]; in.ID != iface.PortID || in.NetworkID != n.ID || len(in.Addrs) != 1 ||
			in.Addrs[0].IP != *s.GatewayIP || in.Addrs[0].PrefixLen != 24 || in.MTU == 0 {
			t.Errorf("the router's interface: %+v", in)
		}
		if len(sec.FloatingIPs) != 1 || sec.FloatingIPs[0].ID != fip.ID || sec.FloatingIPs[0].FloatingIP != fip.Address ||
			sec.FloatingIPs[0].FixedIP != vm.FixedIPs[0].IPAddress || sec.FloatingIPs[0].RouterID != r.ID {
			t.Errorf("l3 section floating IPs: %+v", sec.FloatingIPs)
		}
		if other, _, _ := l3Section(t, e, "compute-1", 0); len(other.Routers) != 0 {
			t.Errorf("a host without an L3 agent hosts %+v", other.Routers)
		}

		// The agent reports the floating IP programmed: ACTIVE.
		postStatus(t, e, "compute-1", agentapi.L3Section, agentapi.L3Status{Active: []string{fip.ID}})
		if st := must[floatingIP](t, floatingips.Get(bg, e.Admin(), fip.ID), "floatingip").Status; st != "DOWN" {
			t.Errorf("a report from a host that does not host the router made the floating IP %s", st)
		}
		postStatus(t, e, "net-1", agentapi.L3Section, agentapi.L3Status{Active: []string{fip.ID}})
		if st := must[floatingIP](t, floatingips.Get(bg, e.Admin(), fip.ID), "floatingip").Status; st != "ACTIVE" {
			t.Errorf("after the report, the floating IP is %s, want ACTIVE", st)
		}
		// Its port unbound, it is DOWN; bound again, ACTIVE.
		for _, c := range []struct{ host, want string }{{"", "DOWN"}, {"compute-1", "ACTIVE"}} {
			if code, out := e.Do(t, "PUT", "/v2.0/ports/"+vm.ID, "admin", true, `{"port": {"binding:host_id": "`+c.host+`"}}`); code != 200 {
				t.Fatalf("port update: %d %s", code, out)
			}
			if st := must[floatingIP](t, floatingips.Get(bg, e.Admin(), fip.ID), "floatingip").Status; st != c.want {
				t.Errorf("its port bound to %q, the floating IP is %s, want %s", c.host, st, c.want)
			}
		}
		_, rev, _ := l3Section(t, e, "net-1", 0)

		// An extra route: the router alone comes again, not its NAT.
		if _, err := routers.Update(bg, e.Admin(), r.ID, upd{B: body{"routes": []any{map[string]any{"destination": "10.99.0.0/16", "nexthop": "10.7.0.50"}}}}).Extract(); err != nil {
			t.Fatal(err)
		}
		d, rev2, ok := l3Section(t, e, "net-1", rev)
		if !ok || len(d.Routers) != 1 || len(d.Routers[0].Routes) != 1 || d.Routers[0].Routes[0].Nexthop != "10.7.0.50" || len(d.FloatingIPs) != 0 {
			t.Errorf("delta after an extra route: %+v", d)
		}
		// Disassociating: the floating IP alone, removed, and DOWN.
		if _, err := floatingips.Update(bg, e.Admin(), fip.ID, floatingips.UpdateOpts{PortID: new(string)}).Extract(); err != nil {
			t.Fatal(err)
		}
		d, rev3, ok := l3Section(t, e, "net-1", rev2)
		if !ok || len(d.Routers) != 0 || !slices.Equal(d.RemovedFloatingIPs, []string{fip.ID}) {
			t.Errorf("delta after disassociating: %+v", d)
		}
		if st := must[floatingIP](t, floatingips.Get(bg, e.Admin(), fip.ID), "floatingip").Status; st != "DOWN" {
			t.Errorf("a disassociated floating IP is %s, want DOWN", st)
		}
		// A port forwarding brings its floating IP's address along.
		code, out := e.Do(t, "POST", "/v2.0/floatingips/"+fip.ID+"/port_forwardings", "admin", true,
			fmt.Sprintf(`{"port_forwarding": {"protocol": "tcp", "internal_port_id": %q, "internal_port": 22, "external_port": 2222}}`, vm.ID))
		if code != 201 {
			t.Fatalf("port forwarding: %d %s", code, out)
		}
		d, rev4, _ := l3Section(t, e, "net-1", rev3)
		if len(d.PortForwardings) != 1 || d.PortForwardings[0].ExternalPort != 2222 || d.PortForwardings[0].InternalPortEnd != 22 ||
			d.PortForwardings[0].FloatingIP != fip.Address || len(d.FloatingIPs) != 1 || d.FloatingIPs[0].FixedIP != "" {
			t.Errorf("delta after a port forwarding: %+v", d)
		}

		// The scheduler's API: taking the router from its agent removes
		// it from the host; giving it back brings it whole.
		a2 := l3Beat(t, e, "net-2")
		heartbeat(t, e, "net-2", lbConf("192.0.2.12", false))
		if code, out := e.Do(t, "POST", "/v2.0/agents/"+a2+"/l3-routers", "admin", true, `{"router_id": "`+r.ID+`"}`); code != 409 ||
			!strings.Contains(out, "RouterHostedByL3Agent") {
			t.Errorf("giving a hosted router to a second agent: %d %s", code, out)
		}
		if code, out := e.Do(t, "DELETE", "/v2.0/agents/"+a1+"/l3-routers/"+r.ID, "admin", true, ""); code != 204 {
			t.Fatalf("remove router from agent: %d %s", code, out)
		}
		if d, _, _ := l3Section(t, e, "net-1", rev4); !slices.Contains(d.RemovedRouters, r.ID) {
			t.Errorf("delta after the router left the agent: %+v", d)
		}
		if code, out := e.Do(t, "DELETE", "/v2.0/agents/"+a1+"/l3-routers/"+r.ID, "admin", true, ""); code != 409 ||
			!strings.Contains(out, "RouterNotHostedByL3Agent") {
			t.Errorf("removing an unhosted router: %d %s", code, out)
		}
		if code, out := e.Do(t, "POST", "/v2.0/agents/"+a2+"/l3-routers", "admin", true, `{"router_id": "`+r.ID+`"}`); code != 201 {
			t.Fatalf("add router to agent: %d %s", code, out)
		}
		if h := portHost(t, e, iface.PortID); h != "net-2" {
			t.Errorf("after moving the router, its interface is bound to %q", h)
		}
		sec2, _, _ := l3Section(t, e, "net-2", 0)
		if len(sec2.Routers) != 1 || len(sec2.PortForwardings) != 1 || len(sec2.FloatingIPs) != 1 {
			t.Errorf("net-2's section after taking the router: %+v", sec2)
		}

		// net-2 stops beating, net-1 keeps on: the router moves back.
		deadline := time.Now().Add(15 * time.Second)
		for {
			l3Beat(t, e, "net-1")
			heartbeat(t, e, "net-1", lbConf("192.0.2.10", false))
			_, out := e.Do(t, "GET", "/v2.0/routers/"+r.ID+"/l3-agents", "admin", true, "")
			if strings.Contains(out, a1) && !strings.Contains(out, a2) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the router did not move off the dead agent: %s", out)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if h := portHost(t, e, iface.PortID); h != "net-1" {
			t.Errorf("after failover, the interface is bound to %q", h)
		}

		// Faults.
		for _, c := range []struct {
			method, path, body, want string
			code                     int
		}{
			{"POST", "/v2.0/agents/" + a1 + "/l3-routers", `{}`, "router_id", 400},
			{"POST", "/v2.0/agents/nope/l3-routers", `{"router_id": "` + r.ID + `"}`, "AgentNotFound", 404},
			{"POST", "/v2.0/agents/" + a1 + "/l3-routers", `{"router_id": "nope"}`, "RouterNotFound", 404},
			{"GET", "/v2.0/routers/nope/l3-agents", "", "RouterNotFound", 404},
		} {
			if code, out := e.Do(t, c.method, c.path, "admin", true, c.body); code != c.code || !strings.Contains(out, c.want) {
				t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, code, out, c.code, c.want)
			}
		}
		if code, _ := e.Do(t, "GET", "/v2.0/routers/"+r.ID+"/l3-agents", "demo", false, ""); code != 403 && code != 404 {
			t.Errorf("a member reads the router's agents: %d", code)
		}
	})
}

// TestL3SchedulingReachesTheGateway: a router with a gateway goes to an
// L3 agent whose host can wire the external network, though another is
// less loaded; one without a gateway to the least loaded.
func TestL3SchedulingReachesTheGateway(t *testing.T) {
	servertest.StoresWith(t, fastAgents, func(t *testing.T, e *servertest.Env) {
		heartbeat(t, e, "net-a", lbConf("192.0.2.10", false))
		conf := lbConf("192.0.2.11", false)
		conf["interface_mappings"] = map[string]any{"public": "eth2"}
		heartbeat(t, e, "net-b", conf)
		l3Beat(t, e, "net-a")
		b := l3Beat(t, e, "net-b")
		ext := mkNet(t, e.Admin(), body{"name": "public", "router:external": true,
			"provider:network_type": "flat", "provider:physical_network": "public"})
		mkSubnet(t, e.Admin(), body{"network_id": ext.ID, "ip_version": 4, "cidr": "198.51.100.0/24", "enable_dhcp": false})
		for i := range 2 {
			r := mkRouter(t, e.Admin(), body{"name": fmt.Sprint("r", i), "external_gateway_info": map[string]any{"network_id": ext.ID}})
			if _, out := e.Do(t, "GET", "/v2.0/routers/"+r.ID+"/l3-agents", "admin", true, ""); !strings.Contains(out, b) {
				t.Errorf("router %d with a gateway on physnet public is not on net-b, the one host that maps it: %s", i, out)
			}
		}
		r := mkRouter(t, e.Admin(), body{"name": "inner"})
		if _, out := e.Do(t, "GET", "/v2.0/routers/"+r.ID+"/l3-agents", "admin", true, ""); strings.Contains(out, b) {
			t.Errorf("a router without a gateway went to the busier agent: %s", out)
		}
	})
}

// TestConntrackHelpers: a router's conntrack helpers (l3-conntrack-helper)
// with Neutron's checks, in its host's l3 section, gone with the router.
func TestConntrackHelpers(t *testing.T) {
	servertest.StoresWith(t, fastAgents, func(t *testing.T, e *servertest.Env) {
		heartbeat(t, e, "net-1", lbConf("192.0.2.10", false))
		l3Beat(t, e, "net-1")
		ext, _ := extNet(t, e, "203.0.113.0/24")
		r := mkRouter(t, e.Admin(), body{"name": "r1", "external_gateway_info": map[string]any{"network_id": ext.ID}})
		path := "/v2.0/routers/" + r.ID + "/conntrack_helpers"
		code, out := e.Do(t, "POST", path, "admin", true, `{"conntrack_helper": {"protocol": "tcp", "port": 21, "helper": "ftp"}}`)
		var c struct {
			ConntrackHelper struct {
				ID, Protocol, Helper string
				Port                 int
			} `json:"conntrack_helper"`
		}
		if code != 201 || json.Unmarshal([]byte(out), &c) != nil || c.ConntrackHelper.Port != 21 || c.ConntrackHelper.Helper != "ftp" {
			t.Fatalf("create: %d %s", code, out)
		}
		for _, f := range []struct {
			body, want string
			code       int
		}{
			{`{"conntrack_helper": {"protocol": "tcp", "port": 21, "helper": "ftp"}}`, "duplicate conntrack helper", 400},
			{`{"conntrack_helper": {"protocol": "tcp", "port": 69, "helper": "nope"}}`, "ConntrackHelperNotAllowed", 400},
			{`{"conntrack_helper": {"protocol": "tcp", "port": 69, "helper": "tftp"}}`, "InvalidProtocolForHelper", 400},
			{`{"conntrack_helper": {"protocol": "tcp", "port": 70000, "helper": "ftp"}}`, "port", 400},
			{`{"conntrack_helper": {"protocol": "gre", "port": 21, "helper": "ftp"}}`, "protocol", 400},
		} {
			if code, out := e.Do(t, "POST", path, "admin", true, f.body); code != f.code || !strings.Contains(out, f.want) {
				t.Errorf("POST %s: %d %s, want %d %s", f.body, code, out, f.code, f.want)
			}
		}
		if code, out := e.Do(t, "GET", path+"/"+c.ConntrackHelper.ID, "other", false, ""); code != 404 {
			t.Errorf("another project reads the helper: %d %s", code, out)
		}
		sec, _, _ := l3Section(t, e, "net-1", 0)
		if len(sec.Routers) != 1 || len(sec.Routers[0].ConntrackHelpers) != 1 || sec.Routers[0].ConntrackHelpers[0] !=
			(agentapi.ConntrackHelper{Protocol: "tcp", Port: 21, Helper: "ftp"}) {
			t.Errorf("the router's helpers in its host's section: %+v", sec.Routers)
		}
		if code, out := e.Do(t, "PUT", path+"/"+c.ConntrackHelper.ID, "admin", true, `{"conntrack_helper": {"port": 2121}}`); code != 200 || !strings.Contains(out, "2121") {
			t.Errorf("update: %d %s", code, out)
		}
		// The old key is free again.
		if code, out := e.Do(t, "POST", path, "admin", true, `{"conntrack_helper": {"protocol": "tcp", "port": 21, "helper": "ftp"}}`); code != 201 {
			t.Errorf("create on the freed key: %d %s", code, out)
		}
		if code, out := e.Do(t, "DELETE", path+"/"+c.ConntrackHelper.ID, "admin", true, ""); code != 204 {
			t.Errorf("delete: %d %s", code, out)
		}
		if code, _ := e.Do(t, "GET", path+"/"+c.ConntrackHelper.ID, "admin", true, ""); code != 404 {
			t.Errorf("a deleted helper reads %d", code)
		}
		if err := routers.Delete(bg, e.Admin(), r.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if code, _ := e.Do(t, "GET", path, "admin", true, ""); code != 404 {
			t.Errorf("a deleted router's helpers list %d", code)
		}
	})
}
