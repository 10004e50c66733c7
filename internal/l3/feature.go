package l3

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"muon/internal/agents"
	"muon/internal/feature"
	"muon/internal/policy"
	"muon/internal/quota"
)

// Config is the L3 plugin's configuration, named as Neutron's options.
type Config struct {
	// MaxRoutes is Neutron's max_routes: extra routes per router.
	MaxRoutes int `toml:"max_routes"`
	// AutoSchedule hosts routers nobody hosts on L3 agents as they come
	// (router_auto_schedule).
	AutoSchedule bool `toml:"router_auto_schedule"`
	// Failover moves routers off L3 agents that are dead
	// (allow_automatic_l3agent_failover; Neutron's default is off, ours
	// on: a legacy router on a dead host carries nothing).
	Failover bool `toml:"allow_automatic_l3agent_failover"`
	// Helpers are the conntrack helpers routers may use, each with a
	// protocol (allowed_conntrack_helpers = [{ftp = "tcp"}, ...]).
	Helpers []map[string]string `toml:"allowed_conntrack_helpers"`
}

// DefaultConfig is the L3 plugin's defaults.
func DefaultConfig() Config {
	return Config{MaxRoutes: 30, AutoSchedule: true, Failover: true, Helpers: slices.Clone(defaultHelpers)}
}

func init() {
	e := feature.Ext
	feature.Register(feature.Feature{
		Name: "l3",
		Extensions: []feature.Extension{
			e("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.", "2012-07-20T10:00:00-00:00"),
			e("ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway", "2013-03-28T10:00:00-00:00"),
			e("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router", "2013-02-01T10:00:00-00:00"),
			e("extraroute-atomic", "Atomically add/remove extra routes", "Edit extra routes of a router on server side by atomically adding/removing extra routes", "2019-07-10T00:00:00-00:00"),
			e("l3-ha", "HA Router extension", "Adds HA capability to routers.", "2014-04-26T00:00:00-00:00"),
			e("dvr", "Distributed Virtual Router", "Enables configuration of Distributed Virtual Routers.", "2014-06-1T10:00:00-00:00"),
			e("router-admin-state-down-before-update", "Enforce Router's Admin State Down Before Update Extension", "Ensure that the admin state of a router is down (admin_state_up=False) before updating the distributed attribute", "2018-10-24T00:00:00-00:00"),
			e("router_availability_zone", "Router Availability Zone", "Availability zone support for router.", "2015-01-01T10:00:00-00:00"),
			e("fip-port-details", "Floating IP Port Details Extension", "Add port_details attribute to Floating IP resource", "2018-04-09T10:00:00-00:00"),
			e("floating-ip-port-forwarding", "Floating IP Port Forwarding", "Provide port forwarding to floating IP.", "2018-07-04T10:00:00-00:00"),
			e("floating-ip-port-forwarding-description", "Floating IP Port Forwarding new attribute description", "Add a description field to Port Forwarding rules", "2019-11-01T10:00:00-00:00"),
			e("floating-ip-port-forwarding-port-ranges", "Floating IP Port Forwarding support port ranges", "Add suport to port ranges on floating IP port forwarding.", "2022-01-01T10:00:00-00:00"),
			e("expose-port-forwarding-in-fip", "Expose Port Forwarding in FIP", "Expose Port Forwarding in FIP", "2018-07-04T10:00:00-00:00"),
			e("l3_agent_scheduler", "L3 Agent Scheduler", "Schedule routers among l3 agents", "2013-02-07T10:00:00-00:00"),
			e("l3-conntrack-helper", "L3 Conntrack helper", "Allow adding CT target rules for conntrack helper", "2019-04-04T10:00:00-00:00"),
		},
		Policy: policyDefaults(),
		Quotas: []quota.Resource{{Name: "router", Kind: "router", Default: 10}, {Name: "floatingip", Kind: "floatingip", Default: 50}},
		Config: func() any { c := DefaultConfig(); return &c },
		Needs:  []string{"agents"},
		Build:  build,
	})
}

func policyDefaults() policy.Rules {
	r := policy.Rules{}
	// Routers: their owners manage them; SNAT, chosen gateway addresses,
	// HA and DVR are the admin's.
	r.Add(policy.AdminOrMember, "create_router", "update_router", "delete_router",
		"create_router:external_gateway_info", "update_router:external_gateway_info",
		"create_router:external_gateway_info:network_id", "update_router:external_gateway_info:network_id",
		"add_router_interface", "remove_router_interface", "add_extraroutes", "remove_extraroutes")
	r.Add(policy.AdminOrReader, "get_router")
	r.Add(policy.Admin, "create_router:external_gateway_info:enable_snat", "update_router:external_gateway_info:enable_snat",
		"create_router:external_gateway_info:external_fixed_ips", "update_router:external_gateway_info:external_fixed_ips",
		"create_router:distributed", "update_router:distributed", "get_router:distributed",
		"create_router:ha", "update_router:ha", "get_router:ha")
	// The scheduler is the admin's.
	r.Add(policy.Admin, "get_l3-routers", "get_l3-agents", "create_l3-router", "delete_l3-router")
	// Floating IPs: choosing the address is the admin's. Port forwardings
	// are their floating IP's owner's ("ext_parent").
	r.Add(policy.AdminOrMember, "create_floatingip", "update_floatingip", "delete_floatingip")
	r.Add(policy.AdminOrReader, "get_floatingip")
	r.Add(policy.Admin, "create_floatingip:floating_ip_address")
	r.Add("role:member and project_id:%(ext_parent:project_id)s", "ext_parent_owner_member")
	r.Add("(role:reader or role:member) and project_id:%(ext_parent:project_id)s", "ext_parent_owner_reader")
	r.Add(policy.Admin+" or rule:ext_parent_owner_member", "create_floatingip_port_forwarding",
		"update_floatingip_port_forwarding", "delete_floatingip_port_forwarding")
	r.Add(policy.Admin+" or rule:ext_parent_owner_reader", "get_floatingip_port_forwarding")
	// Conntrack helpers are their router's owner's.
	r.Add(policy.Admin+" or rule:ext_parent_owner_member", "create_router_conntrack_helper",
		"update_router_conntrack_helper", "delete_router_conntrack_helper")
	r.Add(policy.Admin+" or rule:ext_parent_owner_reader", "get_router_conntrack_helper")
	return r
}

func build(ctx context.Context, env feature.Env) (feature.Parts, error) {
	cfg := env.Config.(*Config)
	if cfg.MaxRoutes < 0 {
		return feature.Parts{}, fmt.Errorf("l3: max_routes %d is negative", cfg.MaxRoutes)
	}
	ag, ok := env.Feature("agents").(*agents.Plugin)
	if !ok {
		return feature.Parts{}, errors.New("l3: the agents feature is not built")
	}
	p := New(env.Core)
	p.maxRoutes = cfg.MaxRoutes
	p.agents, p.cfg, p.log = ag, *cfg, env.Log
	routers := Routers{Plugin: p}
	fips, rtrs := FloatingIPResource(), RouterResource()
	return feature.Parts{
		Services: []*feature.Service{
			{Res: rtrs, Backend: routers, Actions: map[string]feature.Action{
				"add_router_interface": routers.AddInterface, "remove_router_interface": routers.RemoveInterface,
				"add_extraroutes": routers.AddExtraRoutes, "remove_extraroutes": routers.RemoveExtraRoutes,
			}},
			{Res: fips, Backend: FloatingIPs{Plugin: p}},
			{Res: PortForwardingResource(), Sub: PortForwardings{Plugin: p}, Parent: fips, NoBulk: true},
			{Res: ConntrackHelperResource(), Sub: ConntrackHelpers{Plugin: p}, Parent: rtrs, NoBulk: true},
		},
		Routes:   p.schedulerRoutes(),
		Sections: []feature.Section{Section{Plugin: p}},
		Run: func(ctx context.Context) {
			// As the DHCP scheduler: half of agent_down_time, between 1
			// and 30 s.
			p.run(ctx, min(max(ag.DownTime()/2, time.Second), 30*time.Second))
		},
		Plugin: p,
	}, nil
}

// schedulerRoutes serve the l3_agent_scheduler extension.
func (p *Plugin) schedulerRoutes() []feature.Route {
	return []feature.Route{
		{Pattern: "GET /v2.0/routers/{id}/l3-agents", Policy: "get_l3-agents", Do: feature.ListBy("agents", p.AgentsOfRouter)},
		{Pattern: "GET /v2.0/agents/{id}/l3-routers", Policy: "get_l3-routers", Do: feature.ListBy("routers", p.RoutersOfAgent)},
		{Pattern: "POST /v2.0/agents/{id}/l3-routers", Policy: "create_l3-router", Do: feature.AddBy("router_id", p.AddRouter)},
		{Pattern: "DELETE /v2.0/agents/{id}/l3-routers/{what}", Policy: "delete_l3-router", Do: feature.RemoveBy(p.RemoveRouter)},
	}
}
