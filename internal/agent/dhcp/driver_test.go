package dhcp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"muon/internal/agent"
	"muon/internal/agentapi"
)

const (
	netA  = "aaaaaaaa-0000-4000-8000-000000000001"
	subA  = "5a5a5a5a-0000-4000-8000-000000000001"
	dhcpP = "dddddddd-0000-4000-8000-000000000001"
	vmP   = "11111111-0000-4000-8000-000000000001"
	rtrP  = "22222222-0000-4000-8000-000000000001"
)

func section(t *testing.T, v agentapi.DHCP) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func network() agentapi.DHCPNetwork {
	return agentapi.DHCPNetwork{ID: netA, MTU: 1450, DNSDomain: "openstacklocal.",
		Port: agentapi.DHCPPort{ID: dhcpP, NetworkID: netA, MAC: "fa:16:3e:00:00:02", Device: agentapi.TapName(dhcpP),
			FixedIPs: []agentapi.FixedIP{{SubnetID: subA, IPAddress: "10.0.0.2"}}},
		Subnets: []agentapi.DHCPSubnet{{ID: subA, IPVersion: 4, CIDR: "10.0.0.0/24", GatewayIP: "10.0.0.1", EnableDHCP: true}}}
}

func vm(ip string) agentapi.DHCPPort {
	return agentapi.DHCPPort{ID: vmP, NetworkID: netA, MAC: "fa:16:3e:00:00:11", Hostname: "vm", AdminStateUp: true, DeviceOwner: "compute:nova",
		FixedIPs: []agentapi.FixedIP{{SubnetID: subA, IPAddress: ip}}}
}

func newTestDriver(t *testing.T) (*driver, *Fake) {
	k := NewFake()
	d := New(agent.Settings{Host: "h1"}, k, slog.New(slog.NewTextHandler(io.Discard, nil))).(*driver)
	return d, k
}

func report(d *driver) []string {
	r, done := d.Report()
	if r == nil {
		return nil
	}
	done()
	return r.(agentapi.DHCPStatus).Ready
}

// TestDriverServes: a loaded network gets its namespace and DHCP port;
// its ports are reported served once, and again after a change of
// address; a removed network's namespace goes, and so does one the
// agent finds at start that it no longer serves.
func TestDriverServes(t *testing.T) {
	ctx := context.Background()
	d, k := newTestDriver(t)
	if err := d.Load(section(t, agentapi.DHCP{Networks: []agentapi.DHCPNetwork{network()}, Ports: []agentapi.DHCPPort{vm("10.0.0.11")}})); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := "ns qdhcp-" + netA + " " + agentapi.TapName(dhcpP) + "<->" + agentapi.NSDeviceName(dhcpP) + " fa:16:3e:00:00:02 mtu 1450 10.0.0.2/24\n"
	if got := k.Dump(); got != want {
		t.Fatalf("kernel:\n%s\nwant:\n%s", got, want)
	}
	if r := report(d); !slices.Equal(r, []string{vmP}) {
		t.Errorf("first report %v, want the port", r)
	}
	if r := report(d); r != nil {
		t.Errorf("second report %v, want nothing new", r)
	}
	// A new address is served anew.
	if err := d.Apply(section(t, agentapi.DHCP{Ports: []agentapi.DHCPPort{vm("10.0.0.12")}})); err != nil {
		t.Fatal(err)
	}
	if r := report(d); !slices.Equal(r, []string{vmP}) {
		t.Errorf("after a readdress %v, want the port", r)
	}
	// A router interface makes the subnet routed.
	rtr := agentapi.DHCPPort{ID: rtrP, NetworkID: netA, MAC: "fa:16:3e:00:00:01", DeviceOwner: "network:router_interface",
		FixedIPs: []agentapi.FixedIP{{SubnetID: subA, IPAddress: "10.0.0.1"}}}
	if err := d.Apply(section(t, agentapi.DHCP{Ports: []agentapi.DHCPPort{rtr}})); err != nil {
		t.Fatal(err)
	}
	if !d.nets[netA].Subnets[0].Routed {
		t.Error("a subnet with a router interface is not routed")
	}
	if err := d.Apply(section(t, agentapi.DHCP{RemovedPorts: []string{rtrP}})); err != nil {
		t.Fatal(err)
	}
	if d.nets[netA].Subnets[0].Routed {
		t.Error("the router interface went, the subnet is still routed")
	}
	// Syncing again changes nothing.
	if err := d.Sync(ctx); err != nil || k.Dump() != want {
		t.Errorf("a second sync: %v\n%s", err, k.Dump())
	}
	hb := d.Heartbeat(ctx)
	if hb.AgentType != "DHCP agent" || hb.Configurations["networks"] != 1 || hb.Configurations["ports"] != 1 {
		t.Errorf("heartbeat %+v", hb)
	}
	if err := d.Apply(section(t, agentapi.DHCP{RemovedNetworks: []string{netA}})); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(ctx); err != nil || k.Dump() != "" {
		t.Errorf("after the network went: %v\n%s", err, k.Dump())
	}

	// A restart: the kernel holds a namespace of a network no longer
	// served; the full state does not name it.
	d2, _ := newTestDriver(t)
	d2.k = k
	k.EnsurePort(ctx, Port{NetworkID: "old", Tap: "tapold", Dev: "ns-old", MAC: "fa:16:3e:00:00:99"})
	if err := d2.Load(section(t, agentapi.DHCP{Networks: []agentapi.DHCPNetwork{network()}})); err != nil {
		t.Fatal(err)
	}
	if err := d2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := k.Dump(); strings.Contains(got, "qdhcp-old") || !strings.Contains(got, netA) {
		t.Errorf("after a restart:\n%s", got)
	}
}

// TestDriverWaitsForItsPort: a network whose DHCP port the server has not
// made yet gets no namespace, and its ports are not reported served.
func TestDriverWaitsForItsPort(t *testing.T) {
	d, k := newTestDriver(t)
	n := network()
	n.Port = agentapi.DHCPPort{}
	if err := d.Load(section(t, agentapi.DHCP{Networks: []agentapi.DHCPNetwork{n}, Ports: []agentapi.DHCPPort{vm("10.0.0.11")}})); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if k.Dump() != "" || report(d) != nil {
		t.Errorf("served without its DHCP port: %q", k.Dump())
	}
	if err := d.Load(json.RawMessage(`{"ports": [{"id": ""}]}`)); err == nil {
		t.Error("a port without an id was taken")
	}
}

// TestDriverReportsInChunks: a host serving many ports reports them at
// most agent.MaxReport at a time, every one in the end, each once.
func TestDriverReportsInChunks(t *testing.T) {
	d, _ := newTestDriver(t)
	var ports []agentapi.DHCPPort
	for i := range 2500 {
		p := vm(fmt.Sprintf("10.0.%d.%d", i/250, i%250+1))
		p.ID = fmt.Sprintf("%08d-0000-4000-8000-000000000001", i)
		p.MAC = fmt.Sprintf("fa:16:3e:00:%02x:%02x", i/256, i%256)
		ports = append(ports, p)
	}
	n := network()
	n.Subnets[0].CIDR = "10.0.0.0/16"
	if err := d.Load(section(t, agentapi.DHCP{Networks: []agentapi.DHCPNetwork{n}, Ports: ports})); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 10 {
		r := report(d)
		if r == nil {
			break
		}
		if len(r) > agent.MaxReport {
			t.Fatalf("a report of %d ports, over %d", len(r), agent.MaxReport)
		}
		for _, id := range r {
			if seen[id] {
				t.Fatalf("%s reported twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != 2500 {
		t.Errorf("%d ports reported, want 2500", len(seen))
	}
}
