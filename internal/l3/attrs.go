package l3

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"muon/internal/fault"
	"muon/internal/ipam"
	"muon/internal/resource"
)

// The attribute maps of routers, floating IPs and port forwardings, after
// neutron-lib's l3, l3_ext_gw_mode, extraroute, l3-ha, dvr,
// router_availability_zone, l3-flavors, dns and
// floating_ip_port_forwarding definitions.

func with(std []resource.Attr, more ...resource.Attr) []resource.Attr { return append(std, more...) }

// RouterResource is the router attribute map.
func RouterResource() *resource.Resource {
	return &resource.Resource{Name: "router", Collection: "routers", Tags: true, Attrs: with(resource.Standard(true, true),
		resource.Attr{Name: "admin_state_up", Type: resource.Bool, Post: true, Put: true, Default: true, HasDefault: true},
		resource.Attr{Name: "status", Type: resource.String(16)},
		resource.Attr{Name: "external_gateway_info", Type: resource.Dict, Post: true, Put: true, Nullable: true,
			Default: nil, HasDefault: true, NoFilter: true, NoSort: true, Validate: validGatewayInfo},
		resource.Attr{Name: "routes", Type: resource.ListOf(resource.Dict), Put: true, NullIsEmpty: true, NoFilter: true, NoSort: true},
		resource.Attr{Name: "ha", Type: resource.Bool, Post: true, Put: true, AdminOnly: true},
		resource.Attr{Name: "distributed", Type: resource.Bool, Post: true, Put: true, AdminOnly: true},
		resource.Attr{Name: "availability_zone_hints", Type: resource.StringList, Post: true, Default: []any{}, HasDefault: true, NoSort: true},
		resource.Attr{Name: "availability_zones", Type: resource.StringList, NoSort: true},
		resource.Attr{Name: "flavor_id", Type: resource.UUID, Post: true, Nullable: true},
		// The router's ports, kept in its document and never shown.
		resource.Attr{Name: "interfaces", Type: resource.StringList, Hidden: true, NoFilter: true, NoSort: true},
		resource.Attr{Name: "gw_port_id", Type: resource.String(0), Hidden: true, NoFilter: true, NoSort: true},
	)}
}

// FloatingIPResource is the floating IP attribute map.
func FloatingIPResource() *resource.Resource {
	return &resource.Resource{Name: "floatingip", Collection: "floatingips", Tags: true, Attrs: with(resource.Standard(false, true),
		resource.Attr{Name: "floating_ip_address", Type: resource.String(64), Post: true, Validate: validIPv4("floating_ip_address")},
		resource.Attr{Name: "subnet_id", Type: resource.UUID, Post: true, Nullable: true, Hidden: true},
		resource.Attr{Name: "floating_network_id", Type: resource.UUID, Post: true, Required: true},
		resource.Attr{Name: "router_id", Type: resource.UUID},
		resource.Attr{Name: "port_id", Type: resource.UUID, Post: true, Put: true, Nullable: true, Default: nil, HasDefault: true},
		resource.Attr{Name: "fixed_ip_address", Type: resource.String(64), Post: true, Put: true, Nullable: true,
			Default: nil, HasDefault: true, Validate: validIP("fixed_ip_address")},
		resource.Attr{Name: "status", Type: resource.String(16)},
		resource.Attr{Name: "dns_name", Type: resource.String(255), Post: true, Default: "", HasDefault: true},
		resource.Attr{Name: "dns_domain", Type: resource.String(255), Post: true, Default: "", HasDefault: true},
		resource.Attr{Name: "port_details", Type: resource.Dict, NoFilter: true, NoSort: true},
		resource.Attr{Name: "port_forwardings", Type: resource.ListOf(resource.Dict), NoFilter: true, NoSort: true},
		// The floating IP's own port on the external network, never shown.
		resource.Attr{Name: "floating_port_id", Type: resource.String(0), Hidden: true, NoFilter: true, NoSort: true},
		// The router's agent said it is in place (status follows from it
		// and the port's binding), never shown.
		resource.Attr{Name: fipInPlace, Type: resource.Bool, Hidden: true, NoFilter: true, NoSort: true},
	)}
}

// PortForwardingResource is the floating IP port forwarding attribute map
// (a sub-collection of floating IPs).
func PortForwardingResource() *resource.Resource {
	return &resource.Resource{Name: "port_forwarding", Collection: "port_forwardings", Attrs: []resource.Attr{
		{Name: "id", Type: resource.UUID},
		{Name: "external_port", Type: resource.Int, Post: true, Put: true, Nullable: true, Validate: validPort("external_port")},
		{Name: "internal_port", Type: resource.Int, Post: true, Put: true, Nullable: true, Validate: validPort("internal_port")},
		{Name: "external_port_range", Type: resource.String(0), Post: true, Put: true, Validate: validRange("external_port_range")},
		{Name: "internal_port_range", Type: resource.String(0), Post: true, Put: true, Validate: validRange("internal_port_range")},
		{Name: "internal_ip_address", Type: resource.String(64), Post: true, Put: true, Validate: validIPv4("internal_ip_address")},
		{Name: "protocol", Type: resource.String(0), Post: true, Put: true, Required: true, Validate: oneOf("protocol", "tcp", "udp")},
		{Name: "internal_port_id", Type: resource.UUID, Post: true, Put: true, Required: true},
		{Name: "description", Type: resource.String(255), Post: true, Put: true, Default: "", HasDefault: true},
	}}
}

func validIP(attr string) func(any) error {
	return func(v any) error {
		_, err := ipam.ParseIP(v.(string))
		return ipam.ForAttr(attr, err)
	}
}

func validIPv4(attr string) func(any) error {
	return func(v any) error {
		a, err := ipam.ParseIP(v.(string))
		if err != nil {
			return ipam.ForAttr(attr, err)
		}
		if !a.Is4() {
			return fault.BadRequest("Invalid input for %s. Reason: '%s' is not a valid IPv4 address.", attr, v)
		}
		return nil
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

func validPort(attr string) func(any) error {
	return func(v any) error {
		if n := v.(int64); n < 1 || n > 65535 {
			return fault.BadRequest("Invalid input for %s. Reason: '%d' is not in range 1 through 65535.", attr, n)
		}
		return nil
	}
}

func validRange(attr string) func(any) error {
	return func(v any) error {
		if _, _, err := parseRange(v.(string)); err != nil {
			return fault.BadRequest("Invalid input for %s. Reason: %v.", attr, err)
		}
		return nil
	}
}

// parseRange reads a port range "N:M" (or "N").
func parseRange(s string) (int, int, error) {
	a, b, isRange := strings.Cut(s, ":")
	lo, err1 := strconv.Atoi(a)
	hi := lo
	var err2 error
	if isRange {
		hi, err2 = strconv.Atoi(b)
	}
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("'%s' is not a valid port range", s)
	}
	return lo, hi, nil
}

// validGatewayInfo checks external_gateway_info's keys and their types.
// An empty dictionary is no gateway, as null (neutron-lib's
// type:dict_or_nodata).
func validGatewayInfo(v any) error {
	m := v.(map[string]any)
	if len(m) == 0 {
		return nil
	}
	bad := func(format string, args ...any) error {
		return fault.BadRequest("Invalid input for external_gateway_info. Reason: "+format+".", args...)
	}
	for k := range m {
		switch k {
		case "network_id", "enable_snat", "external_fixed_ips":
		default:
			return bad("Unrecognized attribute(s) '%s'", k)
		}
	}
	id, ok := m["network_id"].(string)
	if !ok {
		return bad("Validation of dictionary's keys failed. Expected keys: {'network_id'} Provided keys: %v", keys(m))
	}
	if _, err := resource.UUID.Convert(id); err != nil {
		return bad("%v", err)
	}
	if s, ok := m["enable_snat"]; ok {
		b, err := resource.Bool.Convert(s)
		if err != nil {
			return bad("%v", err)
		}
		m["enable_snat"] = b
	}
	if ips, ok := m["external_fixed_ips"]; ok && ips != nil {
		l, ok := ips.([]any)
		if !ok {
			return bad("'%v' is not a list", ips)
		}
		for _, x := range l {
			f, ok := x.(map[string]any)
			if !ok {
				return bad("Invalid data format for fixed IP: '%v'", x)
			}
			for k, v := range f {
				s, ok := v.(string)
				switch {
				case k != "subnet_id" && k != "ip_address":
					return bad("Unrecognized attribute(s) '%s'", k)
				case !ok:
					return bad("'%v' is not a valid %s", v, k)
				case k == "subnet_id":
					if _, err := resource.UUID.Convert(s); err != nil {
						return bad("%v", err)
					}
				default:
					if _, err := ipam.ParseIP(s); err != nil {
						return bad("'%s' is not a valid IP address", s)
					}
				}
			}
		}
	}
	return nil
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
