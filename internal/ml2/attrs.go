package ml2

import (
	"slices"
	"strings"

	"muon/internal/fault"
	"muon/internal/ipam"
	"muon/internal/resource"
)

// The attribute maps of the core resources, after neutron-lib's API
// definitions with the extensions Muon loads.

func validIP(attr string) func(any) error {
	return func(v any) error {
		_, err := ipam.ParseIP(v.(string))
		return ipam.ForAttr(attr, err)
	}
}

func oneOf(attr string, vals ...string) func(any) error {
	return func(v any) error {
		if !slices.Contains(vals, v.(string)) {
			return fault.BadRequest("Invalid input for %s. Reason: '%s' is not in %v.", attr, v, vals)
		}
		return nil
	}
}

func ipVersion(v any) error {
	if n := v.(int64); n != 4 && n != 6 {
		return fault.BadRequest("Invalid input for ip_version. Reason: '%d' is not in [4, 6].", n)
	}
	return nil
}

func nonNegative(attr string) func(any) error {
	return func(v any) error {
		if v.(int64) < 0 {
			return fault.BadRequest("Invalid input for %s. Reason: '%d' should be non-negative.", attr, v)
		}
		return nil
	}
}

// notEmptyString is neutron-lib's type:not_empty_string validator.
func notEmptyString(attr string) func(any) error {
	return func(v any) error {
		if s, _ := v.(string); strings.TrimSpace(s) == "" {
			return fault.BadRequest("Invalid input for %s. Reason: '%s' Blank strings are not permitted.", attr, s)
		}
		return nil
	}
}

func with(std []resource.Attr, more ...resource.Attr) []resource.Attr {
	return append(std, more...)
}

var vnicTypes = []string{"normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic", "vdpa", "remote-managed"}

// NetworkResource is the network attribute map.
func NetworkResource() *resource.Resource {
	return &resource.Resource{Name: "network", Collection: "networks", Tags: true, Attrs: with(resource.Standard(true, true),
		resource.Attr{Name: "admin_state_up", Type: resource.Bool, Post: true, Put: true, Default: true, HasDefault: true},
		resource.Attr{Name: "status", Type: resource.String(16)},
		resource.Attr{Name: "subnets", Type: resource.StringList, NoSort: true},
		resource.Attr{Name: "shared", Type: resource.Bool, Post: true, Put: true, Default: false, HasDefault: true},
		resource.Attr{Name: "router:external", Type: resource.Bool, Post: true, Put: true, Default: false, HasDefault: true},
		resource.Attr{Name: "is_default", Type: resource.Bool, Post: true, Put: true, Default: false, HasDefault: true},
		resource.Attr{Name: "mtu", Type: resource.Int, Post: true, Put: true, Validate: nonNegative("mtu")},
		resource.Attr{Name: "port_security_enabled", Type: resource.Bool, Post: true, Put: true, Default: true, HasDefault: true},
		resource.Attr{Name: "availability_zone_hints", Type: resource.StringList, Post: true, Default: []any{}, HasDefault: true, NoSort: true},
		resource.Attr{Name: "availability_zones", Type: resource.StringList, NoSort: true},
		resource.Attr{Name: "ipv4_address_scope", Type: resource.String(0)},
		resource.Attr{Name: "ipv6_address_scope", Type: resource.String(0)},
		resource.Attr{Name: "l2_adjacency", Type: resource.Bool},
		resource.Attr{Name: "dns_domain", Type: resource.String(255), Post: true, Put: true, Default: "", HasDefault: true, Validate: dnsDomain},
		resource.Attr{Name: "provider:network_type", Type: resource.String(255), Post: true, AdminOnly: true},
		resource.Attr{Name: "provider:physical_network", Type: resource.String(64), Post: true, AdminOnly: true},
		resource.Attr{Name: "provider:segmentation_id", Type: resource.Int, Post: true, AdminOnly: true},
		resource.Attr{Name: "segments", Type: resource.ListOf(resource.Dict), Post: true, AdminOnly: true, NoFilter: true, NoSort: true},
	)}
}

// SubnetResource is the subnet attribute map.
func SubnetResource() *resource.Resource {
	return &resource.Resource{Name: "subnet", Collection: "subnets", Tags: true, Attrs: with(resource.Standard(true, true),
		resource.Attr{Name: "network_id", Type: resource.UUID, Post: true, Required: true},
		resource.Attr{Name: "ip_version", Type: resource.Int, Post: true, Required: true, Validate: ipVersion},
		resource.Attr{Name: "cidr", Type: resource.String(0), Post: true, Nullable: true, Validate: func(v any) error {
			_, err := ipam.ParseCIDR(v.(string))
			return ipam.ForAttr("cidr", err)
		}},
		resource.Attr{Name: "prefixlen", Type: resource.Int, Post: true, Hidden: true},
		resource.Attr{Name: "subnetpool_id", Type: resource.UUID, Post: true, Nullable: true},
		resource.Attr{Name: "use_default_subnetpool", Type: resource.Bool, Post: true, Hidden: true},
		resource.Attr{Name: "gateway_ip", Type: resource.String(64), Post: true, Put: true, Nullable: true, Validate: validIP("gateway_ip")},
		resource.Attr{Name: "allocation_pools", Type: resource.ListOf(resource.Dict), Post: true, Put: true, NoFilter: true, NoSort: true},
		resource.Attr{Name: "dns_nameservers", Type: resource.StringList, Post: true, Put: true, NullIsEmpty: true, Default: []any{}, HasDefault: true, NoSort: true},
		resource.Attr{Name: "host_routes", Type: resource.ListOf(resource.Dict), Post: true, Put: true, NullIsEmpty: true, Default: []any{}, HasDefault: true, NoFilter: true, NoSort: true},
		resource.Attr{Name: "enable_dhcp", Type: resource.Bool, Post: true, Put: true, Default: true, HasDefault: true},
		resource.Attr{Name: "ipv6_ra_mode", Type: resource.String(0), Post: true, Nullable: true, Default: nil, HasDefault: true,
			Validate: oneOf("ipv6_ra_mode", "slaac", "dhcpv6-stateful", "dhcpv6-stateless")},
		resource.Attr{Name: "ipv6_address_mode", Type: resource.String(0), Post: true, Nullable: true, Default: nil, HasDefault: true,
			Validate: oneOf("ipv6_address_mode", "slaac", "dhcpv6-stateful", "dhcpv6-stateless")},
		resource.Attr{Name: "service_types", Type: resource.StringList, Post: true, Put: true, Default: []any{}, HasDefault: true, NoSort: true},
		resource.Attr{Name: "segment_id", Type: resource.UUID, Post: true, Put: true, Nullable: true, Default: nil, HasDefault: true},
		resource.Attr{Name: "dns_publish_fixed_ip", Type: resource.Bool, Post: true, Put: true, Default: false, HasDefault: true},
	)}
}

// PortResource is the port attribute map.
func PortResource() *resource.Resource {
	r := &resource.Resource{Name: "port", Collection: "ports", Tags: true, Attrs: with(resource.Standard(true, true),
		resource.Attr{Name: "network_id", Type: resource.UUID, Post: true, Required: true},
		resource.Attr{Name: "admin_state_up", Type: resource.Bool, Post: true, Put: true, Default: true, HasDefault: true},
		resource.Attr{Name: "mac_address", Type: resource.String(0), Post: true, Put: true, Validate: func(v any) error {
			_, err := ipam.ParseMAC(v.(string))
			return ipam.ForAttr("mac_address", err)
		}},
		resource.Attr{Name: "fixed_ips", Type: resource.ListOf(resource.Dict), Post: true, Put: true, NoSort: true, Match: matchFixedIPs},
		resource.Attr{Name: "device_id", Type: resource.String(255), Post: true, Put: true, Default: "", HasDefault: true},
		resource.Attr{Name: "device_owner", Type: resource.String(255), Post: true, Put: true, Default: "", HasDefault: true},
		resource.Attr{Name: "status", Type: resource.String(16)},
		resource.Attr{Name: "allowed_address_pairs", Type: resource.ListOf(resource.Dict), Post: true, Put: true, NullIsEmpty: true, NoFilter: true, NoSort: true},
		resource.Attr{Name: "extra_dhcp_opts", Type: resource.ListOf(resource.Dict), Post: true, Put: true, Default: []any{}, HasDefault: true, NoFilter: true, NoSort: true},
		resource.Attr{Name: "port_security_enabled", Type: resource.Bool, Post: true, Put: true},
		resource.Attr{Name: "security_groups", Type: resource.ListOf(resource.UUID), Post: true, Put: true, Nullable: true, NoSort: true},
		resource.Attr{Name: "dns_name", Type: resource.String(255), Post: true, Put: true, Default: "", HasDefault: true},
		resource.Attr{Name: "dns_assignment", Type: resource.ListOf(resource.Dict), NoFilter: true, NoSort: true},
		resource.Attr{Name: "dns_domain", Type: resource.String(255), Post: true, Put: true, Default: "", HasDefault: true, Validate: dnsDomain},
		resource.Attr{Name: "ip_allocation", Type: resource.String(0)},
		resource.Attr{Name: "propagate_uplink_status", Type: resource.Bool, Post: true, Put: true, Default: false, HasDefault: true},
		resource.Attr{Name: "binding:host_id", Type: resource.String(255), Post: true, Put: true, AdminOnly: true, Default: "", HasDefault: true},
		resource.Attr{Name: "binding:vnic_type", Type: resource.String(64), Post: true, Put: true, Default: "normal", HasDefault: true,
			Validate: oneOf("binding:vnic_type", vnicTypes...)},
		resource.Attr{Name: "binding:profile", Type: resource.Dict, Post: true, Put: true, AdminOnly: true, Nullable: true, NoFilter: true, NoSort: true},
		resource.Attr{Name: "binding:vif_type", Type: resource.String(0), AdminOnly: true},
		resource.Attr{Name: "binding:vif_details", Type: resource.Dict, AdminOnly: true, NoFilter: true, NoSort: true},
		resource.Attr{Name: provisioningBlocks, Type: resource.StringList, Hidden: true},
		resource.Attr{Name: provisioningWired, Type: resource.Bool, Hidden: true},
	)}
	// Ports take tags on create (tag-ports-during-bulk-creation).
	r.Attr("tags").Post = true
	r.Attr("tags").Validate = validTags
	r.ExtraFilters = map[string]func(resource.Doc, []string) bool{
		"ip_address_substr": func(d resource.Doc, want []string) bool { return fixedIPsHave(d, "ip_address", want, true) },
	}
	return r
}

// matchFixedIPs answers ?fixed_ips=ip_address=X and ?fixed_ips=subnet_id=Y:
// values of one key are any-of, different keys must all match, as
// Neutron's IN (...) per key.
func matchFixedIPs(v any, want []string) bool {
	d := resource.Doc{"fixed_ips": v}
	byKey := map[string][]string{}
	for _, w := range want {
		key, val, ok := cutEq(w)
		if !ok {
			return false
		}
		byKey[key] = append(byKey[key], val)
	}
	for key, vals := range byKey {
		if key == "ip_address_substr" {
			if !fixedIPsHave(d, "ip_address", vals, true) {
				return false
			}
			continue
		}
		if !fixedIPsHave(d, key, vals, false) {
			return false
		}
	}
	return true
}

// validTags checks tags given on create: at most 255 characters each,
// no commas, no duplicates.
func validTags(v any) error {
	seen := map[string]bool{}
	for _, t := range v.([]any) {
		s, _ := t.(string)
		if s == "" || len(s) > 255 || strings.Contains(s, ",") {
			return fault.BadRequest("Invalid input for tags. Reason: '%s' is not a valid tag.", s)
		}
		if seen[s] {
			return fault.BadRequest("Invalid input for tags. Reason: Duplicate items in the list: '%s'.", s)
		}
		seen[s] = true
	}
	return nil
}

func cutEq(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

func fixedIPsHave(d resource.Doc, key string, want []string, substr bool) bool {
	l, _ := d["fixed_ips"].([]any)
	for _, x := range l {
		m, _ := x.(map[string]any)
		have := resource.Str(m[key])
		for _, w := range want {
			if have == w || substr && w != "" && contains(have, w) {
				return true
			}
		}
	}
	return false
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// SegmentResource is the segment attribute map (standard attributes
// without tags or a project).
func SegmentResource() *resource.Resource {
	return &resource.Resource{Name: "segment", Collection: "segments", Attrs: []resource.Attr{
		{Name: "id", Type: resource.UUID},
		{Name: "name", Type: resource.String(255), Post: true, Put: true, Nullable: true, Default: nil, HasDefault: true},
		{Name: "description", Type: resource.String(255), Post: true, Put: true, Nullable: true, Default: nil, HasDefault: true},
		{Name: "created_at", Type: resource.String(0)},
		{Name: "updated_at", Type: resource.String(0)},
		{Name: "revision_number", Type: resource.Int},
		{Name: "network_id", Type: resource.UUID, Post: true, Required: true},
		{Name: "network_type", Type: resource.String(32), Post: true, Required: true},
		{Name: "physical_network", Type: resource.String(64), Post: true, Nullable: true, Default: nil, HasDefault: true},
		{Name: "segmentation_id", Type: resource.Int, Post: true, Nullable: true, Default: nil, HasDefault: true, NoFilter: true},
		{Name: "segment_index", Type: resource.Int, Hidden: true},
	}}
}

// SubnetPoolResource is the subnetpool attribute map.
func SubnetPoolResource() *resource.Resource {
	return &resource.Resource{Name: "subnetpool", Collection: "subnetpools", Tags: true, Attrs: with(resource.Standard(false, true),
		// Unlike most resources, a pool's name is required and not blank.
		resource.Attr{Name: "name", Type: resource.String(255), Post: true, Put: true, Required: true, Validate: notEmptyString("name")},
		resource.Attr{Name: "prefixes", Type: resource.StringList, Post: true, Put: true, Required: true, NoSort: true},
		resource.Attr{Name: "default_prefixlen", Type: resource.Int, Post: true, Put: true, Validate: nonNegative("default_prefixlen")},
		resource.Attr{Name: "min_prefixlen", Type: resource.Int, Post: true, Put: true, Validate: nonNegative("min_prefixlen")},
		resource.Attr{Name: "max_prefixlen", Type: resource.Int, Post: true, Put: true, Validate: nonNegative("max_prefixlen")},
		resource.Attr{Name: "default_quota", Type: resource.Int, Post: true, Put: true, Nullable: true, Default: nil, HasDefault: true, Validate: nonNegative("default_quota")},
		resource.Attr{Name: "ip_version", Type: resource.Int},
		resource.Attr{Name: "shared", Type: resource.Bool, Post: true, Default: false, HasDefault: true},
		resource.Attr{Name: "is_default", Type: resource.Bool, Post: true, Put: true, Default: false, HasDefault: true},
		resource.Attr{Name: "address_scope_id", Type: resource.UUID, Post: true, Put: true, Nullable: true, Default: nil, HasDefault: true},
	)}
}

// AddressScopeResource is the address-scope attribute map (no standard
// attributes in Neutron: no description, timestamps, revision or tags).
func AddressScopeResource() *resource.Resource {
	return &resource.Resource{Name: "address_scope", Collection: "address-scopes", Attrs: []resource.Attr{
		{Name: "id", Type: resource.UUID},
		{Name: "name", Type: resource.String(255), Post: true, Put: true, Default: "", HasDefault: true},
		{Name: "project_id", Type: resource.String(255), Post: true},
		{Name: "tenant_id", Type: resource.String(255), Post: true},
		{Name: "ip_version", Type: resource.Int, Post: true, Required: true, Validate: ipVersion},
		{Name: "shared", Type: resource.Bool, Post: true, Put: true, Default: false, HasDefault: true},
	}}
}

// IPAvailabilityResource is the network-ip-availability attribute map.
func IPAvailabilityResource() *resource.Resource {
	return &resource.Resource{Name: "network_ip_availability", Collection: "network-ip-availabilities",
		ExtraFilters: map[string]func(resource.Doc, []string) bool{"ip_version": availMatchVersion}, Attrs: []resource.Attr{
			{Name: "network_id", Type: resource.UUID},
			{Name: "network_name", Type: resource.String(255)},
			{Name: "project_id", Type: resource.String(255)},
			{Name: "tenant_id", Type: resource.String(255)},
			{Name: "ip_version", Type: resource.Int, Hidden: true},
			{Name: "total_ips", Type: resource.Int},
			{Name: "used_ips", Type: resource.Int},
			{Name: "subnet_ip_availability", Type: resource.ListOf(resource.Dict), NoFilter: true, NoSort: true},
		}}
}

// dnsDomain validates a dns_domain as Neutron does (a PQDN or FQDN).
func dnsDomain(v any) error {
	s, _ := v.(string)
	if err := ipam.CheckDNSDomain(s, 255); err != nil {
		return fault.BadRequest("Invalid input for dns_domain. Reason: %s.", err)
	}
	return nil
}
