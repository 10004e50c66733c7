package agents

import (
	"context"
	"errors"
	"slices"

	"muon/internal/fault"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/store"
)

// DHCP is the agent type that serves DHCP (the dhcp_agent_scheduler
// extension schedules networks to agents of this type).
const DHCP = "DHCP agent"

// The networks a DHCP agent hosts are kept in its document, changed under
// its record lock.
const hostedKey = "dhcp_networks"

// DHCPAgentsOfNetwork lists the DHCP agents hosting a network
// (GET /v2.0/networks/{id}/dhcp-agents).
func (p *Plugin) DHCPAgentsOfNetwork(ctx context.Context, networkID string) ([]resource.Doc, error) {
	var out []resource.Doc
	err := p.st.View(ctx, func(tx store.Tx) error {
		if _, err := tx.Get(ctx, "network", networkID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fault.NotFound("NetworkNotFound", "Network %s could not be found.", networkID)
			}
			return err
		}
		all, err := p.read(ctx, tx, store.Filter{Kind: "agent"})
		if err != nil {
			return err
		}
		for _, d := range all {
			if d["agent_type"] == DHCP && slices.Contains(hosted(d), networkID) {
				out = append(out, view(d))
			}
		}
		return nil
	})
	return out, err
}

// NetworksOfDHCPAgent lists the networks a DHCP agent hosts
// (GET /v2.0/agents/{id}/dhcp-networks).
func (p *Plugin) NetworksOfDHCPAgent(ctx context.Context, agentID string) ([]resource.Doc, error) {
	var out []resource.Doc
	err := p.st.View(ctx, func(tx store.Tx) error {
		rec, err := tx.Get(ctx, "agent", agentID)
		if err != nil {
			return notFoundAgent(err, agentID)
		}
		d, err := record.Decode(rec)
		if err != nil {
			return err
		}
		ids := hosted(d)
		if len(ids) == 0 {
			return nil
		}
		nets, err := tx.List(ctx, store.Filter{Kind: "network", IDs: ids})
		if err != nil {
			return err
		}
		for i := range nets {
			n, err := record.Decode(&nets[i])
			if err != nil {
				return err
			}
			out = append(out, n)
		}
		return nil
	})
	return out, err
}

// ScheduleNetwork makes a DHCP agent host a network
// (POST /v2.0/agents/{id}/dhcp-networks).
func (p *Plugin) ScheduleNetwork(ctx context.Context, agentID, networkID string) error {
	return p.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := p.dhcpAgent(ctx, tx, agentID)
		if err != nil {
			return err
		}
		if _, err := tx.Get(ctx, "network", networkID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fault.NotFound("NetworkNotFound", "Network %s could not be found.", networkID)
			}
			return err
		}
		ids := hosted(d)
		if slices.Contains(ids, networkID) {
			return fault.Conflict("NetworkHostedByDHCPAgent", "The network %s has been already hosted by the DHCP Agent %s.", networkID, agentID)
		}
		return p.saveHosted(ctx, tx, rec, d, append(ids, networkID))
	})
}

// UnscheduleNetwork takes a network from a DHCP agent
// (DELETE /v2.0/agents/{id}/dhcp-networks/{network_id}).
func (p *Plugin) UnscheduleNetwork(ctx context.Context, agentID, networkID string) error {
	return p.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := p.dhcpAgent(ctx, tx, agentID)
		if err != nil {
			return err
		}
		ids := hosted(d)
		i := slices.Index(ids, networkID)
		if i < 0 {
			return fault.Conflict("NetworkNotHostedByDhcpAgent", "The network %s is not hosted by the DHCP agent %s.", networkID, agentID)
		}
		return p.saveHosted(ctx, tx, rec, d, slices.Delete(ids, i, i+1))
	})
}

func (p *Plugin) dhcpAgent(ctx context.Context, tx store.Tx, agentID string) (*store.Record, resource.Doc, error) {
	rec, err := tx.Lock(ctx, "agent", agentID)
	if err != nil {
		return nil, nil, notFoundAgent(err, agentID)
	}
	d, err := record.Decode(rec)
	if err != nil {
		return nil, nil, err
	}
	if d["agent_type"] != DHCP || d["admin_state_up"] == false {
		return nil, nil, fault.Conflict("InvalidDHCPAgent", "Agent %s is not a valid DHCP Agent or has been disabled.", agentID)
	}
	return rec, d, nil
}

func (p *Plugin) saveHosted(ctx context.Context, tx store.Tx, rec *store.Record, d resource.Doc, ids []string) error {
	d[hostedKey] = resource.List(ids)
	return record.Save(ctx, tx, rec, d)
}

func hosted(d resource.Doc) []string {
	l, _ := d[hostedKey].([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// view is an agent document as the API shows it.
func view(d resource.Doc) resource.Doc {
	out := make(resource.Doc, len(d))
	for k, v := range d {
		if k != hostedKey {
			out[k] = v
		}
	}
	return out
}

func notFoundAgent(err error, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return agentNotFound(id)
	}
	return err
}
