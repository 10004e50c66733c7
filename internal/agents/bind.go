package agents

import (
	"context"
	"errors"
	"slices"

	"muon/internal/ml2"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/store"
)

// segment is one segment of a network, as the core reads it.
type segment = ml2.SegmentInfo

// agent is a host's Linux bridge agent, as binding needs it.
type agent struct {
	ID     string
	Host   string
	Up     bool // admin_state_up
	Alive  bool
	Config map[string]any
}

func (a *agent) tunnelIP() string { return resource.Str(a.Config["tunneling_ip"]) }

// reaches tells whether the agent can wire a port on the segment: VXLAN
// over its tunnel address, flat and VLAN over a mapped physical network
// (VLAN only where its kernel has 802.1Q), local always. This build has
// no Geneve or GRE data plane.
func (a *agent) reaches(s segment) bool {
	kernel, _ := a.Config["kernel"].(map[string]any)
	mapped := func(phys string) bool {
		for _, k := range []string{"interface_mappings", "bridge_mappings"} {
			if m, ok := a.Config[k].(map[string]any); ok && phys != "" {
				if _, ok := m[phys]; ok {
					return true
				}
			}
		}
		return false
	}
	switch s.NetworkType {
	case "local":
		return true
	case "vxlan":
		types, _ := a.Config["tunnel_types"].([]any)
		return slices.Contains(types, any("vxlan")) && a.tunnelIP() != "" && kernel["vxlan"] != false
	case "flat":
		return mapped(s.PhysicalNetwork)
	case "vlan":
		return mapped(s.PhysicalNetwork) && kernel["vlan"] == true
	}
	return false
}

// hostAgent reads a host's Linux bridge agent; nil if it has none.
func (p *Plugin) hostAgent(ctx context.Context, tx hostTx, host string) (*agent, error) {
	id, err := tx.NameID(ctx, "agent", LinuxBridge, host)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec, err := tx.Get(ctx, "agent", id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d, err := record.Decode(rec)
	if err != nil {
		return nil, err
	}
	beats, err := tx.Heartbeats(ctx, id)
	if err != nil {
		return nil, err
	}
	conf, _ := d["configurations"].(map[string]any)
	return &agent{ID: id, Host: host, Up: d["admin_state_up"] != false, Alive: p.alive(beats[id]), Config: conf}, nil
}

// bindable is the first segment the agent reaches.
func bindable(a *agent, segs []segment) (segment, bool) {
	if a == nil {
		return segment{}, false
	}
	for _, s := range segs {
		if a.reaches(s) {
			return s, true
		}
	}
	return segment{}, false
}

var bridgeDetails = map[string]any{"port_filter": true, "connectivity": "l2"}

// Bind binds a port on its host, as ML2's Linux bridge mechanism driver:
// "bridge" if the host's agent is alive, enabled and reaches one of the
// network's segments, else "binding_failed"; "unbound" without a host.
// It records the binding in the host's index (port_bindings).
func (p *Plugin) Bind(ctx context.Context, tx store.Tx, b ml2.BindRequest) (string, map[string]any, error) {
	h, err := hostTxOf(tx)
	if err != nil {
		return "", nil, err
	}
	vt, details, err := p.choose(ctx, h, b.Host, b.VNICType, b.NetworkID)
	if err != nil {
		return "", nil, err
	}
	err = h.SetPortBinding(ctx, store.PortBinding{PortID: b.PortID, Host: b.Host, NetworkID: b.NetworkID, VIFType: vt})
	return vt, details, err
}

// Reaches tells whether a port of the network on host would bind: the
// host's Linux bridge agent is alive, enabled and reaches one of the
// network's segments (a scheduler's test for the hosts it may choose).
func (p *Plugin) Reaches(ctx context.Context, tx store.Tx, host, networkID string) (bool, error) {
	h, err := hostTxOf(tx)
	if err != nil {
		return false, err
	}
	vt, _, err := p.choose(ctx, h, host, "", networkID)
	return vt == "bridge", err
}

func (p *Plugin) choose(ctx context.Context, tx hostTx, host, vnic, networkID string) (string, map[string]any, error) {
	if host == "" {
		return "unbound", map[string]any{}, nil
	}
	if vnic != "" && vnic != "normal" {
		return "binding_failed", map[string]any{}, nil
	}
	a, err := p.hostAgent(ctx, tx, host)
	if err != nil {
		return "", nil, err
	}
	if a == nil || !a.Alive || !a.Up {
		return "binding_failed", map[string]any{}, nil
	}
	segs, err := ml2.ReadSegments(ctx, tx, networkID)
	if err != nil {
		return "", nil, err
	}
	if _, ok := bindable(a, segs); !ok {
		return "binding_failed", map[string]any{}, nil
	}
	d := make(map[string]any, len(bridgeDetails))
	for k, v := range bridgeDetails {
		d[k] = v
	}
	return "bridge", d, nil
}

// rebindHost binds the host's ports that failed to bind, now that its
// agent came, came back, changed or was enabled (Neutron binds them when
// the agent next syncs).
func (p *Plugin) rebindHost(ctx context.Context, tx hostTx, host string) error {
	failed, err := tx.PortBindings(ctx, store.PortBinding{Host: host, VIFType: "binding_failed"})
	if err != nil {
		return err
	}
	ids := make([]string, len(failed))
	for i, b := range failed {
		ids[i] = b.PortID
	}
	ports, err := ml2.ReadPorts(ctx, tx, ids)
	if err != nil {
		return err
	}
	for _, b := range failed {
		port, ok := ports[b.PortID]
		if !ok {
			continue
		}
		vt, details, err := p.choose(ctx, tx, host, port.VNICType, b.NetworkID)
		if err != nil {
			return err
		}
		if vt == "binding_failed" {
			continue
		}
		if err := p.core.SetPortBindingTx(ctx, tx, b.PortID, vt, details); err != nil {
			return err
		}
		if err := tx.SetPortBinding(ctx, store.PortBinding{PortID: b.PortID, Host: host, NetworkID: b.NetworkID, VIFType: vt}); err != nil {
			return err
		}
	}
	return nil
}
