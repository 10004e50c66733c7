package metering

import (
	"context"

	"muon/internal/feature"
	"muon/internal/policy"
)

// policyDefaults: labels and their rules are the admin's alone.
func policyDefaults() policy.Rules {
	r := policy.Rules{}
	r.Add(policy.Admin, "create_metering_label", "get_metering_label", "delete_metering_label",
		"create_metering_label_rule", "get_metering_label_rule", "delete_metering_label_rule")
	return r
}

func init() {
	feature.Register(feature.Feature{
		Name: "metering",
		Extensions: []feature.Extension{
			feature.Ext("metering", "Neutron Metering", "Neutron Metering extension.", "2013-06-12T10:00:00-00:00"),
			feature.Ext("metering_source_and_destination_fields", "Neutron Metering with source and destination filtering", "Neutron Metering extension that enables the use of source and destination IP prefixes to create metering label rules.", "2020-08-21T08:12:00-00:00"),
		},
		Policy: policyDefaults(),
		Build: func(ctx context.Context, env feature.Env) (feature.Parts, error) {
			m := New(env.Store)
			return feature.Parts{Services: []*feature.Service{
				{Res: LabelResource(), Backend: Labels{Plugin: m}, PathPrefix: "metering/", NoUpdate: true},
				{Res: RuleResource(), Backend: Rules{Plugin: m}, PathPrefix: "metering/", NoUpdate: true},
			}}, nil
		},
	})
}
