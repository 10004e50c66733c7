package secgroup

import (
	"context"

	"muon/internal/feature"
	"muon/internal/policy"
	"muon/internal/quota"
)

func init() {
	feature.Register(feature.Feature{
		Name: "secgroup",
		Extensions: []feature.Extension{
			feature.Ext("security-group", "security-group", "The security groups extension.", "2012-10-05T10:00:00-00:00"),
			feature.Ext("stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not", "2019-11-26T09:00:00-00:00"),
			feature.Ext("address-group", "Address group", "Support address group", "2020-07-15T10:00:00-00:00"),
			feature.Ext("security-groups-remote-address-group", "Remote address group id field for security group rules", "Add new field of remote address group id in SG rules", "2020-08-25T10:00:00-00:00"),
			feature.Ext("security-groups-normalized-cidr", "Normalized CIDR field for security group rules", "Add new field with normalized remote_ip_prefix cidr in SG rule", "2020-07-28T10:00:00-00:00"),
		},
		Policy: policyDefaults(),
		Quotas: []quota.Resource{{Name: "security_group", Kind: kindGroup, Default: 10}, {Name: "security_group_rule", Kind: kindRule, Default: 100}},
		Build:  build,
	})
}

// policyDefaults: a rule is its group owner's to make and delete;
// address groups are their project's.
func policyDefaults() policy.Rules {
	r := policy.Rules{}
	r.Add("field:security_groups:shared=True", "shared_security_group")
	r.Add(policy.Admin+" or project_id:%(security_group:project_id)s", "admin_or_sg_owner")
	r.Add("rule:owner or rule:admin_or_sg_owner", "admin_owner_or_sg_owner")
	r.Add("role:member and project_id:%(security_group:project_id)s", "sg_owner_member")
	r.Add("(role:reader or role:member) and project_id:%(security_group:project_id)s", "sg_owner_reader")
	r.Add(policy.AdminOrMember, "create_security_group", "update_security_group", "delete_security_group",
		"create_security_group:tags", "update_security_group:tags", "delete_security_group:tags")
	r.Add(policy.AdminOrReader+" or rule:shared_security_group", "get_security_group", "get_security_group:tags")
	r.Add(policy.Admin+" or rule:sg_owner_member", "create_security_group_rule", "delete_security_group_rule")
	r.Add(policy.AdminOrReader+" or rule:sg_owner_reader", "get_security_group_rule")
	r.Add(policy.AdminOrMember, "create_address_group", "update_address_group", "delete_address_group",
		"add_addresses", "remove_addresses")
	r.Add(policy.AdminOrReader, "get_address_group")
	return r
}

// build makes the plugin and gives the core's ports their groups.
func build(ctx context.Context, env feature.Env) (feature.Parts, error) {
	sg := New(env.Store)
	sg.UseQuotas(env.Quotas)
	Ports{Plugin: sg}.subscribe(env.Core.Events())
	ag := AddressGroups{Plugin: sg}
	return feature.Parts{Services: []*feature.Service{
		{Res: SecurityGroupResource(), Backend: Groups{Plugin: sg}},
		{Res: RuleResource(), Backend: Rules{Plugin: sg}},
		{Res: AddressGroupResource(), Backend: ag, Actions: map[string]feature.Action{
			"add_addresses": ag.AddAddresses, "remove_addresses": ag.RemoveAddresses,
		}},
	}}, nil
}
