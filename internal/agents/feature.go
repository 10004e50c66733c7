package agents

import (
	"context"
	"net/http"

	"muon/internal/agentapi"
	"muon/internal/fault"
	"muon/internal/feature"
	"muon/internal/policy"
	"muon/internal/resource"
)

func init() {
	feature.Register(feature.Feature{
		Name: "agents",
		Extensions: []feature.Extension{
			feature.Ext("agent", "agent", "The agent management extension.", "2013-02-03T10:00:00-00:00"),
			feature.Ext("dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among dhcp agents", "2013-02-07T10:00:00-00:00"),
		},
		Policy: policyDefaults(),
		Config: func() any { c := DefaultConfig(); return &c },
		Build:  build,
	})
}

// policyDefaults: agents, their scheduling and their channel are the
// admin's.
func policyDefaults() policy.Rules {
	r := policy.Rules{}
	r.Add(policy.Admin, "get_agent", "update_agent", "delete_agent",
		"get_dhcp-agents", "get_dhcp-networks", "create_dhcp-network", "delete_dhcp-network",
		"report_agent_state")
	return r
}

// build makes the agents plugin, the core's port binder, the agents'
// heartbeat route and the l2 section of hosts' state.
func build(ctx context.Context, env feature.Env) (feature.Parts, error) {
	p, err := New(*env.Config.(*Config), env.Store, env.Core, env.Log)
	if err != nil {
		return feature.Parts{}, err
	}
	env.Core.UseBinder(p)
	return feature.Parts{
		Services: []*feature.Service{{Res: Resource(), Backend: Agents{Plugin: p}}},
		Routes:   append(p.dhcpRoutes(), p.heartbeatRoutes()...),
		Sections: []feature.Section{L2{Plugin: p}},
	}, nil
}

// dhcpRoutes serve the dhcp_agent_scheduler extension.
func (p *Plugin) dhcpRoutes() []feature.Route {
	list := func(key string, fn func(context.Context, string) ([]resource.Doc, error)) func(context.Context, feature.Request) (int, any, error) {
		return func(ctx context.Context, r feature.Request) (int, any, error) {
			out, err := fn(ctx, r.Path("id"))
			if err != nil {
				return 0, nil, err
			}
			if out == nil {
				out = []resource.Doc{}
			}
			return http.StatusOK, map[string]any{key: out}, nil
		}
	}
	return []feature.Route{
		{Pattern: "GET /v2.0/networks/{id}/dhcp-agents", Policy: "get_dhcp-agents", Do: list("agents", p.DHCPAgentsOfNetwork)},
		{Pattern: "GET /v2.0/agents/{id}/dhcp-networks", Policy: "get_dhcp-networks", Do: list("networks", p.NetworksOfDHCPAgent)},
		{Pattern: "POST /v2.0/agents/{id}/dhcp-networks", Policy: "create_dhcp-network", Do: func(ctx context.Context, r feature.Request) (int, any, error) {
			var in struct {
				NetworkID string `json:"network_id"`
			}
			if err := feature.DecodeJSON(r.Body, &in); err != nil {
				return 0, nil, err
			}
			if in.NetworkID == "" {
				return 0, nil, fault.BadRequest("Failed to parse request. Required attribute 'network_id' not specified")
			}
			if err := p.ScheduleNetwork(ctx, r.Path("id"), in.NetworkID); err != nil {
				return 0, nil, err
			}
			return http.StatusCreated, nil, nil
		}},
		{Pattern: "DELETE /v2.0/agents/{id}/dhcp-networks/{network}", Policy: "delete_dhcp-network", Do: func(ctx context.Context, r feature.Request) (int, any, error) {
			if err := p.UnscheduleNetwork(ctx, r.Path("id"), r.Path("network")); err != nil {
				return 0, nil, err
			}
			return http.StatusNoContent, nil, nil
		}},
	}
}

// heartbeatRoutes serve the agents' registration (internal/agentapi).
func (p *Plugin) heartbeatRoutes() []feature.Route {
	return []feature.Route{
		{Pattern: "POST /muon/v1/agents/heartbeat", Policy: "report_agent_state", Do: func(ctx context.Context, r feature.Request) (int, any, error) {
			var hb agentapi.Heartbeat
			if err := feature.DecodeJSON(r.Body, &hb); err != nil {
				return 0, nil, err
			}
			reply, err := p.Heartbeat(ctx, hb)
			if err != nil {
				return 0, nil, err
			}
			return http.StatusOK, reply, nil
		}},
	}
}
