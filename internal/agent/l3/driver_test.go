package l3

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"muon/internal/agent"
	"muon/internal/agentapi"
)

const (
	rtr = "aaaaaaaa-0000-0000-0000-000000000001"
	gwp = "bbbbbbbb-0000-0000-0000-000000000001"
	ifp = "cccccccc-0000-0000-0000-000000000001"
)

func section() agentapi.L3 {
	return agentapi.L3{
		Routers: []agentapi.Router{{ID: rtr, AdminStateUp: true, EnableSNAT: true,
			Gateway: &agentapi.RouterPort{ID: gwp, NetworkID: "ext", MAC: "fa:16:3e:00:00:01", MTU: 1500,
				Addrs: []agentapi.RouterAddr{{IP: "203.0.113.10", PrefixLen: 24, Gateway: "203.0.113.1"}}},
			Interfaces: []agentapi.RouterPort{{ID: ifp, NetworkID: "net", MAC: "fa:16:3e:00:00:02", MTU: 1450,
				Addrs: []agentapi.RouterAddr{{IP: "10.0.0.1", PrefixLen: 24}}}},
			Routes: []agentapi.Route{{Destination: "10.99.0.0/16", Nexthop: "10.0.0.6"}}}},
		FloatingIPs: []agentapi.FloatingIP{
			{ID: "f1", RouterID: rtr, FloatingIP: "203.0.113.20", FixedIP: "10.0.0.5"},
			{ID: "f2", RouterID: rtr, FloatingIP: "203.0.113.21"},
		},
		PortForwardings: []agentapi.PortForwarding{{ID: "p1", RouterID: rtr, FloatingIP: "203.0.113.21", Protocol: "tcp",
			ExternalPort: 2222, ExternalPortEnd: 2222, InternalIP: "10.0.0.5", InternalPort: 22, InternalPortEnd: 22}},
	}
}

func raw(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func active(d agent.Driver) []string {
	r, done := d.Report()
	done()
	if r == nil {
		return nil
	}
	return r.(agentapi.L3Status).Active
}

// TestDriver: the section becomes routers in the kernel (devices,
// routes, SNAT, floating IPs, forwards), floating IPs in place are
// reported once, and deltas change only their routers.
func TestDriver(t *testing.T) {
	ctx := context.Background()
	k := NewFake()
	d := New(agent.Settings{Host: "h1", L3AgentMode: "legacy"}, k, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := d.Load(raw(t, section())); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := "ns qrouter-" + rtr + " gw qg-bbbbbbbb-00 203.0.113.10 via 203.0.113.1 snat=true\n" +
		"  dev tapbbbbbbbb-00<->qg-bbbbbbbb-00 fa:16:3e:00:00:01 mtu 1500 203.0.113.10/24\n" +
		"  dev tapcccccccc-00<->qr-cccccccc-00 fa:16:3e:00:00:02 mtu 1450 10.0.0.1/24\n" +
		"  route 10.99.0.0/16 via 10.0.0.6\n" +
		"  fip 203.0.113.20 -> 10.0.0.5\n" +
		"  fip 203.0.113.21 -> \n" +
		"  forward tcp 203.0.113.21:2222-2222 -> 10.0.0.5:22-22\n"
	if got := k.Dump(); got != want {
		t.Errorf("kernel:\n%s\nwant:\n%s", got, want)
	}
	if got := active(d); !slices.Equal(got, []string{"f1", "f2"}) {
		t.Errorf("first report %v, want f1 f2", got)
	}
	if got := active(d); got != nil {
		t.Errorf("second report %v, want nothing new", got)
	}
	// Another router comes; the first is not made again.
	ensured := k.Ensured[rtr]
	if err := d.Apply(raw(t, agentapi.L3{Routers: []agentapi.Router{{ID: "r2", AdminStateUp: true}}})); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if k.Ensured[rtr] != ensured || !strings.Contains(k.Dump(), "ns qrouter-r2") {
		t.Errorf("a second router: first ensured %d -> %d times\n%s", ensured, k.Ensured[rtr], k.Dump())
	}
	// A floating IP goes.
	if err := d.Apply(raw(t, agentapi.L3{RemovedFloatingIPs: []string{"f1", "nope"}})); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(k.Dump(), "203.0.113.20") {
		t.Errorf("the removed floating IP is left:\n%s", k.Dump())
	}
	// Admin down: the router stays, with no NAT.
	down := section().Routers[0]
	down.AdminStateUp = false
	if err := d.Apply(raw(t, agentapi.L3{Routers: []agentapi.Router{down}})); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(k.Dump(), "fip ") || strings.Contains(k.Dump(), "forward ") {
		t.Errorf("an admin-down router keeps NAT:\n%s", k.Dump())
	}
	// A full state without the routers removes them.
	if err := d.Load(raw(t, agentapi.L3{})); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := k.Dump(); got != "" {
		t.Errorf("after an empty full state:\n%s", got)
	}
	if hb := d.Heartbeat(ctx); hb.AgentType != "L3 agent" || hb.Configurations["agent_mode"] != "legacy" {
		t.Errorf("heartbeat %+v", hb)
	}
	if bad := d.Load(raw(t, agentapi.L3{FloatingIPs: []agentapi.FloatingIP{{ID: "x"}}})); bad == nil {
		t.Error("a floating IP without a router was taken")
	}
}

// TestDriverOff: without an agent mode there is no L3 role.
func TestDriverOff(t *testing.T) {
	if d := NewDriver(agent.Settings{Host: "h1"}, nil, slog.New(slog.DiscardHandler)); d != nil {
		t.Errorf("an agent without --l3-agent-mode has an l3 driver")
	}
}
