package server_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"muon/internal/agentapi"
	"muon/internal/agents"
	"muon/internal/server"
	"muon/internal/server/servertest"
)

// fastAgents makes agents report every second and die after three.
func fastAgents(c *server.Config) {
	o := c.Features["agents"].(*agents.Config)
	o.ReportInterval, o.DownTime = 1, 3
}

// lbConf is a Linux bridge agent's configurations: VXLAN over tunnelIP
// (none if empty), physnet1 on eth1, 802.1Q if vlan.
func lbConf(tunnelIP string, vlan bool) map[string]any {
	c := map[string]any{
		"interface_mappings": map[string]any{"physnet1": "eth1"},
		"kernel":             map[string]any{"vxlan": true, "vlan": vlan},
		"devices":            0,
	}
	if tunnelIP != "" {
		c["tunneling_ip"] = tunnelIP
		c["tunnel_types"] = []any{"vxlan"}
	}
	return c
}

func heartbeat(t *testing.T, e *servertest.Env, host string, conf map[string]any) agentapi.HeartbeatReply {
	t.Helper()
	b, _ := json.Marshal(agentapi.Heartbeat{Host: host, AgentType: "Linux bridge agent", Binary: "muon-linuxbridge-agent",
		Topic: "N/A", StartedAt: "2025-01-02T03:04:05Z", Configurations: conf})
	code, out := e.Do(t, "POST", "/muon/v1/agents/heartbeat", "admin", true, string(b))
	var r agentapi.HeartbeatReply
	if code != 200 || json.Unmarshal([]byte(out), &r) != nil || r.ID == "" {
		t.Fatalf("heartbeat %s: %d %s", host, code, out)
	}
	return r
}

// hostView is a host's state with its l2 section read.
type hostView struct {
	agentapi.State
	agentapi.L2
}

func hostState(t *testing.T, e *servertest.Env, host, query string) hostView {
	t.Helper()
	path := "/muon/v1/hosts/" + host + "/state"
	if query != "" {
		path += "?" + query
	}
	code, out := e.Do(t, "GET", path, "admin", true, "")
	var s hostView
	if code != 200 || json.Unmarshal([]byte(out), &s.State) != nil {
		t.Fatalf("state of %s: %d %s", host, code, out)
	}
	if raw, ok := s.Sections[agentapi.L2Section]; ok {
		if err := json.Unmarshal(raw, &s.L2); err != nil {
			t.Fatalf("state of %s: l2 section: %v in %s", host, err, out)
		}
	} else if !s.Delta && !s.Resync {
		t.Fatalf("state of %s: a full state without its l2 section: %s", host, out)
	}
	return s
}

type agentDoc struct {
	ID             string         `json:"id"`
	AgentType      string         `json:"agent_type"`
	Binary         string         `json:"binary"`
	Host           string         `json:"host"`
	Topic          string         `json:"topic"`
	Alive          bool           `json:"alive"`
	AdminStateUp   bool           `json:"admin_state_up"`
	Configurations map[string]any `json:"configurations"`
	Heartbeat      string         `json:"heartbeat_timestamp"`
	StartedAt      string         `json:"started_at"`
	CreatedAt      string         `json:"created_at"`
	Description    *string        `json:"description"`
}

func getAgent(t *testing.T, e *servertest.Env, id string) agentDoc {
	t.Helper()
	code, out := e.Do(t, "GET", "/v2.0/agents/"+id, "admin", true, "")
	var r struct{ Agent agentDoc }
	if code != 200 || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("agent %s: %d %s", id, code, out)
	}
	return r.Agent
}

// bindPort makes a port bound to host (admin) on a network.
func bindPort(t *testing.T, e *servertest.Env, networkID, host string) port {
	t.Helper()
	return mkPort(t, e.Admin(), body{"network_id": networkID, "binding:host_id": host})
}

func TestAgents(t *testing.T) {
	servertest.StoresWith(t, fastAgents, func(t *testing.T, e *servertest.Env) {
		r := heartbeat(t, e, "compute-1", lbConf("192.0.2.1", false))
		if !r.AdminStateUp || r.ReportInterval != 1 {
			t.Errorf("reply %+v, want enabled with report_interval 1", r)
		}
		// Heartbeats of a live agent with the same configurations (the
		// device count aside) are no changes of the feed.
		before := readFeed(t, e, "").Last
		conf := lbConf("192.0.2.1", false)
		conf["devices"] = 7
		if again := heartbeat(t, e, "compute-1", conf); again.ID != r.ID {
			t.Errorf("a second heartbeat made agent %s, want %s", again.ID, r.ID)
		}
		if after := readFeed(t, e, "").Last; after != before {
			t.Errorf("a plain heartbeat moved the feed from %d to %d", before, after)
		}
		a := getAgent(t, e, r.ID)
		if !a.Alive || a.Host != "compute-1" || a.AgentType != "Linux bridge agent" || a.Binary != "muon-linuxbridge-agent" ||
			a.Topic != "N/A" || a.Configurations["tunneling_ip"] != "192.0.2.1" || a.Heartbeat == "" ||
			a.StartedAt != "2025-01-02 03:04:05" || a.CreatedAt == "" || !a.AdminStateUp {
			t.Errorf("agent %+v", a)
		}
		var list struct{ Agents []agentDoc }
		code, out := e.Do(t, "GET", "/v2.0/agents?host=compute-1", "admin", true, "")
		if code != 200 || json.Unmarshal([]byte(out), &list) != nil || len(list.Agents) != 1 || list.Agents[0].ID != r.ID {
			t.Errorf("list: %d %s", code, out)
		}
		t.Run("admin-only", func(t *testing.T) {
			if code, _ := e.Do(t, "GET", "/v2.0/agents", "p1", false, ""); code == 200 {
				if _, out := e.Do(t, "GET", "/v2.0/agents", "p1", false, ""); strings.Contains(out, r.ID) {
					t.Errorf("a member sees the agents: %s", out)
				}
			}
			if code, _ := e.Do(t, "PUT", "/v2.0/agents/"+r.ID, "p1", false, `{"agent": {"admin_state_up": false}}`); code != 404 && code != 403 {
				t.Errorf("a member disabling an agent: %d", code)
			}
			for _, p := range []string{"/muon/v1/agents/heartbeat", "/muon/v1/hosts/compute-1/status"} {
				if code, _ := e.Do(t, "POST", p, "p1", false, `{}`); code != 403 {
					t.Errorf("a member posting %s: %d, want 403", p, code)
				}
			}
			if code, _ := e.Do(t, "GET", "/muon/v1/hosts/compute-1/state", "p1", false, ""); code != 403 {
				t.Errorf("a member reading a host's state: %d, want 403", code)
			}
			if code, _ := e.Do(t, "POST", "/v2.0/agents", "admin", true, `{"agent": {}}`); code != 405 && code != 400 {
				t.Errorf("creating an agent through the API: %d", code)
			}
		})
		t.Run("extension", func(t *testing.T) {
			if code, _ := e.Do(t, "GET", "/v2.0/extensions/agent", "p1", false, ""); code != 200 {
				t.Errorf("extension agent: %d", code)
			}
		})

		n := mkNet(t, e.Client("p1", false), body{})
		t.Run("admin-down-takes-agent-out", func(t *testing.T) {
			code, out := e.Do(t, "PUT", "/v2.0/agents/"+r.ID, "admin", true, `{"agent": {"admin_state_up": false, "description": "maintenance"}}`)
			if code != 200 || !strings.Contains(out, `"admin_state_up":false`) || !strings.Contains(out, "maintenance") {
				t.Fatalf("disable: %d %s", code, out)
			}
			if r := heartbeat(t, e, "compute-1", lbConf("192.0.2.1", false)); r.AdminStateUp {
				t.Error("heartbeat reply says enabled")
			}
			p := bindPort(t, e, n.ID, "compute-1")
			if p.VIFType != "binding_failed" {
				t.Errorf("port on a disabled agent's host: %s, want binding_failed", p.VIFType)
			}
			// Enabled again, the host's failed ports bind.
			if code, out := e.Do(t, "PUT", "/v2.0/agents/"+r.ID, "admin", true, `{"agent": {"admin_state_up": true}}`); code != 200 {
				t.Fatalf("enable: %d %s", code, out)
			}
			if g := must[port](t, ports.Get(bg, e.Admin(), p.ID), "port"); g.VIFType != "bridge" || g.Status != "DOWN" {
				t.Errorf("after enabling: vif %s status %s, want bridge DOWN", g.VIFType, g.Status)
			}
		})
		t.Run("dead-after-down-time", func(t *testing.T) {
			deadline := time.Now().Add(6 * time.Second)
			for getAgent(t, e, r.ID).Alive {
				if time.Now().After(deadline) {
					t.Fatal("the agent is alive 6 s after its last heartbeat (agent_down_time 3 s)")
				}
				time.Sleep(200 * time.Millisecond)
			}
			p := bindPort(t, e, n.ID, "compute-1")
			if p.VIFType != "binding_failed" {
				t.Errorf("port on a dead agent's host: %s, want binding_failed", p.VIFType)
			}
			// It comes back: alive, and the port binds.
			heartbeat(t, e, "compute-1", lbConf("192.0.2.1", false))
			if !getAgent(t, e, r.ID).Alive {
				t.Error("dead after a heartbeat")
			}
			if g := must[port](t, ports.Get(bg, e.Admin(), p.ID), "port"); g.VIFType != "bridge" {
				t.Errorf("after the agent came back: %s, want bridge", g.VIFType)
			}
		})
		t.Run("delete", func(t *testing.T) {
			if code, out := e.Do(t, "DELETE", "/v2.0/agents/"+r.ID, "admin", true, ""); code != 204 {
				t.Fatalf("delete: %d %s", code, out)
			}
			if code, _ := e.Do(t, "GET", "/v2.0/agents/"+r.ID, "admin", true, ""); code != 404 {
				t.Errorf("deleted agent: %d, want 404", code)
			}
			if again := heartbeat(t, e, "compute-1", lbConf("192.0.2.1", false)); again.ID == r.ID {
				t.Error("a deleted agent came back with its old id")
			}
		})
	})
}

func TestPortBinding(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin := e.Admin()
		heartbeat(t, e, "h-vxlan", lbConf("192.0.2.1", false))
		heartbeat(t, e, "h-flat", lbConf("", false))
		heartbeat(t, e, "h-vlan", lbConf("", true))
		nets := map[string]string{}
		for typ, b := range map[string]body{
			"vxlan":  {},
			"flat":   {"provider:network_type": "flat", "provider:physical_network": "physnet1"},
			"flat2":  {"provider:network_type": "flat", "provider:physical_network": "physnet2"},
			"vlan":   {"provider:network_type": "vlan", "provider:physical_network": "physnet1"},
			"local":  {"provider:network_type": "local"},
			"geneve": {"provider:network_type": "geneve"},
		} {
			nets[typ] = mkNet(t, admin, b).ID
		}
		tests := []struct {
			name, net, host, want string
		}{
			{"vxlan-tunnel", "vxlan", "h-vxlan", "bridge"},
			{"vxlan-no-tunnel", "vxlan", "h-flat", "binding_failed"},
			{"flat-mapped", "flat", "h-flat", "bridge"},
			{"flat-unmapped-physnet", "flat2", "h-flat", "binding_failed"},
			{"vlan-with-8021q", "vlan", "h-vlan", "bridge"},
			{"vlan-without-8021q", "vlan", "h-flat", "binding_failed"},
			{"local", "local", "h-vxlan", "bridge"},
			{"geneve-never", "geneve", "h-vxlan", "binding_failed"},
			{"no-agent", "vxlan", "h-nobody", "binding_failed"},
			{"no-host", "vxlan", "", "unbound"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				raw := rawOf(t, ports.Create(bg, admin, body{"network_id": nets[tc.net], "binding:host_id": tc.host}).Result, "port")
				if raw["binding:vif_type"] != tc.want || raw["status"] != "DOWN" {
					t.Fatalf("vif_type %v status %v, want %s DOWN", raw["binding:vif_type"], raw["status"], tc.want)
				}
				details, _ := raw["binding:vif_details"].(map[string]any)
				if tc.want == "bridge" && (details["port_filter"] != true || details["connectivity"] != "l2") {
					t.Errorf("vif_details %v", details)
				}
				if tc.want != "bridge" && len(details) != 0 {
					t.Errorf("vif_details %v, want {}", details)
				}
			})
		}
		t.Run("agent-comes-later", func(t *testing.T) {
			p := bindPort(t, e, nets["vxlan"], "h-late")
			if p.VIFType != "binding_failed" {
				t.Fatalf("before the agent: %s", p.VIFType)
			}
			heartbeat(t, e, "h-late", lbConf("192.0.2.9", false))
			g := must[port](t, ports.Get(bg, admin, p.ID), "port")
			if g.VIFType != "bridge" || g.RevisionNumber <= p.RevisionNumber {
				t.Errorf("after the agent's first heartbeat: vif %s revision %d (was %d)", g.VIFType, g.RevisionNumber, p.RevisionNumber)
			}
		})
		t.Run("rebind-and-unbind", func(t *testing.T) {
			p := bindPort(t, e, nets["vxlan"], "h-nobody")
			u := must[port](t, ports.Update(bg, admin, p.ID, upd{body{"binding:host_id": "h-vxlan"}}), "port")
			if u.VIFType != "bridge" {
				t.Errorf("moved to a host with an agent: %s", u.VIFType)
			}
			u = must[port](t, ports.Update(bg, admin, p.ID, upd{body{"binding:host_id": ""}}), "port")
			if u.VIFType != "unbound" {
				t.Errorf("unbound: %s", u.VIFType)
			}
			u = must[port](t, ports.Update(bg, admin, p.ID, upd{body{"binding:host_id": "h-vxlan", "binding:vnic_type": "direct"}}), "port")
			if u.VIFType != "binding_failed" {
				t.Errorf("vnic direct: %s, want binding_failed", u.VIFType)
			}
		})
	})
}

func portIDsOf(s hostView) []string {
	var out []string
	for _, p := range s.Ports {
		out = append(out, p.ID)
	}
	slices.Sort(out)
	return out
}

func networkOf(s hostView, id string) *agentapi.Network {
	for i := range s.Networks {
		if s.Networks[i].ID == id {
			return &s.Networks[i]
		}
	}
	return nil
}

func TestHostState(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		admin := e.Admin()
		heartbeat(t, e, "h1", lbConf("192.0.2.1", false))
		heartbeat(t, e, "h2", lbConf("192.0.2.2", false))
		n, _ := netWithSubnet(t, e.Client("p1", false), "10.70.0.0/24")
		other := mkNet(t, e.Client("p1", false), body{})

		empty := hostState(t, e, "h1", "")
		if empty.Delta || empty.Resync || len(empty.Ports) != 0 || len(empty.Networks) != 0 || empty.Revision <= 0 {
			t.Fatalf("empty host: %+v", empty)
		}
		rev := empty.Revision

		// A port bound here: a delta with it and its network.
		p1 := bindPort(t, e, n.ID, "h1")
		d := hostState(t, e, "h1", fmt.Sprintf("since=%d&wait=5", rev))
		if !d.Delta || d.Resync || d.Revision <= rev || fmt.Sprint(portIDsOf(d)) != fmt.Sprint([]string{p1.ID}) {
			t.Fatalf("delta after binding: %+v", d)
		}
		got := d.Ports[0]
		if got.MAC != p1.MACAddress || len(got.IPs) != 1 || got.IPs[0] != p1.FixedIPs[0].IPAddress || !got.AdminStateUp || got.Device != "tap"+p1.ID[:11] {
			t.Errorf("port %+v", got)
		}
		net := networkOf(d, n.ID)
		if net == nil || net.NetworkType != "vxlan" || net.SegmentationID == 0 || net.MTU != 1450 || len(net.Remotes) != 0 {
			t.Fatalf("network %+v", net)
		}
		rev = d.Revision

		// Nothing for this host: the long poll holds, then answers an
		// empty delta at the new revision.
		bindPort(t, e, other.ID, "h2")
		began := time.Now()
		d = hostState(t, e, "h1", fmt.Sprintf("since=%d&wait=1", rev))
		if !d.Delta || len(d.Ports) != 0 || len(d.Networks) != 0 || d.Revision <= rev || time.Since(began) < 900*time.Millisecond {
			t.Errorf("unrelated change: %+v after %s", d, time.Since(began))
		}
		rev = d.Revision

		// Another host's port on our network: our remotes gain it.
		p2 := bindPort(t, e, n.ID, "h2")
		d = hostState(t, e, "h1", fmt.Sprintf("since=%d&wait=5", rev))
		net = networkOf(d, n.ID)
		if net == nil || len(d.Ports) != 0 || len(net.Remotes) != 1 || net.Remotes[0].TunnelIP != "192.0.2.2" ||
			len(net.Remotes[0].Entries) != 1 || net.Remotes[0].Entries[0].MAC != p2.MACAddress || net.Remotes[0].Entries[0].IPs[0] != p2.FixedIPs[0].IPAddress {
			t.Fatalf("remotes after h2's port: %+v", d)
		}
		if s := hostState(t, e, "h2", ""); len(s.Ports) != 2 || networkOf(s, n.ID) == nil || len(networkOf(s, n.ID).Remotes) != 1 || networkOf(s, n.ID).Remotes[0].TunnelIP != "192.0.2.1" {
			t.Errorf("h2's full state: %+v", s)
		}

		t.Run("status", func(t *testing.T) {
			code, out := e.Do(t, "POST", "/muon/v1/hosts/h1/status", "admin", true, fmt.Sprintf(`{"sections": {"l2": {"up": [%q, %q]}}}`, p1.ID, p2.ID))
			if code != 204 {
				t.Fatalf("status: %d %s", code, out)
			}
			g := must[port](t, ports.Get(bg, admin, p1.ID), "port")
			if g.Status != "ACTIVE" || g.RevisionNumber <= p1.RevisionNumber {
				t.Errorf("reported up: %s revision %d", g.Status, g.RevisionNumber)
			}
			if g := must[port](t, ports.Get(bg, admin, p2.ID), "port"); g.Status != "DOWN" {
				t.Errorf("another host's port reported up here: %s", g.Status)
			}
			e.Do(t, "POST", "/muon/v1/hosts/h1/status", "admin", true, fmt.Sprintf(`{"sections": {"l2": {"down": [%q]}}}`, p1.ID))
			if g := must[port](t, ports.Get(bg, admin, p1.ID), "port"); g.Status != "DOWN" {
				t.Errorf("reported down: %s", g.Status)
			}
			e.Do(t, "POST", "/muon/v1/hosts/h1/status", "admin", true, fmt.Sprintf(`{"sections": {"l2": {"up": [%q]}}}`, p1.ID))
			u := must[port](t, ports.Update(bg, admin, p1.ID, upd{body{"admin_state_up": false}}), "port")
			if u.Status != "DOWN" {
				t.Errorf("admin down: %s", u.Status)
			}
			e.Do(t, "POST", "/muon/v1/hosts/h1/status", "admin", true, fmt.Sprintf(`{"sections": {"l2": {"up": [%q]}}}`, p1.ID))
			if g := must[port](t, ports.Get(bg, admin, p1.ID), "port"); g.Status != "DOWN" {
				t.Errorf("admin-down port reported up: %s", g.Status)
			}
			s := hostState(t, e, "h1", "")
			if len(s.Ports) != 1 || s.Ports[0].AdminStateUp {
				t.Errorf("admin-down port in state: %+v", s.Ports)
			}
		})

		t.Run("delete-and-move", func(t *testing.T) {
			rev := hostState(t, e, "h1", "").Revision
			if err := ports.Delete(bg, admin, p1.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			d := hostState(t, e, "h1", fmt.Sprintf("since=%d&wait=5", rev))
			if !slices.Contains(d.RemovedPorts, p1.ID) || !slices.Contains(d.RemovedNetworks, n.ID) || len(d.Ports) != 0 {
				t.Errorf("after deleting the host's last port: %+v", d)
			}
			// h2 hears its remote is gone.
			s2 := hostState(t, e, "h2", "")
			if nn := networkOf(s2, n.ID); nn == nil || len(nn.Remotes) != 0 {
				t.Errorf("h2's network after h1's port went: %+v", nn)
			}
			// A port moved from h2 to h1 leaves h2 and comes to h1.
			rev = d.Revision
			must[port](t, ports.Update(bg, admin, p2.ID, upd{body{"binding:host_id": "h1"}}), "port")
			d1 := hostState(t, e, "h1", fmt.Sprintf("since=%d&wait=5", rev))
			d2 := hostState(t, e, "h2", fmt.Sprintf("since=%d&wait=5", rev))
			if fmt.Sprint(portIDsOf(d1)) != fmt.Sprint([]string{p2.ID}) || networkOf(d1, n.ID) == nil {
				t.Errorf("h1 after the move: %+v", d1)
			}
			if !slices.Contains(d2.RemovedPorts, p2.ID) || !slices.Contains(d2.RemovedNetworks, n.ID) {
				t.Errorf("h2 after the move: %+v", d2)
			}
		})

		t.Run("resync", func(t *testing.T) {
			cur := hostState(t, e, "h1", "").Revision
			s := hostState(t, e, "h1", fmt.Sprintf("since=%d&wait=1", cur+1000))
			if !s.Resync || s.Revision != cur {
				t.Errorf("a revision from the future: %+v", s)
			}
		})

		t.Run("bad-input", func(t *testing.T) {
			for _, tc := range []struct{ name, method, path, body string }{
				{"since-negative", "GET", "/muon/v1/hosts/h1/state?since=-1", ""},
				{"since-garbage", "GET", "/muon/v1/hosts/h1/state?since=abc", ""},
				{"wait-garbage", "GET", "/muon/v1/hosts/h1/state?since=1&wait=x", ""},
				{"unknown-query", "GET", "/muon/v1/hosts/h1/state?foo=1", ""},
				{"heartbeat-garbage", "POST", "/muon/v1/agents/heartbeat", "\x00garbage{"},
				{"heartbeat-cut", "POST", "/muon/v1/agents/heartbeat", `{"host": "h9", "agent_type": "Linux bridge agent", "configurations": {"tunn`},
				{"heartbeat-no-host", "POST", "/muon/v1/agents/heartbeat", `{"agent_type": "Linux bridge agent"}`},
				{"heartbeat-bad-types", "POST", "/muon/v1/agents/heartbeat", `{"host": 5, "agent_type": []}`},
				{"heartbeat-bad-ip", "POST", "/muon/v1/agents/heartbeat", `{"host": "h9", "agent_type": "Linux bridge agent", "configurations": {"tunneling_ip": "nope"}}`},
				{"heartbeat-trailing", "POST", "/muon/v1/agents/heartbeat", `{"host": "h9", "agent_type": "x"} {}`},
				{"status-garbage", "POST", "/muon/v1/hosts/h1/status", `[1, 2`},
				{"status-bad-types", "POST", "/muon/v1/hosts/h1/status", `{"sections": {"l2": {"up": [1, 2]}}}`},
				{"status-unknown-section", "POST", "/muon/v1/hosts/h1/status", `{"sections": {"nope": {}}}`},
				{"status-section-garbage", "POST", "/muon/v1/hosts/h1/status", `{"sections": {"l2": "up"}}`},
				{"status-empty", "POST", "/muon/v1/hosts/h1/status", ``},
			} {
				t.Run(tc.name, func(t *testing.T) {
					code, out := e.Do(t, tc.method, tc.path, "admin", true, tc.body)
					if code != 400 || faultType([]byte(out)) == "" || strings.HasPrefix(faultType([]byte(out)), "(not") {
						t.Errorf("%d %s, want a 400 fault", code, out)
					}
				})
			}
			if code, out := e.Do(t, "GET", "/v2.0/agents?host=h9", "admin", true, ""); code != 200 || strings.Contains(out, "h9") {
				t.Errorf("a refused heartbeat left an agent: %s", out)
			}
		})
	})
}

// TestHostStateAcrossServers: with two servers on one PostgreSQL
// database, a change through one wakes a long poll on the other at once
// (LISTEN/NOTIFY), not at its next poll.
func TestHostStateAcrossServers(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, a *servertest.Env) {
		if a.Store != "postgres" {
			t.Skip("one SQLite file is one server's")
		}
		b := servertest.Start(t, "postgres", func(c *server.Config) { c.Database = a.Database() })
		heartbeat(t, a, "h1", lbConf("192.0.2.1", false))
		n := mkNet(t, a.Client("p1", false), body{})
		for i := range 3 {
			rev := hostState(t, b, "h1", "").Revision
			got := make(chan hostView, 1)
			go func() { got <- hostState(t, b, "h1", fmt.Sprintf("since=%d&wait=30", rev)) }()
			time.Sleep(200 * time.Millisecond)
			began := time.Now()
			p := bindPort(t, a, n.ID, "h1")
			s := <-got
			if took := time.Since(began); took > time.Second {
				t.Errorf("round %d: server B's long poll woke %s after the change on A", i, took)
			}
			if !slices.Contains(portIDsOf(s), p.ID) {
				t.Errorf("round %d: B's delta %+v lacks the port", i, s)
			}
		}
	})
}

// FuzzAgentChannel: whatever an agent sends, the server answers 2xx or
// 4xx, never 500, and a refused heartbeat registers nothing.
func FuzzAgentChannel(f *testing.F) {
	e := servertest.Start(f, "sqlite", nil)
	paths := []string{"/muon/v1/agents/heartbeat", "/muon/v1/hosts/h1/status", "/muon/v1/hosts/h1/state?"}
	for _, s := range []struct {
		path uint8
		body string
	}{
		{0, `{"host": "h1", "agent_type": "Linux bridge agent", "configurations": {"tunneling_ip": "192.0.2.1", "tunnel_types": ["vxlan"]}}`},
		{0, `{"host": "h1", "agent_type": "Linux bridge agent", "configurations": {"tunnel_types": "vxlan", "kernel": 5, "interface_mappings": []}}`},
		{0, `{"host": "h1", "agent_type": "Linux bridge agent", "started_at": "yesterday"}`},
		{0, `{"host": "", "agent_type": ""}`},
		{0, `{"host": "h1", "agent_type": "Linux bridge agent", "configurations": {"tunn`},
		{1, `{"sections": {"l2": {"up": ["00000000-0000-4000-8000-000000000000"], "down": ["x"]}}}`},
		{1, `{"sections": {"l2": {"up": "all"}}}`},
		{1, `{"sections": {"dhcp": []}}`},
		{1, `null`},
		{2, `since=5&wait=0`},
		{2, `since=99999999999999999999`},
		{2, `since=1&wait=-3`},
	} {
		f.Add(s.path, s.body)
	}
	f.Fuzz(func(t *testing.T, which uint8, in string) {
		path, method, body := paths[int(which)%len(paths)], "POST", in
		if strings.HasSuffix(path, "?") {
			method, path, body = "GET", path+strings.ReplaceAll(in, "wait=", "wait=0&x="), ""
			if _, err := url.Parse(e.URL + path); err != nil {
				return // no client sends it
			}
		}
		code, out := e.Do(t, method, path, "admin", true, body)
		if code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, code, out)
		}
	})
}

// TestStatusIsObserved: a port going ACTIVE is observed state, not
// desired: it wakes neither a host with no port on its network nor one
// with a port there (whose remotes it does not change), though the port's
// status and revision move for the API.
func TestStatusIsObserved(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		for i, h := range []string{"h1", "h2", "h3"} {
			heartbeat(t, e, h, lbConf(fmt.Sprintf("192.0.2.%d", i+1), false))
		}
		a, _ := netWithSubnet(t, e.Client("p1", false), "10.71.0.0/24")
		b, _ := netWithSubnet(t, e.Client("p1", false), "10.72.0.0/24")
		pa := bindPort(t, e, a.ID, "h1")
		bindPort(t, e, b.ID, "h2")
		bindPort(t, e, a.ID, "h3")
		rev := hostState(t, e, "h1", "").Revision

		code, out := e.Do(t, "POST", "/muon/v1/hosts/h1/status", "admin", true, fmt.Sprintf(`{"sections": {"l2": {"up": [%q]}}}`, pa.ID))
		if code != 204 {
			t.Fatalf("status: %d %s", code, out)
		}
		if g := must[port](t, ports.Get(bg, e.Admin(), pa.ID), "port"); g.Status != "ACTIVE" || g.RevisionNumber <= pa.RevisionNumber {
			t.Fatalf("reported up: %s revision %d (was %d)", g.Status, g.RevisionNumber, pa.RevisionNumber)
		}
		for _, h := range []string{"h2", "h3", "h1"} {
			began := time.Now()
			d := hostState(t, e, h, fmt.Sprintf("since=%d&wait=1", rev))
			if took := time.Since(began); took < 900*time.Millisecond || len(d.Ports) != 0 || len(d.Networks) != 0 || d.Resync {
				t.Errorf("%s woke after %s with %+v; a status report should wake no host", h, took.Round(time.Millisecond), d)
			}
		}
		// The feed still tells it, as observed state.
		code, out = e.Do(t, "GET", fmt.Sprintf("/muon/v1/changes?since=%d", rev), "admin", true, "")
		if code != 200 || !strings.Contains(out, `"op":"status"`) || !strings.Contains(out, pa.ID) {
			t.Errorf("changes after the report: %d %s", code, out)
		}
	})
}

// TestDeployment: every heartbeat of one cloud names the same deployment,
// another cloud's another: the agents' device marks tell clouds apart.
func TestDeployment(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		a := heartbeat(t, e, "h1", lbConf("192.0.2.1", false))
		b := heartbeat(t, e, "h2", lbConf("192.0.2.2", false))
		c := heartbeat(t, e, "h1", lbConf("192.0.2.1", false))
		if a.Deployment == "" || a.Deployment != b.Deployment || a.Deployment != c.Deployment {
			t.Errorf("deployments %q %q %q, want one name", a.Deployment, b.Deployment, c.Deployment)
		}
		other := servertest.Start(t, e.Store, nil)
		if d := heartbeat(t, other, "h1", lbConf("192.0.2.1", false)); d.Deployment == "" || d.Deployment == a.Deployment {
			t.Errorf("another cloud's deployment %q, this one's %q", d.Deployment, a.Deployment)
		}
	})
}
