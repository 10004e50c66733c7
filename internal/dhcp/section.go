package dhcp

import (
	"context"
	"encoding/json"
	"maps"
	"slices"

	"muon/internal/agentapi"
	"muon/internal/agents"
	"muon/internal/fault"
	"muon/internal/feature"
	"muon/internal/ml2"
	"muon/internal/store"
)

// Section is the DHCP agents' section of hosts' desired state: the
// networks the host's DHCP agent serves, each with its subnets, the
// host's DHCP port and every port on it.
type Section struct{ *Plugin }

// Name is the section's key.
func (Section) Name() string { return agentapi.DHCPSection }

// agentOf is the host's DHCP agent id, "" when it has none.
func (s Section) agentOf(ctx context.Context, tx store.Tx, host string) (string, error) {
	all, err := s.agents.ReadAgents(ctx, tx, agents.DHCP)
	if err != nil {
		return "", err
	}
	for _, a := range all {
		if a.Host == host {
			return a.ID, nil
		}
	}
	return "", nil
}

// served is what the host's agent serves: network -> hosting.
func (s Section) served(ctx context.Context, tx store.Tx, host string) (map[string]hosting, error) {
	id, err := s.agentOf(ctx, tx, host)
	if err != nil || id == "" {
		return nil, err
	}
	hs, err := hostings(ctx, tx, "")
	if err != nil {
		return nil, err
	}
	out := map[string]hosting{}
	for _, h := range hs {
		if h.AgentID == id {
			out[h.NetworkID] = h
		}
	}
	return out, nil
}

// Full is the host's whole section.
func (s Section) Full(ctx context.Context, tx store.Tx, host string) (any, error) {
	out := agentapi.DHCP{Networks: []agentapi.DHCPNetwork{}, Ports: []agentapi.DHCPPort{}}
	hs, err := s.served(ctx, tx, host)
	if err != nil {
		return nil, err
	}
	ids := slices.Sorted(maps.Keys(hs))
	if out.Networks, err = s.networks(ctx, tx, hs, ids); err != nil {
		return nil, err
	}
	ports, err := ml2.ReadPortsOfNetworks(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	for _, n := range out.Networks {
		for _, pt := range ports[n.ID] {
			out.Ports = append(out.Ports, toPort(pt))
		}
	}
	return out, nil
}

// Delta is what the changes mean for the host's section: networks given
// to or taken from its agent (in full, or removed), networks and subnets
// of served networks (sent again without their ports), ports on them
// (upserted or removed).
func (s Section) Delta(ctx context.Context, tx store.Tx, host string, changes []store.Change) (any, bool, error) {
	self, err := s.agentOf(ctx, tx, host)
	if err != nil || self == "" {
		return nil, false, err
	}
	var hs map[string]hosting
	full := map[string]bool{}
	refresh := map[string]bool{}
	removedNets := map[string]bool{}
	upserts := map[string]bool{}
	removed := map[string]bool{}
	for _, c := range changes {
		if c.Kind == hostingKind {
			if netID, agentID, ok := parseHostingID(c.ID); ok && agentID == self {
				if c.Op == "delete" {
					removedNets[netID], full[netID] = true, false
				} else {
					full[netID], removedNets[netID] = true, false
				}
			}
			continue
		}
		if c.Kind != "network" && c.Kind != "subnet" && c.Kind != "port" {
			continue
		}
		if hs == nil {
			if hs, err = s.served(ctx, tx, host); err != nil {
				return nil, false, err
			}
			if hs == nil {
				hs = map[string]hosting{}
			}
		}
		switch c.Kind {
		case "network":
			if _, ok := hs[c.ID]; ok {
				if c.Op == "delete" {
					removedNets[c.ID] = true
				} else {
					refresh[c.ID] = true
				}
			}
		case "subnet":
			if _, ok := hs[c.ParentID]; ok {
				refresh[c.ParentID] = true
			}
		case "port":
			h, ok := hs[c.ParentID]
			if !ok {
				continue
			}
			if c.Op == "delete" {
				removed[c.ID], upserts[c.ID] = true, false
			} else {
				upserts[c.ID], removed[c.ID] = true, false
			}
			if c.ID == h.PortID {
				refresh[c.ParentID] = true
			}
		}
	}
	out := agentapi.DHCP{Networks: []agentapi.DHCPNetwork{}, Ports: []agentapi.DHCPPort{}}
	for id, on := range removedNets {
		if on {
			out.RemovedNetworks = append(out.RemovedNetworks, id)
		}
	}
	slices.Sort(out.RemovedNetworks)
	if hs == nil && len(full) > 0 {
		if hs, err = s.served(ctx, tx, host); err != nil {
			return nil, false, err
		}
	}
	nets := map[string]bool{}
	for id, on := range full {
		if on {
			nets[id] = true
		}
	}
	for id := range refresh {
		nets[id] = true
	}
	var netIDs, fullIDs []string
	for _, id := range slices.Sorted(maps.Keys(nets)) {
		if _, ok := hs[id]; ok {
			netIDs = append(netIDs, id)
			if full[id] {
				fullIDs = append(fullIDs, id)
			}
		}
	}
	if out.Networks, err = s.networks(ctx, tx, hs, netIDs); err != nil {
		return nil, false, err
	}
	if len(fullIDs) > 0 {
		ports, err := ml2.ReadPortsOfNetworks(ctx, tx, fullIDs)
		if err != nil {
			return nil, false, err
		}
		for _, id := range fullIDs {
			for _, pt := range ports[id] {
				out.Ports = append(out.Ports, toPort(pt))
				upserts[pt.ID] = false // sent
			}
		}
	}
	var ids []string
	for id, on := range upserts {
		if on {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ports, err := ml2.ReadPorts(ctx, tx, ids)
	if err != nil {
		return nil, false, err
	}
	for _, id := range ids {
		if pt, ok := ports[id]; ok {
			out.Ports = append(out.Ports, toPort(pt))
		} else {
			removed[id] = true
		}
	}
	for id, on := range removed {
		if on {
			out.RemovedPorts = append(out.RemovedPorts, id)
		}
	}
	slices.Sort(out.RemovedPorts)
	if len(out.Networks)+len(out.Ports)+len(out.RemovedPorts)+len(out.RemovedNetworks) == 0 {
		return nil, false, nil
	}
	return out, true, nil
}

// networks describes the served networks of ids (those still there), in
// that order, with their subnets and the host's DHCP port on each.
func (s Section) networks(ctx context.Context, tx store.Tx, hs map[string]hosting, ids []string) ([]agentapi.DHCPNetwork, error) {
	out := []agentapi.DHCPNetwork{}
	if len(ids) == 0 {
		return out, nil
	}
	subs, err := ml2.ReadSubnetsOfNetworks(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	var portIDs []string
	for _, id := range ids {
		if pid := hs[id].PortID; pid != "" {
			portIDs = append(portIDs, pid)
		}
	}
	dports, err := ml2.ReadPorts(ctx, tx, portIDs)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		nw, ok, err := s.core.ReadNetwork(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		n := agentapi.DHCPNetwork{ID: nw.ID, ProjectID: nw.ProjectID, MTU: nw.MTU, DNSDomain: nw.DNSDomain, Subnets: []agentapi.DHCPSubnet{}}
		for _, sub := range subs[id] {
			ds := agentapi.DHCPSubnet{ID: sub.ID, IPVersion: sub.IPVersion, CIDR: sub.CIDR, GatewayIP: sub.GatewayIP,
				EnableDHCP: sub.EnableDHCP, DNSNameservers: sub.DNSNameservers, IPv6RAMode: sub.IPv6RAMode, IPv6AddressMode: sub.IPv6AddrMode}
			for _, r := range sub.HostRoutes {
				ds.HostRoutes = append(ds.HostRoutes, agentapi.HostRoute{Destination: r.Destination, NextHop: r.NextHop})
			}
			n.Subnets = append(n.Subnets, ds)
		}
		if pt, ok := dports[hs[id].PortID]; ok {
			n.Port = toPort(pt)
			n.Port.Device = agentapi.TapName(pt.ID)
		}
		out = append(out, n)
	}
	return out, nil
}

func toPort(p ml2.PortInfo) agentapi.DHCPPort {
	out := agentapi.DHCPPort{ID: p.ID, NetworkID: p.NetworkID, ProjectID: p.ProjectID, MAC: p.MAC, Hostname: p.Hostname,
		DeviceID: p.DeviceID, DeviceOwner: p.DeviceOwner, AdminStateUp: p.AdminStateUp, FixedIPs: []agentapi.FixedIP{}}
	for _, f := range p.FixedIPs {
		out.FixedIPs = append(out.FixedIPs, agentapi.FixedIP{SubnetID: f.SubnetID, IPAddress: f.IP})
	}
	for _, o := range p.ExtraDHCPOpts {
		out.ExtraDHCPOpts = append(out.ExtraDHCPOpts, agentapi.ExtraDHCPOpt{Name: o.Name, Value: o.Value, IPVersion: o.IPVersion})
	}
	return out
}

// Observe takes the host's DHCP status (agentapi.DHCPStatus): the ports
// whose leases it serves are done with DHCP's provisioning block. Ports
// not on a network the host serves are ignored.
func (s Section) Observe(ctx context.Context, host string, report json.RawMessage) error {
	var st agentapi.DHCPStatus
	if err := feature.DecodeJSON(report, &st); err != nil {
		return err
	}
	if len(st.Ready) > 100000 {
		return fault.BadRequest("Too many ports in one report: %d.", len(st.Ready))
	}
	if len(st.Ready) == 0 {
		return nil
	}
	return s.st.Update(ctx, func(tx store.Tx) error {
		hs, err := s.served(ctx, tx, host)
		if err != nil || len(hs) == 0 {
			return err
		}
		ports, err := ml2.ReadPorts(ctx, tx, st.Ready)
		if err != nil {
			return err
		}
		for _, id := range slices.Sorted(maps.Keys(ports)) {
			pt := ports[id]
			if _, ok := hs[pt.NetworkID]; !ok || !ml2.ProvisioningBlocked(pt, Entity) {
				continue
			}
			if _, err := s.core.ProvisioningCompleteTx(ctx, tx, id, Entity); err != nil {
				return err
			}
		}
		return nil
	})
}
