package server_test

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"muon/internal/agentapi"
	"muon/internal/server/servertest"
)

// dhcpBeat registers (or keeps alive) the DHCP agent of a host.
func dhcpBeat(t *testing.T, e *servertest.Env, host string) string {
	t.Helper()
	b, _ := json.Marshal(agentapi.Heartbeat{Host: host, AgentType: "DHCP agent", Binary: "muon-dhcp-agent",
		Topic: "dhcp_agent", StartedAt: "2025-01-02T03:04:05Z", Configurations: map[string]any{}})
	code, out := e.Do(t, "POST", "/muon/v1/agents/heartbeat", "admin", true, string(b))
	var r agentapi.HeartbeatReply
	if code != 200 || json.Unmarshal([]byte(out), &r) != nil || r.ID == "" {
		t.Fatalf("dhcp heartbeat %s: %d %s", host, code, out)
	}
	return r.ID
}

// dhcpSection reads a host's full dhcp section.
func dhcpSection(t *testing.T, e *servertest.Env, host string) agentapi.DHCP {
	t.Helper()
	s := hostState(t, e, host, "")
	var d agentapi.DHCP
	if err := json.Unmarshal(s.Sections[agentapi.DHCPSection], &d); err != nil {
		t.Fatalf("dhcp section of %s: %v in %s", host, err, s.Sections[agentapi.DHCPSection])
	}
	return d
}

func dhcpPorts(t *testing.T, e *servertest.Env, networkID string) []port {
	t.Helper()
	pages, err := ports.List(e.Admin(), ports.ListOpts{NetworkID: networkID, DeviceOwner: "network:dhcp"}).AllPages(bg)
	if err != nil {
		t.Fatal(err)
	}
	var out []port
	if err := ports.ExtractPortsInto(pages, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func portStatus(t *testing.T, e *servertest.Env, id string) string {
	t.Helper()
	return must[port](t, ports.Get(bg, e.Admin(), id), "port").Status
}

func postStatus(t *testing.T, e *servertest.Env, host, section string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	st, _ := json.Marshal(agentapi.Status{Sections: map[string]json.RawMessage{section: b}})
	if code, out := e.Do(t, "POST", "/muon/v1/hosts/"+host+"/status", "admin", true, string(st)); code != 204 {
		t.Fatalf("status %s: %d %s", host, code, out)
	}
}

// TestDHCPScheduling: a subnet with DHCP gives its network to a live DHCP
// agent, with a DHCP port bound to the agent's host holding an address on
// each served subnet; the host's dhcp section carries the network, its
// subnets and ports; a port goes ACTIVE only once wired and its lease
// served; deleting the network takes the hosting along.
func TestDHCPScheduling(t *testing.T) {
	servertest.StoresWith(t, fastAgents, func(t *testing.T, e *servertest.Env) {
		heartbeat(t, e, "net-1", lbConf("192.0.2.10", false))
		agentID := dhcpBeat(t, e, "net-1")
		heartbeat(t, e, "compute-1", lbConf("192.0.2.11", false))

		n := mkNet(t, e.Admin(), body{"name": "served"})
		if out := dhcpPorts(t, e, n.ID); len(out) != 0 {
			t.Fatalf("a network with no subnet has DHCP ports: %+v", out)
		}
		s1 := mkSubnet(t, e.Admin(), body{"network_id": n.ID, "ip_version": 4, "cidr": "10.9.0.0/24", "dns_nameservers": []string{"10.9.0.53"}})
		dp := dhcpPorts(t, e, n.ID)
		if len(dp) != 1 || dp[0].HostID != "net-1" || len(dp[0].FixedIPs) != 1 || dp[0].FixedIPs[0].SubnetID != s1.ID ||
			!strings.HasPrefix(dp[0].DeviceID, "dhcp") || !strings.HasSuffix(dp[0].DeviceID, "-"+n.ID) {
			t.Fatalf("DHCP ports after a subnet: %+v", dp)
		}
		if dp[0].FixedIPs[0].IPAddress != "10.9.0.2" {
			t.Errorf("the DHCP port has %s, want the pool's lowest, 10.9.0.2", dp[0].FixedIPs[0].IPAddress)
		}
		if _, out := e.Do(t, "GET", "/v2.0/networks/"+n.ID+"/dhcp-agents", "admin", true, ""); !strings.Contains(out, agentID) {
			t.Errorf("the network's DHCP agents: %s", out)
		}
		// A second subnet: the same DHCP port takes an address on it.
		mkSubnet(t, e.Admin(), body{"network_id": n.ID, "ip_version": 4, "cidr": "10.9.1.0/24"})
		dp2 := dhcpPorts(t, e, n.ID)
		if len(dp2) != 1 || dp2[0].ID != dp[0].ID || len(dp2[0].FixedIPs) != 2 {
			t.Fatalf("DHCP ports after a second subnet: %+v", dp2)
		}
		// A subnet without DHCP is not served, and gives the port nothing.
		mkSubnet(t, e.Admin(), body{"network_id": n.ID, "ip_version": 4, "cidr": "10.9.2.0/24", "enable_dhcp": false})
		if dp3 := dhcpPorts(t, e, n.ID); len(dp3[0].FixedIPs) != 2 {
			t.Errorf("a subnet without DHCP gave the DHCP port an address: %+v", dp3[0].FixedIPs)
		}
		// A SLAAC subnet: the port takes its address by itself, and keeps
		// it when it takes another.
		mkSubnet(t, e.Admin(), body{"network_id": n.ID, "ip_version": 6, "cidr": "2001:db8:8::/64",
			"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"})
		// A third (the port was changed before: any revision will do).
		mkSubnet(t, e.Admin(), body{"network_id": n.ID, "ip_version": 6, "cidr": "2001:db8:9::/64",
			"ipv6_ra_mode": "dhcpv6-stateful", "ipv6_address_mode": "dhcpv6-stateful"})
		if dp4 := dhcpPorts(t, e, n.ID); len(dp4[0].FixedIPs) != 4 {
			t.Errorf("a DHCPv6 subnet gave the DHCP port no address: %+v", dp4[0].FixedIPs)
		}

		// Ports on the served subnet (one without DHCP is the network's
		// too, and a port may take its address there).
		onS1 := func() port {
			return mkPort(t, e.Admin(), body{"network_id": n.ID, "binding:host_id": "compute-1", "fixed_ips": []any{map[string]any{"subnet_id": s1.ID}}})
		}
		vm := onS1()
		sec := dhcpSection(t, e, "net-1")
		if len(sec.Networks) != 1 || sec.Networks[0].ID != n.ID || sec.Networks[0].Port.ID != dp[0].ID ||
			sec.Networks[0].Port.Device != agentapi.TapName(dp[0].ID) || len(sec.Networks[0].Subnets) != 5 ||
			sec.Networks[0].DNSDomain != "openstacklocal." {
			t.Fatalf("dhcp section networks: %+v", sec.Networks)
		}
		if !slices.ContainsFunc(sec.Ports, func(p agentapi.DHCPPort) bool {
			return p.ID == vm.ID && p.MAC == vm.MACAddress && len(p.FixedIPs) > 0 && p.Hostname == vm.DNSAssignment[0]["hostname"]
		}) {
			t.Errorf("dhcp section ports lack %s: %+v", vm.ID, sec.Ports)
		}
		if other := dhcpSection(t, e, "compute-1"); len(other.Networks) != 0 {
			t.Errorf("a host without a DHCP agent serves %+v", other.Networks)
		}
		// The host's DHCP port is in its l2 section: its agent wires it.
		if l2 := hostState(t, e, "net-1", ""); !slices.ContainsFunc(l2.Ports, func(p agentapi.Port) bool { return p.ID == dp[0].ID }) {
			t.Errorf("the DHCP port is not in its host's l2 section: %+v", l2.Ports)
		}

		// Provisioning: wired is not enough while DHCP has not served it.
		postStatus(t, e, "compute-1", agentapi.L2Section, agentapi.L2Status{Up: []string{vm.ID}})
		if st := portStatus(t, e, vm.ID); st != "DOWN" {
			t.Errorf("wired but not served: %s, want DOWN", st)
		}
		// Another host's report does not count.
		postStatus(t, e, "compute-1", agentapi.DHCPSection, agentapi.DHCPStatus{Ready: []string{vm.ID}})
		if st := portStatus(t, e, vm.ID); st != "DOWN" {
			t.Errorf("served by a host that does not serve the network: %s, want DOWN", st)
		}
		postStatus(t, e, "net-1", agentapi.DHCPSection, agentapi.DHCPStatus{Ready: []string{vm.ID}})
		if st := portStatus(t, e, vm.ID); st != "ACTIVE" {
			t.Errorf("wired and served: %s, want ACTIVE", st)
		}
		// Served first, wired after, is the same.
		vm2 := onS1()
		postStatus(t, e, "net-1", agentapi.DHCPSection, agentapi.DHCPStatus{Ready: []string{vm2.ID}})
		if st := portStatus(t, e, vm2.ID); st != "DOWN" {
			t.Errorf("served but not wired: %s, want DOWN", st)
		}
		postStatus(t, e, "compute-1", agentapi.L2Section, agentapi.L2Status{Up: []string{vm2.ID}})
		if st := portStatus(t, e, vm2.ID); st != "ACTIVE" {
			t.Errorf("served, then wired: %s, want ACTIVE", st)
		}

		// A delta from the section's revision names a new port at once.
		rev := hostState(t, e, "net-1", "").Revision
		vm3 := onS1()
		d := hostState(t, e, "net-1", "since="+strconv.FormatInt(rev, 10))
		var delta agentapi.DHCP
		if err := json.Unmarshal(d.Sections[agentapi.DHCPSection], &delta); err != nil ||
			!slices.ContainsFunc(delta.Ports, func(p agentapi.DHCPPort) bool { return p.ID == vm3.ID }) {
			t.Errorf("delta after a port: %s", d.Sections[agentapi.DHCPSection])
		}

		// The network goes: so do its hosting and the host's section.
		for _, id := range []string{vm.ID, vm2.ID, vm3.ID} {
			if err := ports.Delete(bg, e.Admin(), id).ExtractErr(); err != nil {
				t.Fatal(err)
			}
		}
		if code, out := e.Do(t, "DELETE", "/v2.0/networks/"+n.ID, "admin", true, ""); code != 204 {
			t.Fatalf("delete network: %d %s", code, out)
		}
		if _, out := e.Do(t, "GET", "/v2.0/agents/"+agentID+"/dhcp-networks", "admin", true, ""); strings.Contains(out, n.ID) {
			t.Errorf("a deleted network is still hosted: %s", out)
		}
		if sec := dhcpSection(t, e, "net-1"); len(sec.Networks) != 0 || len(sec.Ports) != 0 {
			t.Errorf("the section after the network went: %+v", sec)
		}
	})
}

// TestDHCPFailover: the networks of a DHCP agent that dies move to a live
// one, DHCP port and all, within agent_down_time and the scheduler's look.
func TestDHCPFailover(t *testing.T) {
	servertest.StoresWith(t, fastAgents, func(t *testing.T, e *servertest.Env) {
		a := dhcpBeat(t, e, "net-a")
		_, _ = netWithSubnet(t, e.Admin(), "10.8.0.0/24")
		b := dhcpBeat(t, e, "net-b")
		n, _ := netWithSubnet(t, e.Admin(), "10.8.1.0/24")
		// Least loaded first: net-b took the second network.
		if dp := dhcpPorts(t, e, n.ID); len(dp) != 1 || dp[0].HostID != "net-b" {
			t.Fatalf("the second network's DHCP port: %+v", dp)
		}
		// net-b stops beating; net-a keeps on.
		deadline := time.Now().Add(15 * time.Second)
		for {
			dhcpBeat(t, e, "net-a")
			_, out := e.Do(t, "GET", "/v2.0/networks/"+n.ID+"/dhcp-agents", "admin", true, "")
			if strings.Contains(out, a) && !strings.Contains(out, b) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the network did not move off the dead agent: %s", out)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if dp := dhcpPorts(t, e, n.ID); len(dp) != 1 || dp[0].HostID != "net-a" {
			t.Errorf("after failover, DHCP ports: %+v", dp)
		}
	})
}
