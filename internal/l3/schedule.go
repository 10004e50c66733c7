package l3

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"muon/internal/agents"
	"muon/internal/fault"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/store"
)

// The L3 agent scheduler, after Neutron's l3_agentschedulers_db with its
// least-routers scheduler: a router is hosted by one live L3 agent (legacy
// mode), which builds all of it in its host's kernel; the router's ports
// are bound to that host, so the host's L2 agent wires them.

// A hosting is one router on one L3 agent: a record of its own, its id
// made of both, the router its parent.
const hostingKind = "l3_hosting"

type hosting struct {
	RouterID string `json:"router_id"`
	AgentID  string `json:"agent_id"`
	Host     string `json:"host"`
}

func hostingID(routerID, agentID string) string { return routerID + "@" + agentID }

func parseHostingID(id string) (routerID, agentID string, ok bool) { return strings.Cut(id, "@") }

// hostingsOf reads a router's hostings, or every one for "".
func hostingsOf(ctx context.Context, tx store.Tx, routerID string) ([]hosting, error) {
	f := store.Filter{Kind: hostingKind}
	if routerID != "" {
		f.Parents = []string{routerID}
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
		return cmp.Or(cmp.Compare(a.RouterID, b.RouterID), cmp.Compare(a.Host, b.Host))
	})
	return out, nil
}

func insertHosting(ctx context.Context, tx store.Tx, h hosting) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return tx.Insert(ctx, &store.Record{Kind: hostingKind, ID: hostingID(h.RouterID, h.AgentID), ParentID: h.RouterID, Doc: b})
}

// l3Capable tells whether an agent can host a whole router: legacy and
// dvr_snat agents can, dvr agents (compute hosts) cannot.
func l3Capable(a agents.Info) bool {
	return a.Type == agents.L3 && a.AdminStateUp && a.Alive
}

// placeTx hosts a router that no agent hosts on the live L3 agent with
// the fewest routers, and binds the router's ports to its host (ports a
// hosting's host does not wire stay bound to where they were).
func (p *Plugin) placeTx(ctx context.Context, tx store.Tx, d resource.Doc) error {
	if p.agents == nil {
		return nil
	}
	id := resource.Str(d["id"])
	hs, err := hostingsOf(ctx, tx, id)
	if err != nil {
		return err
	}
	if len(hs) == 0 && p.cfg.AutoSchedule {
		h, ok, err := p.pick(ctx, tx, d, "")
		if err != nil {
			return err
		}
		if ok {
			if err := insertHosting(ctx, tx, h); err != nil {
				return err
			}
			hs = []hosting{h}
		}
	}
	if len(hs) == 0 {
		return nil
	}
	return p.bindPortsTx(ctx, tx, d, hs[0].Host)
}

// pick chooses the live L3 agent hosting the fewest routers, other than
// except; for a router with a gateway, among those whose host can wire
// the external network (all of them when none can: the gateway port then
// shows binding_failed).
func (p *Plugin) pick(ctx context.Context, tx store.Tx, d resource.Doc, except string) (hosting, bool, error) {
	routerID := resource.Str(d["id"])
	all, err := p.agents.ReadAgents(ctx, tx, agents.L3)
	if err != nil {
		return hosting{}, false, err
	}
	var cands []agents.Info
	for _, a := range all {
		if l3Capable(a) && a.ID != except {
			cands = append(cands, a)
		}
	}
	if len(cands) == 0 {
		return hosting{}, false, nil
	}
	if gw, _ := d["external_gateway_info"].(map[string]any); gw != nil {
		var reach []agents.Info
		for _, a := range cands {
			ok, err := p.agents.Reaches(ctx, tx, a.Host, resource.Str(gw["network_id"]))
			if err != nil {
				return hosting{}, false, err
			}
			if ok {
				reach = append(reach, a)
			}
		}
		if len(reach) > 0 {
			cands = reach
		}
	}
	every, err := hostingsOf(ctx, tx, "")
	if err != nil {
		return hosting{}, false, err
	}
	load := map[string]int{}
	for _, h := range every {
		load[h.AgentID]++
	}
	slices.SortStableFunc(cands, func(a, b agents.Info) int { return cmp.Compare(load[a.ID], load[b.ID]) })
	return hosting{RouterID: routerID, AgentID: cands[0].ID, Host: cands[0].Host}, true, nil
}

// bindPortsTx binds a router's interface and gateway ports to host.
func (p *Plugin) bindPortsTx(ctx context.Context, tx store.Tx, d resource.Doc, host string) error {
	ports, err := p.routerPorts(ctx, tx, d, true)
	if err != nil {
		return err
	}
	for _, pd := range ports {
		if resource.Str(pd["binding:host_id"]) == host {
			continue
		}
		if _, err := p.core.UpdatePortTx(ctx, tx, resource.Str(pd["id"]), resource.Doc{"binding:host_id": host}); err != nil {
			return err
		}
	}
	return nil
}

// unhostTx takes a router from its agents; its ports stay bound until
// another agent takes it.
func unhostTx(ctx context.Context, tx store.Tx, routerID string) error {
	hs, err := hostingsOf(ctx, tx, routerID)
	if err != nil {
		return err
	}
	for _, h := range hs {
		if err := tx.Delete(ctx, hostingKind, hostingID(h.RouterID, h.AgentID)); err != nil {
			return err
		}
	}
	return nil
}

// run looks every period at the agents: routers of agents deleted, or
// dead while another live agent could take them, move
// (allow_automatic_l3agent_failover); routers nobody hosts go to agents
// that came (router_auto_schedule).
func (p *Plugin) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := p.Reconcile(ctx); err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "l3 scheduling failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reconcile does one look of run's, each router moved in a transaction
// of its own.
func (p *Plugin) Reconcile(ctx context.Context) error {
	var todo []string
	err := p.core.View(ctx, func(tx store.Tx) error {
		todo = todo[:0]
		all, err := p.agents.ReadAgents(ctx, tx, agents.L3)
		if err != nil {
			return err
		}
		byID := map[string]agents.Info{}
		usable := 0
		for _, a := range all {
			byID[a.ID] = a
			if l3Capable(a) {
				usable++
			}
		}
		hs, err := hostingsOf(ctx, tx, "")
		if err != nil {
			return err
		}
		hosted := map[string]bool{}
		for _, h := range hs {
			hosted[h.RouterID] = true
			a, exists := byID[h.AgentID]
			if !exists || p.cfg.Failover && !a.Alive && usable > 0 && p.agents.Settled() {
				todo = append(todo, h.RouterID)
			}
		}
		if !p.cfg.AutoSchedule || usable == 0 {
			return nil
		}
		recs, err := tx.List(ctx, store.Filter{Kind: "router"})
		if err != nil {
			return err
		}
		for _, r := range recs {
			if !hosted[r.ID] {
				todo = append(todo, r.ID)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range todo {
		if err := p.core.Update(ctx, func(tx store.Tx) error { return p.rescheduleTx(ctx, tx, id) }); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// rescheduleTx moves a router off agents that are gone or dead to a live
// one, or hosts it if nobody does.
func (p *Plugin) rescheduleTx(ctx context.Context, tx store.Tx, routerID string) error {
	rec, err := tx.Lock(ctx, "router", routerID)
	if err != nil {
		return err
	}
	d, err := record.Decode(rec)
	if err != nil {
		return err
	}
	hs, err := hostingsOf(ctx, tx, routerID)
	if err != nil {
		return err
	}
	if len(hs) == 0 {
		return p.placeTx(ctx, tx, d)
	}
	// A legacy router has one hosting.
	h := hs[0]
	a, ok, err := p.agents.ReadAgent(ctx, tx, h.AgentID)
	if err != nil {
		return err
	}
	if ok && (a.Alive || !p.cfg.Failover || !p.agents.Settled()) {
		return nil // hosted as it should be
	}
	nh, found, err := p.pick(ctx, tx, d, h.AgentID)
	if err != nil || !found && ok {
		return err // dead, and nobody to take it: it stays
	}
	if err := tx.Delete(ctx, hostingKind, hostingID(h.RouterID, h.AgentID)); err != nil {
		return err
	}
	p.log.InfoContext(ctx, "router taken from an L3 agent", "router", routerID, "agent", h.AgentID, "host", h.Host, "deleted", !ok)
	if !found {
		return nil
	}
	if err := insertHosting(ctx, tx, nh); err != nil {
		return err
	}
	p.log.InfoContext(ctx, "router scheduled", "router", routerID, "host", nh.Host)
	return p.bindPortsTx(ctx, tx, d, nh.Host)
}

// AgentsOfRouter lists the L3 agents hosting a router
// (GET /v2.0/routers/{id}/l3-agents).
func (p *Plugin) AgentsOfRouter(ctx context.Context, routerID string) ([]resource.Doc, error) {
	var ids []string
	err := p.core.View(ctx, func(tx store.Tx) error {
		if _, err := tx.Get(ctx, "router", routerID); errors.Is(err, store.ErrNotFound) {
			return routerNotFound(routerID)
		} else if err != nil {
			return err
		}
		hs, err := hostingsOf(ctx, tx, routerID)
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

// RoutersOfAgent lists the routers an L3 agent hosts
// (GET /v2.0/agents/{id}/l3-routers).
func (p *Plugin) RoutersOfAgent(ctx context.Context, agentID string) ([]resource.Doc, error) {
	var ids []string
	err := p.core.View(ctx, func(tx store.Tx) error {
		if _, ok, err := p.agents.ReadAgent(ctx, tx, agentID); err != nil {
			return err
		} else if !ok {
			return agentNotFound(agentID)
		}
		hs, err := hostingsOf(ctx, tx, "")
		for _, h := range hs {
			if h.AgentID == agentID {
				ids = append(ids, h.RouterID)
			}
		}
		return err
	})
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return Routers{Plugin: p}.List(ctx, &resource.Query{Filters: map[string][]string{"id": ids}})
}

// AddRouter gives a router to an L3 agent (POST
// /v2.0/agents/{id}/l3-routers): a legacy router is hosted by one agent,
// so one hosted elsewhere already is refused (Neutron's
// RouterHostedByL3Agent).
func (p *Plugin) AddRouter(ctx context.Context, agentID, routerID string) error {
	return p.core.Update(ctx, func(tx store.Tx) error {
		a, err := p.l3Agent(ctx, tx, agentID)
		if err != nil {
			return err
		}
		rec, err := tx.Lock(ctx, "router", routerID)
		if errors.Is(err, store.ErrNotFound) {
			return routerNotFound(routerID)
		}
		if err != nil {
			return err
		}
		hs, err := hostingsOf(ctx, tx, routerID)
		if err != nil {
			return err
		}
		if len(hs) > 0 {
			if hs[0].AgentID == agentID {
				return nil // Neutron: already there, nothing to do
			}
			return fault.Conflict("RouterHostedByL3Agent", "The router %s has been already hosted by the L3 Agent %s.", routerID, hs[0].AgentID)
		}
		d, err := record.Decode(rec)
		if err != nil {
			return err
		}
		if err := insertHosting(ctx, tx, hosting{RouterID: routerID, AgentID: agentID, Host: a.Host}); err != nil {
			return err
		}
		return p.bindPortsTx(ctx, tx, d, a.Host)
	})
}

// RemoveRouter takes a router from an L3 agent (DELETE
// /v2.0/agents/{id}/l3-routers/{router_id}); it stays unhosted until
// given to an agent again (the auto-scheduler leaves it alone only while
// router_auto_schedule is off).
func (p *Plugin) RemoveRouter(ctx context.Context, agentID, routerID string) error {
	return p.core.Update(ctx, func(tx store.Tx) error {
		if _, err := p.l3Agent(ctx, tx, agentID); err != nil {
			return err
		}
		if _, err := tx.Lock(ctx, hostingKind, hostingID(routerID, agentID)); errors.Is(err, store.ErrNotFound) {
			return fault.Conflict("RouterNotHostedByL3Agent", "The router %s is not hosted by L3 agent %s.", routerID, agentID)
		} else if err != nil {
			return err
		}
		return tx.Delete(ctx, hostingKind, hostingID(routerID, agentID))
	})
}

// l3Agent reads an enabled L3 agent.
func (p *Plugin) l3Agent(ctx context.Context, tx store.Tx, agentID string) (agents.Info, error) {
	a, ok, err := p.agents.ReadAgent(ctx, tx, agentID)
	if err != nil {
		return a, err
	}
	if !ok {
		return a, agentNotFound(agentID)
	}
	if a.Type != agents.L3 || !a.AdminStateUp {
		return a, fault.Conflict("InvalidL3Agent", "Agent %s is not a L3 Agent or has been disabled", agentID)
	}
	return a, nil
}

func agentNotFound(id string) *fault.Error {
	return fault.NotFound("AgentNotFound", "Agent %s could not be found.", id)
}

// hostedRouters are the routers an agent hosts, as a set.
func hostedRouters(ctx context.Context, tx store.Tx, agentID string) (map[string]bool, error) {
	hs, err := hostingsOf(ctx, tx, "")
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, h := range hs {
		if h.AgentID == agentID {
			out[h.RouterID] = true
		}
	}
	return out, nil
}
