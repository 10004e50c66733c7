package dhcp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"muon/internal/agents"
	"muon/internal/fault"
	"muon/internal/ml2"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/store"
)

// Owner is the device_owner of DHCP ports.
const Owner = "network:dhcp"

// Entity is DHCP's provisioning block on ports.
const Entity = "DHCP"

// Plugin schedules networks on DHCP agents.
type Plugin struct {
	st     store.Store
	core   *ml2.Plugin
	agents *agents.Plugin
	cfg    Config
	log    *slog.Logger
}

// A hosting is one network served by one DHCP agent: a record of its
// own, its id made of both (the database keeps a network from being
// given twice to an agent), the network its parent.
const hostingKind = "dhcp_hosting"

type hosting struct {
	NetworkID string `json:"network_id"`
	AgentID   string `json:"agent_id"`
	Host      string `json:"host"`
	// PortID is the hosting's DHCP port, once made.
	PortID string `json:"port_id,omitempty"`
}

func hostingID(networkID, agentID string) string { return networkID + "@" + agentID }

// parseHostingID is the network and agent of a hosting's id.
func parseHostingID(id string) (networkID, agentID string, ok bool) {
	return strings.Cut(id, "@")
}

// hostings reads the hostings of a network, or every one for "".
func hostings(ctx context.Context, tx store.Tx, networkID string) ([]hosting, error) {
	f := store.Filter{Kind: hostingKind}
	if networkID != "" {
		f.Parents = []string{networkID}
	}
	recs, err := tx.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]hosting, 0, len(recs))
	for _, r := range recs {
		var h hosting
		if err := json.Unmarshal(r.Doc, &h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b hosting) int {
		return cmp.Or(cmp.Compare(a.NetworkID, b.NetworkID), cmp.Compare(a.Host, b.Host))
	})
	return out, nil
}

func saveHosting(ctx context.Context, tx store.Tx, h hosting, insert bool) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	r := &store.Record{Kind: hostingKind, ID: hostingID(h.NetworkID, h.AgentID), ParentID: h.NetworkID, Doc: b}
	if insert {
		return tx.Insert(ctx, r)
	}
	return tx.Update(ctx, r)
}

// deviceID is a DHCP port's device_id, as Neutron's agent makes it.
func deviceID(host, networkID string) string {
	return "dhcp" + uuid.NewSHA1(uuid.NameSpaceDNS, []byte(host)).String() + "-" + networkID
}

// servedSubnets are the subnets DHCP serves.
func servedSubnets(subs []ml2.SubnetInfo) []ml2.SubnetInfo {
	var out []ml2.SubnetInfo
	for _, s := range subs {
		if s.EnableDHCP {
			out = append(out, s)
		}
	}
	return out
}

// autoAddressed is a subnet whose addresses ports take by themselves
// (SLAAC): a DHCP port gets one without asking.
func autoAddressed(s ml2.SubnetInfo) bool {
	return s.IPVersion == 6 && (s.IPv6AddrMode == "slaac" || s.IPv6AddrMode == "dhcpv6-stateless")
}

// scheduleTx makes a network with DHCP-enabled subnets served by as many
// live agents as configured (the least loaded first), and every agent
// serving it have its DHCP port with an address on each of them. It
// tells how many agents it added.
func (p *Plugin) scheduleTx(ctx context.Context, tx store.Tx, networkID string) (int, error) {
	subs, err := ml2.ReadSubnets(ctx, tx, networkID)
	if err != nil {
		return 0, err
	}
	served := servedSubnets(subs)
	if len(served) == 0 {
		return 0, nil
	}
	hs, err := hostings(ctx, tx, networkID)
	if err != nil {
		return 0, err
	}
	all, err := p.agents.ReadAgents(ctx, tx, agents.DHCP)
	if err != nil {
		return 0, err
	}
	byID := map[string]agents.Info{}
	for _, a := range all {
		byID[a.ID] = a
	}
	live := 0
	for _, h := range hs {
		if a, ok := byID[h.AgentID]; ok && a.Alive {
			live++
		}
	}
	added := 0
	if need := p.cfg.AgentsPerNetwork - live; need > 0 {
		picks, err := p.pick(ctx, tx, all, hs, need)
		if err != nil {
			return 0, err
		}
		for _, a := range picks {
			h := hosting{NetworkID: networkID, AgentID: a.ID, Host: a.Host}
			if err := saveHosting(ctx, tx, h, true); err != nil {
				return 0, err
			}
			hs = append(hs, h)
			added++
		}
	}
	for _, h := range hs {
		if err := p.ensurePortTx(ctx, tx, h, subs); err != nil {
			return 0, err
		}
	}
	return added, nil
}

// pick chooses up to n live, enabled DHCP agents not serving the
// network yet, those serving the fewest networks first (Neutron's
// weight scheduler).
func (p *Plugin) pick(ctx context.Context, tx store.Tx, all []agents.Info, hs []hosting, n int) ([]agents.Info, error) {
	var cands []agents.Info
	for _, a := range all {
		if a.Alive && a.AdminStateUp && !slices.ContainsFunc(hs, func(h hosting) bool { return h.AgentID == a.ID }) {
			cands = append(cands, a)
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	every, err := hostings(ctx, tx, "")
	if err != nil {
		return nil, err
	}
	load := map[string]int{}
	for _, h := range every {
		load[h.AgentID]++
	}
	slices.SortStableFunc(cands, func(a, b agents.Info) int { return cmp.Compare(load[a.ID], load[b.ID]) })
	return cands[:min(n, len(cands))], nil
}

// ensurePortTx makes a hosting's DHCP port, or gives it an address on
// the served subnets it lacks one on.
func (p *Plugin) ensurePortTx(ctx context.Context, tx store.Tx, h hosting, subs []ml2.SubnetInfo) error {
	served := servedSubnets(subs)
	auto := map[string]bool{}
	for _, s := range subs {
		auto[s.ID] = autoAddressed(s)
	}
	var want []any
	if h.PortID != "" {
		ports, err := ml2.ReadPorts(ctx, tx, []string{h.PortID})
		if err != nil {
			return err
		}
		if pt, ok := ports[h.PortID]; ok {
			have := map[string]bool{}
			for _, f := range pt.FixedIPs {
				have[f.SubnetID] = true
				if auto[f.SubnetID] {
					// Its address is the subnet's to derive again.
					want = append(want, map[string]any{"subnet_id": f.SubnetID})
				} else {
					want = append(want, map[string]any{"subnet_id": f.SubnetID, "ip_address": f.IP})
				}
			}
			missing := false
			for _, s := range served {
				if !have[s.ID] && !autoAddressed(s) {
					want = append(want, map[string]any{"subnet_id": s.ID})
					missing = true
				}
			}
			if !missing {
				return nil
			}
			_, err := p.core.UpdatePortTx(ctx, tx, h.PortID, resource.Doc{"fixed_ips": want})
			return err
		}
	}
	for _, s := range served {
		if !autoAddressed(s) {
			want = append(want, map[string]any{"subnet_id": s.ID})
		}
	}
	nw, ok, err := ml2.ReadNetwork(ctx, tx, h.NetworkID)
	if err != nil || !ok {
		return err
	}
	d := resource.Doc{
		"network_id": h.NetworkID, "name": "", "device_owner": Owner, "device_id": deviceID(h.Host, h.NetworkID),
		"binding:host_id": h.Host, "admin_state_up": true, "fixed_ips": resource.List(want),
	}
	port, err := p.core.CreateNetworkPortTx(ctx, tx, d, nw.ProjectID)
	if err != nil {
		return err
	}
	h.PortID = resource.Str(port["id"])
	return saveHosting(ctx, tx, h, false)
}

// unhostTx takes a network from an agent, with the agent's DHCP port.
func (p *Plugin) unhostTx(ctx context.Context, tx store.Tx, h hosting) error {
	if h.PortID != "" {
		if err := p.core.DeletePortTx(ctx, tx, h.PortID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return tx.Delete(ctx, hostingKind, hostingID(h.NetworkID, h.AgentID))
}

// subscribe follows the core: subnets scheduling their networks, deleted
// networks taking their hostings along, ports on served subnets waiting
// for DHCP before they go ACTIVE.
func (p *Plugin) subscribe() {
	ev := p.core.Events()
	ev.SubnetCreate.Subscribe(func(ctx context.Context, tx store.Tx, e ml2.SubnetEvent) error {
		s := ml2.SubnetOf(e.Subnet)
		if !s.EnableDHCP {
			return nil
		}
		_, err := p.scheduleTx(ctx, tx, s.NetworkID)
		return err
	})
	ev.SubnetUpdate.Subscribe(func(ctx context.Context, tx store.Tx, e ml2.SubnetEvent) error {
		if _, ok := e.Patch["enable_dhcp"]; !ok {
			return nil
		}
		_, err := p.scheduleTx(ctx, tx, ml2.SubnetOf(e.Subnet).NetworkID)
		return err
	})
	ev.NetworkDelete.Subscribe(func(ctx context.Context, tx store.Tx, e ml2.NetworkEvent) error {
		hs, err := hostings(ctx, tx, resource.Str(e.Network["id"]))
		if err != nil {
			return err
		}
		for _, h := range hs {
			// Its DHCP port goes with the network.
			if err := tx.Delete(ctx, hostingKind, hostingID(h.NetworkID, h.AgentID)); err != nil {
				return err
			}
		}
		return nil
	})
	block := func(ctx context.Context, tx store.Tx, port resource.Doc) error {
		pt := ml2.PortOf(port)
		if strings.HasPrefix(pt.DeviceOwner, "network:") || len(pt.FixedIPs) == 0 {
			return nil
		}
		subs, err := ml2.ReadSubnets(ctx, tx, pt.NetworkID)
		if err != nil {
			return err
		}
		served := map[string]bool{}
		for _, s := range servedSubnets(subs) {
			served[s.ID] = true
		}
		if !slices.ContainsFunc(pt.FixedIPs, func(f ml2.FixedIP) bool { return served[f.SubnetID] }) {
			return nil
		}
		live, err := p.liveHostings(ctx, tx, pt.NetworkID)
		if err != nil || live == 0 {
			return err
		}
		ml2.AddProvisioningBlock(port, Entity)
		return nil
	}
	ev.PortCreate.Subscribe(func(ctx context.Context, tx store.Tx, e ml2.PortEvent) error {
		return block(ctx, tx, e.Port)
	})
	ev.PortUpdate.Subscribe(func(ctx context.Context, tx store.Tx, e ml2.PortEvent) error {
		_, ips := e.Patch["fixed_ips"]
		_, mac := e.Patch["mac_address"]
		if !ips && !mac {
			return nil
		}
		return block(ctx, tx, e.Port)
	})
}

// liveHostings counts the live agents serving a network.
func (p *Plugin) liveHostings(ctx context.Context, tx store.Tx, networkID string) (int, error) {
	hs, err := hostings(ctx, tx, networkID)
	if err != nil || len(hs) == 0 {
		return 0, err
	}
	n := 0
	for _, h := range hs {
		a, ok, err := p.agents.ReadAgent(ctx, tx, h.AgentID)
		if err != nil {
			return 0, err
		}
		if ok && a.Alive {
			n++
		}
	}
	return n, nil
}

// run looks every period at the agents: networks of agents deleted, or
// dead while another could serve them, move (allow_automatic_dhcp_
// failover); networks nobody serves go to the agents that came
// (network_auto_schedule).
func (p *Plugin) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := p.Reconcile(ctx); err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "dhcp scheduling failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reconcile does one look of run's.
func (p *Plugin) Reconcile(ctx context.Context) error {
	var moved []string
	err := p.st.Update(ctx, func(tx store.Tx) error {
		moved = moved[:0]
		all, err := p.agents.ReadAgents(ctx, tx, agents.DHCP)
		if err != nil {
			return err
		}
		byID := map[string]agents.Info{}
		usable := 0
		for _, a := range all {
			byID[a.ID] = a
			if a.Alive && a.AdminStateUp {
				usable++
			}
		}
		hs, err := hostings(ctx, tx, "")
		if err != nil {
			return err
		}
		for _, h := range hs {
			a, exists := byID[h.AgentID]
			gone := !exists
			// Dead (for long enough that this server would have heard
			// from it), and a live agent serves it or could.
			dead := exists && !a.Alive && p.cfg.Failover && p.agents.Settled() && usable > 0
			if !gone && !dead {
				continue
			}
			if err := p.unhostTx(ctx, tx, h); err != nil {
				return err
			}
			moved = append(moved, h.NetworkID)
			p.log.InfoContext(ctx, "network taken from a DHCP agent", "network", h.NetworkID, "agent", h.AgentID, "host", h.Host, "deleted", gone)
		}
		return nil
	})
	if err != nil {
		return err
	}
	nets := map[string]bool{}
	for _, n := range moved {
		nets[n] = true
	}
	if p.cfg.AutoSchedule {
		if err := p.st.View(ctx, func(tx store.Tx) error {
			return p.unserved(ctx, tx, nets)
		}); err != nil {
			return err
		}
	}
	for _, n := range slices.Sorted(maps.Keys(nets)) {
		err := p.st.Update(ctx, func(tx store.Tx) error {
			added, err := p.scheduleTx(ctx, tx, n)
			if added > 0 {
				p.log.InfoContext(ctx, "network scheduled", "network", n, "agents", added)
			}
			return err
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// unserved adds the networks with DHCP-enabled subnets that have fewer
// live agents than configured, when a live agent could take them.
func (p *Plugin) unserved(ctx context.Context, tx store.Tx, nets map[string]bool) error {
	all, err := p.agents.ReadAgents(ctx, tx, agents.DHCP)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, a := range all {
		if a.Alive && a.AdminStateUp {
			live[a.ID] = true
		}
	}
	if len(live) == 0 {
		return nil
	}
	hs, err := hostings(ctx, tx, "")
	if err != nil {
		return err
	}
	served := map[string]int{}
	hosted := map[string]map[string]bool{}
	// Until the server has heard every agent once since it started, an
	// agent that reads dead still serves (as for failover).
	settled := p.agents.Settled()
	for _, h := range hs {
		if live[h.AgentID] || !settled {
			served[h.NetworkID]++
		}
		if hosted[h.NetworkID] == nil {
			hosted[h.NetworkID] = map[string]bool{}
		}
		hosted[h.NetworkID][h.AgentID] = true
	}
	subs, err := tx.List(ctx, store.Filter{Kind: "subnet"})
	if err != nil {
		return err
	}
	for i := range subs {
		d, err := record.Decode(&subs[i])
		if err != nil {
			return err
		}
		s := ml2.SubnetOf(d)
		if !s.EnableDHCP || served[s.NetworkID] >= p.cfg.AgentsPerNetwork {
			continue
		}
		free := 0
		for id := range live {
			if !hosted[s.NetworkID][id] {
				free++
			}
		}
		if free > 0 {
			nets[s.NetworkID] = true
		}
	}
	return nil
}

// AgentsOfNetwork lists the DHCP agents serving a network
// (GET /v2.0/networks/{id}/dhcp-agents).
func (p *Plugin) AgentsOfNetwork(ctx context.Context, networkID string) ([]resource.Doc, error) {
	var ids []string
	err := p.st.View(ctx, func(tx store.Tx) error {
		if _, ok, err := ml2.ReadNetwork(ctx, tx, networkID); err != nil {
			return err
		} else if !ok {
			return networkNotFound(networkID)
		}
		hs, err := hostings(ctx, tx, networkID)
		for _, h := range hs {
			ids = append(ids, h.AgentID)
		}
		return err
	})
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return agents.Agents{Plugin: p.agents}.List(ctx, &resource.Query{Filters: map[string][]string{"id": ids}})
}

// NetworksOfAgent lists the networks a DHCP agent serves
// (GET /v2.0/agents/{id}/dhcp-networks).
func (p *Plugin) NetworksOfAgent(ctx context.Context, agentID string) ([]resource.Doc, error) {
	var ids []string
	err := p.st.View(ctx, func(tx store.Tx) error {
		if _, ok, err := p.agents.ReadAgent(ctx, tx, agentID); err != nil {
			return err
		} else if !ok {
			return agentNotFound(agentID)
		}
		hs, err := hostings(ctx, tx, "")
		for _, h := range hs {
			if h.AgentID == agentID {
				ids = append(ids, h.NetworkID)
			}
		}
		return err
	})
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return ml2.Networks{Plugin: p.core}.List(ctx, &resource.Query{Filters: map[string][]string{"id": ids}})
}

// AddNetwork gives a network to a DHCP agent
// (POST /v2.0/agents/{id}/dhcp-networks).
func (p *Plugin) AddNetwork(ctx context.Context, agentID, networkID string) error {
	return p.st.Update(ctx, func(tx store.Tx) error {
		a, err := p.dhcpAgent(ctx, tx, agentID)
		if err != nil {
			return err
		}
		if _, ok, err := ml2.ReadNetwork(ctx, tx, networkID); err != nil {
			return err
		} else if !ok {
			return networkNotFound(networkID)
		}
		if _, err := tx.Get(ctx, hostingKind, hostingID(networkID, agentID)); err == nil {
			return fault.Conflict("NetworkHostedByDHCPAgent", "The network %s has been already hosted by the DHCP Agent %s.", networkID, agentID)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		h := hosting{NetworkID: networkID, AgentID: agentID, Host: a.Host}
		if err := saveHosting(ctx, tx, h, true); err != nil {
			return err
		}
		subs, err := ml2.ReadSubnets(ctx, tx, networkID)
		if err != nil {
			return err
		}
		if len(servedSubnets(subs)) > 0 {
			return p.ensurePortTx(ctx, tx, h, subs)
		}
		return nil
	})
}

// RemoveNetwork takes a network from a DHCP agent
// (DELETE /v2.0/agents/{id}/dhcp-networks/{network_id}).
func (p *Plugin) RemoveNetwork(ctx context.Context, agentID, networkID string) error {
	return p.st.Update(ctx, func(tx store.Tx) error {
		if _, err := p.dhcpAgent(ctx, tx, agentID); err != nil {
			return err
		}
		rec, err := tx.Lock(ctx, hostingKind, hostingID(networkID, agentID))
		if errors.Is(err, store.ErrNotFound) {
			return fault.Conflict("NetworkNotHostedByDhcpAgent", "The network %s is not hosted by the DHCP agent %s.", networkID, agentID)
		}
		if err != nil {
			return err
		}
		var h hosting
		if err := json.Unmarshal(rec.Doc, &h); err != nil {
			return err
		}
		return p.unhostTx(ctx, tx, h)
	})
}

// dhcpAgent reads an enabled DHCP agent.
func (p *Plugin) dhcpAgent(ctx context.Context, tx store.Tx, agentID string) (agents.Info, error) {
	a, ok, err := p.agents.ReadAgent(ctx, tx, agentID)
	if err != nil {
		return a, err
	}
	if !ok {
		return a, agentNotFound(agentID)
	}
	if a.Type != agents.DHCP || !a.AdminStateUp {
		return a, fault.Conflict("InvalidDHCPAgent", "Agent %s is not a valid DHCP Agent or has been disabled.", agentID)
	}
	return a, nil
}

func agentNotFound(id string) *fault.Error {
	return fault.NotFound("AgentNotFound", "Agent %s could not be found.", id)
}

func networkNotFound(id string) *fault.Error {
	return fault.NotFound("NetworkNotFound", "Network %s could not be found.", id)
}
