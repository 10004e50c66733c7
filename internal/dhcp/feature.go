// Package dhcp is the server side of DHCP, DNS and metadata for
// instances: the DHCP agent scheduler (networks with DHCP-enabled subnets
// are given to dhcp_agents_per_network live DHCP agents, and moved off
// agents that die), each hosting's DHCP port (device_owner network:dhcp,
// made in the transaction that schedules it), the dhcp_agent_scheduler
// API, the "dhcp" section of hosts' desired state (the networks a host
// serves, their subnets and ports), and the DHCP provisioning block: a
// port on a served subnet goes ACTIVE only once its host's DHCP service
// says its lease is servable. The agent side is internal/agent/dhcp.
package dhcp

import (
	"context"
	"errors"
	"time"

	"muon/internal/agents"
	"muon/internal/feature"
	"muon/internal/policy"
)

func init() {
	feature.Register(feature.Feature{
		Name: "dhcp",
		Extensions: []feature.Extension{
			feature.Ext("dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among dhcp agents", "2013-02-07T10:00:00-00:00"),
		},
		Policy: policyDefaults(),
		Config: func() any { c := DefaultConfig(); return &c },
		Needs:  []string{"agents"},
		Build:  build,
	})
}

// Config is the scheduler's, named as Neutron's [DEFAULT] options.
type Config struct {
	// AgentsPerNetwork is how many DHCP agents serve a network (1).
	AgentsPerNetwork int `toml:"dhcp_agents_per_network"`
	// AutoSchedule gives networks nobody serves to agents that come.
	AutoSchedule bool `toml:"network_auto_schedule"`
	// Failover moves networks off DHCP agents that are dead.
	Failover bool `toml:"allow_automatic_dhcp_failover"`
}

// DefaultConfig is Neutron's.
func DefaultConfig() Config {
	return Config{AgentsPerNetwork: 1, AutoSchedule: true, Failover: true}
}

// policyDefaults: the scheduler is the admin's.
func policyDefaults() policy.Rules {
	r := policy.Rules{}
	r.Add(policy.Admin, "get_dhcp-agents", "get_dhcp-networks", "create_dhcp-network", "delete_dhcp-network")
	return r
}

func build(ctx context.Context, env feature.Env) (feature.Parts, error) {
	ag, ok := env.Feature("agents").(*agents.Plugin)
	if !ok {
		return feature.Parts{}, errors.New("dhcp: the agents feature is not built")
	}
	cfg := *env.Config.(*Config)
	if cfg.AgentsPerNetwork < 1 {
		return feature.Parts{}, errors.New("dhcp: dhcp_agents_per_network must be at least 1")
	}
	p := &Plugin{st: env.Store, core: env.Core, agents: ag, cfg: cfg, log: env.Log}
	p.subscribe()
	return feature.Parts{
		Routes:   p.routes(),
		Sections: []feature.Section{Section{Plugin: p}},
		Run: func(ctx context.Context) {
			// Half of agent_down_time, as Neutron's periodic check, but
			// at least every 30 s and at most every second.
			p.run(ctx, min(max(ag.DownTime()/2, time.Second), 30*time.Second))
		},
		Plugin: p,
	}, nil
}

// routes serve the dhcp_agent_scheduler extension.
func (p *Plugin) routes() []feature.Route {
	return []feature.Route{
		{Pattern: "GET /v2.0/networks/{id}/dhcp-agents", Policy: "get_dhcp-agents", Do: feature.ListBy("agents", p.AgentsOfNetwork)},
		{Pattern: "GET /v2.0/agents/{id}/dhcp-networks", Policy: "get_dhcp-networks", Do: feature.ListBy("networks", p.NetworksOfAgent)},
		{Pattern: "POST /v2.0/agents/{id}/dhcp-networks", Policy: "create_dhcp-network", Do: feature.AddBy("network_id", p.AddNetwork)},
		{Pattern: "DELETE /v2.0/agents/{id}/dhcp-networks/{what}", Policy: "delete_dhcp-network", Do: feature.RemoveBy(p.RemoveNetwork)},
	}
}
