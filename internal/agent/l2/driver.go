package l2

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"muon/internal/agent"
	"muon/internal/agentapi"
	"muon/internal/kernel"
)

func init() { agent.RegisterDriver(agentapi.L2Section, NewDriver) }

// driver is the agent's driver of section "l2": it keeps the host's
// section as the channel brings it, converges with Agent.Sync, and
// reports ports whose wiring the server was not told.
type driver struct {
	s    agent.Settings
	k    kernel.Kernel
	a    *Agent
	view agentapi.L2
	// reported is what the server was told: port -> wired.
	reported map[string]bool
	// seen is the host's devices as the last Sync left them.
	seen string
	// took is how long the last Sync took.
	took time.Duration
}

// NewDriver is the l2 driver of an agent.
func NewDriver(s agent.Settings, k kernel.Kernel, log *slog.Logger) agent.Driver {
	return &driver{s: s, k: k, reported: map[string]bool{},
		a: New(Config{Host: s.Host, TunnelIP: s.TunnelIP, InterfaceMappings: s.InterfaceMappings, ARPResponder: s.ARPResponder}, k, log)}
}

// decode reads a section or a delta and refuses members without ids.
func decode(raw json.RawMessage) (agentapi.L2, error) {
	var v agentapi.L2
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, err
	}
	for _, n := range v.Networks {
		if n.ID == "" {
			return v, errors.New("a network without an id")
		}
	}
	for _, p := range v.Ports {
		if p.ID == "" || p.NetworkID == "" {
			return v, errors.New("a port without an id or network")
		}
	}
	return v, nil
}

func (d *driver) Load(raw json.RawMessage) error {
	v, err := decode(raw)
	if err != nil {
		return err
	}
	d.view = agentapi.L2{}
	merge(&d.view, v)
	return nil
}

func (d *driver) Apply(raw json.RawMessage) error {
	v, err := decode(raw)
	if err != nil {
		return err
	}
	// A port that changed may have been set DOWN by the server (a new
	// host, admin state): say its wiring again.
	for id := range merge(&d.view, v) {
		delete(d.reported, id)
	}
	return nil
}

func (d *driver) Sync(ctx context.Context) error {
	began := time.Now()
	err := d.a.Sync(ctx, d.view)
	d.took = time.Since(began)
	// What the Sync left, not a second listing: a device that came while
	// it ran differs, and is wired at the next look.
	d.seen = fingerprint(d.a.Expected())
	return err
}

func (d *driver) Drifted(ctx context.Context) bool {
	links, err := d.k.Links(ctx)
	return err != nil || fingerprint(links) != d.seen
}

func (d *driver) Report() (any, func()) {
	st := d.a.Status()
	var s agentapi.L2Status
	now := map[string]bool{}
	room := func() bool { return len(s.Up)+len(s.Down) < agent.MaxReport }
	for _, id := range st.Up {
		now[id] = true
		if up, ok := d.reported[id]; (!ok || !up) && room() {
			s.Up = append(s.Up, id)
		}
	}
	for _, id := range st.Down {
		now[id] = false
		if up, ok := d.reported[id]; (!ok || up) && room() {
			s.Down = append(s.Down, id)
		}
	}
	for id := range d.reported {
		if _, ok := now[id]; !ok {
			delete(d.reported, id)
		}
	}
	if len(s.Up)+len(s.Down) == 0 {
		return nil, nil
	}
	return s, func() {
		for _, id := range s.Up {
			d.reported[id] = true
		}
		for _, id := range s.Down {
			d.reported[id] = false
		}
	}
}

func (d *driver) Forget() { clear(d.reported) }

func (d *driver) Heartbeat(ctx context.Context) agentapi.Heartbeat {
	mappings := d.s.InterfaceMappings
	if mappings == nil {
		mappings = map[string]string{}
	}
	return agentapi.Heartbeat{AgentType: "Linux bridge agent", Binary: "muon-linuxbridge-agent", Topic: "N/A",
		Configurations: map[string]any{
			"tunneling_ip": d.s.TunnelIP, "tunnel_types": []string{"vxlan"},
			"interface_mappings": mappings, "bridge_mappings": map[string]string{},
			"devices": len(d.a.Status().Up), "kernel": d.k.Capabilities(ctx).Map(),
			"l2_population": true, "arp_responder_enabled": d.s.ARPResponder,
		}}
}

// LogAttrs are the section's figures for the agent's "in sync" line.
func (d *driver) LogAttrs() []any {
	return []any{"ports", len(d.view.Ports), "up", len(d.a.Status().Up), "l2_sync", d.took.Round(time.Millisecond)}
}

func fingerprint(links []kernel.Link) string {
	slices.SortFunc(links, func(x, y kernel.Link) int { return cmp.Compare(x.Name, y.Name) })
	var b strings.Builder
	for _, l := range links {
		fmt.Fprintf(&b, "%s/%v/%s/%d;", l.Name, l.Up, l.Master, l.MTU)
	}
	return b.String()
}

// merge applies a delta to view: its networks and ports replace those
// with the same ids, the removed ones go. It returns the ports upserted.
func merge(view *agentapi.L2, d agentapi.L2) map[string]bool {
	changed := map[string]bool{}
	gone := func(ids []string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	goneN, goneP := gone(d.RemovedNetworks), gone(d.RemovedPorts)
	nets := map[string]agentapi.Network{}
	for _, n := range view.Networks {
		nets[n.ID] = n
	}
	for _, n := range d.Networks {
		nets[n.ID] = n
	}
	ports := map[string]agentapi.Port{}
	for _, p := range view.Ports {
		ports[p.ID] = p
	}
	for _, p := range d.Ports {
		ports[p.ID] = p
		changed[p.ID] = true
	}
	view.Networks, view.Ports = view.Networks[:0:0], view.Ports[:0:0]
	for _, id := range slices.Sorted(maps.Keys(nets)) {
		if !goneN[id] {
			view.Networks = append(view.Networks, nets[id])
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ports)) {
		if !goneP[id] && !goneN[ports[id].NetworkID] {
			view.Ports = append(view.Ports, ports[id])
		}
	}
	view.RemovedPorts, view.RemovedNetworks = nil, nil
	return changed
}
