package agents

import (
	"context"
	"encoding/json"
	"maps"
	"slices"

	"muon/internal/agentapi"
	"muon/internal/fault"
	"muon/internal/feature"
	"muon/internal/ml2"
	"muon/internal/store"
)

// L2 is the Linux bridge agents' section of hosts' desired state on the
// channel: the ports bound to the host and their networks, with the other
// hosts' endpoints on them (l2population).
type L2 struct{ *Plugin }

// Name is the section's key.
func (L2) Name() string { return agentapi.L2Section }

// Full is the host's whole section.
func (s L2) Full(ctx context.Context, tx store.Tx, host string) (any, error) {
	h, err := hostTxOf(tx)
	if err != nil {
		return nil, err
	}
	bs, err := h.PortBindings(ctx, store.PortBinding{Host: host, VIFType: "bridge"})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(bs))
	nets := map[string]bool{}
	for i, b := range bs {
		ids[i] = b.PortID
		nets[b.NetworkID] = true
	}
	ports, err := ml2.ReadPorts(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	out := agentapi.L2{Ports: []agentapi.Port{}, Networks: []agentapi.Network{}}
	for _, id := range ids {
		if pt, ok := ports[id]; ok {
			out.Ports = append(out.Ports, toPort(pt))
		}
	}
	if out.Networks, err = s.networks(ctx, h, host, slices.Sorted(maps.Keys(nets))); err != nil {
		return nil, err
	}
	return out, nil
}

// Delta is what the changes mean for the host's section: ports bound or
// unbound there, networks whose segments, other hosts' ports or agents
// changed. Removals may name ports and networks the agent does not have
// (a deleted port's host is not known any more); it ignores them.
func (s L2) Delta(ctx context.Context, tx store.Tx, host string, changes []store.Change) (any, bool, error) {
	h, err := hostTxOf(tx)
	if err != nil {
		return nil, false, err
	}
	out := agentapi.L2{Ports: []agentapi.Port{}, Networks: []agentapi.Network{}}
	mine, err := h.PortBindings(ctx, store.PortBinding{Host: host, VIFType: "bridge"})
	if err != nil {
		return nil, false, err
	}
	hostNets := map[string]bool{}
	for _, b := range mine {
		hostNets[b.NetworkID] = true
	}
	var portIDs []string
	deleted := map[string]string{} // port -> network
	refresh := map[string]bool{}   // networks to send again
	removedNets := map[string]bool{}
	agentsChanged := false
	for _, c := range changes {
		switch c.Kind {
		case "port":
			if c.Op == "delete" {
				deleted[c.ID] = c.ParentID
			} else {
				portIDs = append(portIDs, c.ID)
			}
		case "network":
			if hostNets[c.ID] {
				refresh[c.ID] = true
			} else if c.Op == "delete" {
				removedNets[c.ID] = true
			}
		case "segment":
			if hostNets[c.ParentID] {
				refresh[c.ParentID] = true
			}
		case "agent":
			agentsChanged = true
		}
	}
	slices.Sort(portIDs)
	portIDs = slices.Compact(portIDs)
	var bs []store.PortBinding
	if len(portIDs) > 0 { // none named would list every binding
		if bs, err = h.PortBindings(ctx, store.PortBinding{}, portIDs...); err != nil {
			return nil, false, err
		}
	}
	var upserts []string
	removed := map[string]bool{}
	for _, b := range bs {
		switch {
		case b.Host == host && b.VIFType == "bridge":
			upserts = append(upserts, b.PortID)
			refresh[b.NetworkID] = true
		case b.Host == host || b.PrevHost == host:
			// Left this host, or failed to bind here.
			removed[b.PortID] = true
			if hostNets[b.NetworkID] {
				refresh[b.NetworkID] = true
			} else {
				removedNets[b.NetworkID] = true
			}
		case hostNets[b.NetworkID]:
			// Another host's port on a network of this host: its
			// remotes change.
			refresh[b.NetworkID] = true
		}
	}
	for id, net := range deleted {
		if _, exists := removed[id]; exists {
			continue
		}
		removed[id] = true
		switch {
		case hostNets[net]:
			refresh[net] = true
		case net != "":
			removedNets[net] = true
		}
	}
	if agentsChanged {
		for n := range hostNets {
			refresh[n] = true
		}
	}
	// A port changed in place stays; one that is gone is removed.
	for _, id := range upserts {
		delete(removed, id)
	}
	for n := range hostNets {
		delete(removedNets, n)
	}
	if len(upserts) == 0 && len(removed) == 0 && len(refresh) == 0 && len(removedNets) == 0 {
		return nil, false, nil
	}
	ports, err := ml2.ReadPorts(ctx, tx, upserts)
	if err != nil {
		return nil, false, err
	}
	for _, id := range upserts {
		if pt, ok := ports[id]; ok {
			out.Ports = append(out.Ports, toPort(pt))
		}
	}
	out.RemovedPorts = slices.Sorted(maps.Keys(removed))
	out.RemovedNetworks = slices.Sorted(maps.Keys(removedNets))
	if out.Networks, err = s.networks(ctx, h, host, slices.Sorted(maps.Keys(refresh))); err != nil {
		return nil, false, err
	}
	return out, true, nil
}

func toPort(p ml2.PortInfo) agentapi.Port {
	return agentapi.Port{ID: p.ID, NetworkID: p.NetworkID, MAC: p.MAC, IPs: p.Addresses(),
		AdminStateUp: p.AdminStateUp, Device: agentapi.TapName(p.ID)}
}

// networks describes the given networks as the host's agent wires them:
// the segment its agent reaches, the MTU, and for VXLAN the other hosts'
// tunnel endpoints with the addresses of their ports (l2population).
// Networks that no longer exist are left out.
func (p *Plugin) networks(ctx context.Context, tx hostTx, host string, ids []string) ([]agentapi.Network, error) {
	out := []agentapi.Network{}
	if len(ids) == 0 {
		return out, nil
	}
	self, err := p.hostAgent(ctx, tx, host)
	if err != nil {
		return nil, err
	}
	agentsByHost := map[string]*agent{host: self}
	for _, id := range ids {
		nw, ok, err := ml2.ReadNetwork(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		segs, err := ml2.ReadSegments(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		seg, ok := bindable(self, segs)
		if !ok && len(segs) > 0 {
			seg = segs[0]
		}
		n := agentapi.Network{ID: id, NetworkType: seg.NetworkType, PhysicalNetwork: seg.PhysicalNetwork,
			SegmentationID: seg.SegmentationID, MTU: nw.MTU}
		if seg.NetworkType == "vxlan" {
			if n.Remotes, err = p.remotes(ctx, tx, host, id, agentsByHost); err != nil {
				return nil, err
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// remotes are the other hosts with ports bound on a network, by tunnel
// endpoint, with those ports' MACs and addresses.
func (p *Plugin) remotes(ctx context.Context, tx hostTx, host, networkID string, agentsByHost map[string]*agent) ([]agentapi.Remote, error) {
	bs, err := tx.PortBindings(ctx, store.PortBinding{NetworkID: networkID, VIFType: "bridge"})
	if err != nil {
		return nil, err
	}
	byHost := map[string][]string{}
	for _, b := range bs {
		if b.Host != host {
			byHost[b.Host] = append(byHost[b.Host], b.PortID)
		}
	}
	if len(byHost) == 0 {
		return nil, nil
	}
	var ids []string
	for _, l := range byHost {
		ids = append(ids, l...)
	}
	ports, err := ml2.ReadPorts(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	var out []agentapi.Remote
	for _, h := range slices.Sorted(maps.Keys(byHost)) {
		a, ok := agentsByHost[h]
		if !ok {
			if a, err = p.hostAgent(ctx, tx, h); err != nil {
				return nil, err
			}
			agentsByHost[h] = a
		}
		if a == nil || a.tunnelIP() == "" {
			continue
		}
		r := agentapi.Remote{TunnelIP: a.tunnelIP(), Entries: []agentapi.FDBEntry{}}
		for _, id := range byHost[h] {
			if pt, ok := ports[id]; ok {
				r.Entries = append(r.Entries, agentapi.FDBEntry{MAC: pt.MAC, IPs: pt.Addresses()})
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// Observe sets the status of ports bound to the host from its agent's
// report (agentapi.L2Status): ACTIVE for devices up (DOWN if the port is
// admin down), DOWN for devices down. Ports not bound there are ignored.
// A status change is a change of the port (its revision moves) but
// observed state, not desired: it wakes no host's watch.
func (s L2) Observe(ctx context.Context, host string, report json.RawMessage) error {
	var st agentapi.L2Status
	if err := feature.DecodeJSON(report, &st); err != nil {
		return err
	}
	p := s.Plugin
	if n := len(st.Up) + len(st.Down); n > 100000 {
		return fault.BadRequest("Too many devices in one report: %d.", n)
	}
	want := map[string]bool{}
	for _, id := range st.Up {
		want[id] = true
	}
	for _, id := range st.Down {
		want[id] = false
	}
	if len(want) == 0 {
		return nil
	}
	return p.st.Update(ctx, func(tx store.Tx) error {
		h, err := hostTxOf(tx)
		if err != nil {
			return err
		}
		bs, err := h.PortBindings(ctx, store.PortBinding{Host: host, VIFType: "bridge"}, slices.Sorted(maps.Keys(want))...)
		if err != nil {
			return err
		}
		for _, b := range bs {
			if _, err := p.core.SetPortStatusTx(ctx, tx, b.PortID, want[b.PortID]); err != nil {
				return err
			}
		}
		return nil
	})
}
