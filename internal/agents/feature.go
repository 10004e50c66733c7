package agents

import (
	"context"
	"net/http"

	"muon/internal/agentapi"
	"muon/internal/feature"
	"muon/internal/policy"
)

func init() {
	feature.Register(feature.Feature{
		Name: "agents",
		Extensions: []feature.Extension{
			feature.Ext("agent", "agent", "The agent management extension.", "2013-02-03T10:00:00-00:00"),
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
	r.Add(policy.Admin, "get_agent", "update_agent", "delete_agent", "report_agent_state")
	return r
}

// build makes the agents plugin (offered to the features that schedule
// on agents), the core's port binder, the agents' heartbeat route and the
// l2 section of hosts' state.
func build(ctx context.Context, env feature.Env) (feature.Parts, error) {
	p, err := New(*env.Config.(*Config), env.Store, env.Core, env.Log)
	if err != nil {
		return feature.Parts{}, err
	}
	env.Core.UseBinder(p)
	return feature.Parts{
		Services: []*feature.Service{{Res: Resource(), Backend: Agents{Plugin: p}}},
		Routes:   p.heartbeatRoutes(),
		Sections: []feature.Section{L2{Plugin: p}},
		Plugin:   p,
	}, nil
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
