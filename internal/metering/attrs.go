package metering

import (
	"net/netip"
	"strings"

	"muon/internal/fault"
	"muon/internal/resource"
)

// The attribute maps of metering labels and their rules, after
// neutron-lib's metering and metering_source_and_destination_fields. None
// of their attributes can be updated.

// LabelResource is the metering-label attribute map.
func LabelResource() *resource.Resource {
	return &resource.Resource{Name: "metering_label", Collection: "metering-labels", Attrs: []resource.Attr{
		{Name: "id", Type: resource.UUID},
		{Name: "project_id", Type: resource.String(255), Post: true, Validate: projectID},
		{Name: "tenant_id", Type: resource.String(255), Post: true, Validate: projectID},
		{Name: "name", Type: resource.String(255), Post: true, Default: "", HasDefault: true},
		{Name: "description", Type: resource.String(1024), Post: true, Default: "", HasDefault: true},
		{Name: "shared", Type: resource.Bool, Post: true, Default: false, HasDefault: true},
	}}
}

// RuleResource is the metering-label-rule attribute map.
func RuleResource() *resource.Resource {
	prefix := func(name string) resource.Attr {
		return resource.Attr{Name: name, Type: resource.String(0), Post: true, Nullable: true,
			Default: nil, HasDefault: true, Validate: subnet(name)}
	}
	return &resource.Resource{Name: "metering_label_rule", Collection: "metering-label-rules", Attrs: []resource.Attr{
		{Name: "id", Type: resource.UUID},
		{Name: "project_id", Type: resource.String(255), Post: true, Validate: projectID},
		{Name: "tenant_id", Type: resource.String(255), Post: true, Validate: projectID},
		{Name: "metering_label_id", Type: resource.UUID, Post: true, Required: true},
		{Name: "direction", Type: resource.String(0), Post: true, Required: true, Validate: direction},
		{Name: "excluded", Type: resource.Bool, Post: true, Default: false, HasDefault: true},
		prefix("remote_ip_prefix"),
		prefix("source_ip_prefix"),
		prefix("destination_ip_prefix"),
	}}
}

func projectID(v any) error {
	if s, _ := v.(string); s == "" {
		return fault.InvalidInput("'%s' is not a valid project_id", s)
	}
	return nil
}

func direction(v any) error {
	if s, _ := v.(string); s != "ingress" && s != "egress" {
		return fault.BadRequest("Invalid input for direction. Reason: '%s' is not in ['ingress', 'egress'].", s)
	}
	return nil
}

// subnet is neutron's type:subnet_or_none: a CIDR with its length (host
// bits are allowed and kept).
func subnet(name string) func(v any) error {
	return func(v any) error {
		s, ok := v.(string)
		if v == nil || ok && s == "" {
			return nil
		}
		if _, err := parsePrefix(s); err != nil {
			return fault.BadRequest("Invalid input for %s. Reason: '%s' is not a valid IP subnet.", name, s)
		}
		return nil
	}
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.ContainsAny(s, " \t\n%") || !strings.Contains(s, "/") {
		return netip.Prefix{}, fault.BadRequest("bad prefix")
	}
	return netip.ParsePrefix(s)
}
