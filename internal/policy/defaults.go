package policy

// Building blocks of the defaults. The persona rules follow Neutron's
// "secure RBAC" intent: reader (or member) of the owning project may
// read, member may write, admin may do anything anywhere. Neutron's older
// names (owner, admin_or_owner, network_owner, ...) are kept with their
// old meaning so that operators' policy files that use them still work.
const (
	admin          = Admin
	advsvc         = "rule:context_is_advsvc"
	anyone         = "rule:regular_user"
	adminOrMember  = AdminOrMember
	adminOrReader  = AdminOrReader
	netOwnerMember = "rule:admin_or_network_owner_member"
)

// The personas features write their default rules with.
const (
	Admin         = "rule:context_is_admin"
	AdminOrMember = "rule:admin_or_project_member"
	AdminOrReader = "rule:admin_or_project_reader"
)

// Rules collects default rules (rule name -> rule text).
type Rules map[string]string

// Add gives each name the rule; a name added twice panics.
func (r Rules) Add(rule string, names ...string) {
	for _, n := range names {
		if _, dup := r[n]; dup {
			panic("policy: default rule defined twice: " + n)
		}
		r[n] = rule
	}
}

// Defaults returns the core's built-in rules (rule name -> rule text), a fresh
// map on each call. They express Neutron's Zed defaults read with the new
// personas: admin may do anything; project readers read, project members
// write; network owners manage addresses on their networks and see and
// delete other projects' ports on them; shared and external networks are
// visible to all; provider, segment and binding details are admin-only.
func Defaults() map[string]string {
	defaults := Rules{}
	add := defaults.Add

	// Who the caller is.
	add("role:admin", "context_is_admin")
	add("role:advsvc", "context_is_advsvc")
	add("", "regular_user")
	add(admin, "admin_only")
	add("role:member and project_id:%(project_id)s", "project_member")
	add("(role:reader or role:member) and project_id:%(project_id)s", "project_reader")
	add("role:member and project_id:%(network:project_id)s", "network_owner_member")
	add("(role:reader or role:member) and project_id:%(network:project_id)s", "network_owner_reader")
	add(admin+" or rule:project_member", "admin_or_project_member")
	add(admin+" or rule:project_reader", "admin_or_project_reader")
	add(admin+" or rule:network_owner_member", "admin_or_network_owner_member")
	add(adminOrMember, "default")

	// Neutron's classic names, by ownership alone.
	add("tenant_id:%(tenant_id)s", "owner")
	add(admin+" or rule:owner", "admin_or_owner")
	add("tenant_id:%(network:tenant_id)s", "network_owner")
	add(admin+" or rule:network_owner", "admin_or_network_owner")
	add("rule:owner or rule:admin_or_network_owner", "admin_owner_or_network_owner")

	// What the target is.
	add("field:networks:shared=True", "shared")
	add("field:networks:router:external=True", "external")
	add("field:subnetpools:shared=True", "shared_subnetpools")
	add("field:address_scopes:shared=True", "shared_address_scopes")
	add("field:port:device_owner=~^network:", "network_device")
	add("(not field:rbac_policy:target_tenant=* and not field:rbac_policy:target_project=*) or "+admin,
		"restrict_wildcard")

	// Networks: anyone sees shared and external ones; only admins place
	// them on the physical network or share them.
	add(adminOrMember, "create_network", "update_network", "delete_network",
		"create_network:port_security_enabled", "update_network:port_security_enabled")
	add(adminOrReader+" or rule:shared or rule:external or "+advsvc, "get_network")
	add(anyone, "get_network:router:external")
	for _, a := range []string{"shared", "router:external", "is_default", "segments",
		"provider:network_type", "provider:physical_network", "provider:segmentation_id"} {
		add(admin, "create_network:"+a, "update_network:"+a)
	}
	add(admin, "get_network:segments", "get_network:provider:network_type",
		"get_network:provider:physical_network", "get_network:provider:segmentation_id")

	// Subnets live in the network owner's network; "shared" in a subnet's
	// target is its network's.
	add(netOwnerMember, "create_subnet", "update_subnet", "delete_subnet")
	add(adminOrReader+" or rule:network_owner_reader or rule:shared", "get_subnet")
	add(admin, "create_subnet:segment_id", "update_subnet:segment_id", "get_subnet:segment_id",
		"create_subnet:service_types", "update_subnet:service_types")

	// Subnet pools and address scopes.
	add(adminOrMember, "create_subnetpool", "update_subnetpool", "delete_subnetpool",
		"onboard_network_subnets", "add_prefixes", "remove_prefixes")
	add(adminOrReader+" or rule:shared_subnetpools", "get_subnetpool")
	add(admin, "create_subnetpool:shared", "create_subnetpool:is_default", "update_subnetpool:is_default")
	add(adminOrMember, "create_address_scope", "update_address_scope", "delete_address_scope")
	add(adminOrReader+" or rule:shared_address_scopes", "get_address_scope")
	add(admin, "create_address_scope:shared", "update_address_scope:shared")

	// Ports: the port's project and the network's owner both have a say;
	// addresses and bindings are the network owner's or the admin's.
	add(adminOrMember+" or "+advsvc, "create_port", "update_port")
	add(adminOrReader+" or rule:network_owner_reader or "+advsvc, "get_port")
	add(adminOrMember+" or rule:network_owner_member or "+advsvc, "delete_port")
	for _, verb := range []string{"create_port:", "update_port:"} {
		add("not rule:network_device or "+netOwnerMember+" or "+advsvc, verb+"device_owner")
		add(netOwnerMember+" or "+advsvc, verb+"fixed_ips:ip_address",
			verb+"port_security_enabled", verb+"mac_learning_enabled")
		add(netOwnerMember+" or "+advsvc+" or rule:shared", verb+"fixed_ips", verb+"fixed_ips:subnet_id")
		add(netOwnerMember, verb+"allowed_address_pairs",
			verb+"allowed_address_pairs:mac_address", verb+"allowed_address_pairs:ip_address")
		add(admin, verb+"binding:host_id", verb+"binding:profile")
	}
	add(netOwnerMember+" or "+advsvc, "create_port:mac_address")
	add(admin+" or "+advsvc, "update_port:mac_address")
	add(adminOrMember+" or "+advsvc, "create_port:binding:vnic_type", "update_port:binding:vnic_type")
	add(admin+" or role:data_plane_integrator", "update_port:data_plane_status")
	add(admin, "get_port:binding:vif_type", "get_port:binding:vif_details",
		"get_port:binding:host_id", "get_port:binding:profile", "get_port:resource_request")

	// Admin-only resources.
	add(admin, "create_segment", "get_segment", "update_segment", "delete_segment",
		"get_network_ip_availability")

	// RBAC policies: members share their own objects, but only admins
	// share with everyone ("*").
	add(adminOrMember, "create_rbac_policy", "update_rbac_policy", "delete_rbac_policy")
	add(adminOrReader, "get_rbac_policy")
	add(admin+" or rule:restrict_wildcard", "create_rbac_policy:target_tenant",
		"update_rbac_policy:target_tenant", "create_rbac_policy:target_project",
		"update_rbac_policy:target_project")

	// The agent channel: hosts' desired state and their status reports.
	add(admin, "get_host_state", "update_host_status", "get_changes")

	// Quotas: the target's project_id is the project the quota is for.
	add(adminOrReader, "get_quota")
	add(admin, "update_quota", "delete_quota")
	return defaults
}
