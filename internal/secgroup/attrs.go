package secgroup

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"muon/internal/fault"
	"muon/internal/resource"
)

// The attribute maps of security groups, their rules and address groups,
// after neutron-lib's security-group, address-group and their extensions
// (stateful-security-group, security-groups-remote-address-group,
// security-groups-normalized-cidr, rbac-security-groups' shared).

// SecurityGroupResource is the security-group attribute map.
func SecurityGroupResource() *resource.Resource {
	return &resource.Resource{Name: "security_group", Collection: "security-groups", Tags: true, Attrs: append(resource.Standard(false, true),
		resource.Attr{Name: "name", Type: resource.String(255), Post: true, Put: true, Default: "", HasDefault: true, Validate: nameNotDefault},
		resource.Attr{Name: "stateful", Type: resource.Bool, Post: true, Put: true, Default: true, HasDefault: true},
		resource.Attr{Name: "shared", Type: resource.Bool},
		resource.Attr{Name: "security_group_rules", Type: resource.ListOf(resource.Dict), NoFilter: true, NoSort: true},
	)}
}

// RuleResource is the security-group-rule attribute map.
func RuleResource() *resource.Resource {
	return &resource.Resource{Name: "security_group_rule", Collection: "security-group-rules", Attrs: append(resource.Standard(false, false),
		resource.Attr{Name: "security_group_id", Type: resource.String(36), Post: true, Required: true},
		resource.Attr{Name: "direction", Type: resource.String(0), Post: true, Required: true, Validate: direction},
		resource.Attr{Name: "ethertype", Type: ethertypeType{}, Post: true, Default: "IPv4", HasDefault: true},
		resource.Attr{Name: "protocol", Type: protocolType{}, Post: true, Nullable: true, Default: nil, HasDefault: true},
		resource.Attr{Name: "port_range_min", Type: portType{}, Post: true, Nullable: true, Default: nil, HasDefault: true},
		resource.Attr{Name: "port_range_max", Type: portType{}, Post: true, Nullable: true, Default: nil, HasDefault: true},
		resource.Attr{Name: "remote_ip_prefix", Type: prefixType{}, Post: true, Nullable: true, Default: nil, HasDefault: true},
		resource.Attr{Name: "remote_group_id", Type: resource.String(36), Post: true, Nullable: true, Default: nil, HasDefault: true},
		resource.Attr{Name: "remote_address_group_id", Type: resource.String(36), Post: true, Nullable: true, Default: nil, HasDefault: true},
		resource.Attr{Name: "normalized_cidr", Type: resource.String(0)},
		resource.Attr{Name: "belongs_to_default_sg", Type: resource.Bool},
	)}
}

// AddressGroupResource is the address-group attribute map.
func AddressGroupResource() *resource.Resource {
	return &resource.Resource{Name: "address_group", Collection: "address-groups", Attrs: append(resource.Standard(true, false),
		resource.Attr{Name: "addresses", Type: resource.StringList, Post: true, Nullable: true, NoSort: true, Validate: addressList},
	)}
}

// nameNotDefault refuses "default" as the name of a new or renamed group
// (neutron's type:name_not_default).
func nameNotDefault(v any) error {
	if s, _ := v.(string); strings.EqualFold(s, "default") {
		return errDefaultExists()
	}
	return nil
}

func direction(v any) error {
	if s := v.(string); s != "ingress" && s != "egress" {
		return fault.BadRequest("Invalid input for direction. Reason: '%s' is not in ['ingress', 'egress'].", s)
	}
	return nil
}

// addressList checks an address group's addresses: CIDRs (host bits are
// cleared later).
func addressList(v any) error {
	for _, x := range v.([]any) {
		if _, err := parseAddress(x.(string)); err != nil {
			return err
		}
	}
	return nil
}

// parseAddress reads an address group member: a CIDR or a bare address,
// returned masked ("10.0.0.5/24" is 10.0.0.0/24).
func parseAddress(s string) (netip.Prefix, error) {
	p, err := parsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fault.BadRequest("Invalid input for addresses. Reason: '%s' is not a valid IP subnet.", s)
	}
	return p.Masked(), nil
}

// parsePrefix reads an address or a CIDR; a bare address is a host prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.ContainsAny(s, " \t\n%") {
		return netip.Prefix{}, fmt.Errorf("bad prefix")
	}
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ethertypeType is neutron's convert_ethertype_to_case_insensitive.
type ethertypeType struct{}

func (ethertypeType) Convert(v any) (any, error) {
	if s, ok := v.(string); ok {
		for _, e := range []string{"IPv4", "IPv6"} {
			if strings.EqualFold(s, e) {
				return e, nil
			}
		}
	}
	return nil, fault.New(400, "SecurityGroupRuleInvalidEtherType",
		"Security group rule for ethertype '%s' not supported. Allowed values are ['IPv4', 'IPv6'].", show(v))
}
func (t ethertypeType) Parse(s string) (any, error) { return s, nil }

// protocolNumbers maps the protocol names Neutron knows to their numbers
// (neutron-lib's IP_PROTOCOL_MAP, with the legacy "icmpv6").
var protocolNames = []string{"ah", "dccp", "egp", "esp", "gre", "hopopt", "icmp", "igmp", "ip", "ipip",
	"ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route",
	"ospf", "pgm", "rsvp", "sctp", "tcp", "udp", "udplite", "vrrp"}

var protocolNumbers = map[string]int{"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0,
	"icmp": 1, "igmp": 2, "ip": 0, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58,
	"icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113,
	"rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112}

// protocolType is neutron's convert_protocol: null and "any" are any
// protocol, names are lower-cased, numbers 0-255 kept as strings.
type protocolType struct{}

func (protocolType) Convert(v any) (any, error) {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case json.Number:
		s = t.String()
	default:
		return nil, errProtocol(v)
	}
	if s == "any" {
		return nil, nil
	}
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		if n < 0 || n > 255 {
			return nil, errProtocol(v)
		}
		return strconv.Itoa(n), nil
	}
	if l := strings.ToLower(s); protocolNumbers[l] != 0 || l == "ip" || l == "hopopt" {
		return l, nil
	}
	return nil, errProtocol(v)
}
func (protocolType) Parse(s string) (any, error) { return s, nil }

func errProtocol(v any) error {
	names := make([]string, 0, len(protocolNames)+2)
	names = append(names, "None", "'any'")
	for _, n := range protocolNames {
		names = append(names, "'"+n+"'")
	}
	return fault.New(400, "SecurityGroupRuleInvalidProtocol",
		"Security group rule protocol %s not supported. Only protocol values (%s) and integer representations [0 to 255] are supported.",
		show(v), strings.Join(names, ", "))
}

// portType is neutron's convert_validate_port_value: 0-65535.
type portType struct{}

func (portType) Convert(v any) (any, error) {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case json.Number:
		s = t.String()
	case int64:
		s = strconv.FormatInt(t, 10)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 || n > 65535 {
		return nil, fault.New(400, "SecurityGroupInvalidPortValue", "Invalid value for port %s", show(v))
	}
	return n, nil
}
func (portType) Parse(s string) (any, error) { return portType{}.Convert(s) }

// prefixType is neutron's convert_ip_prefix_to_cidr: the prefix with its
// length ("10.0.0.1" is 10.0.0.1/32), host bits kept.
type prefixType struct{}

func (prefixType) Convert(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fault.New(400, "InvalidCIDR", "Invalid CIDR %s given as IP prefix.", show(v))
	}
	if s == "" {
		return nil, nil
	}
	p, err := parsePrefix(s)
	if err != nil {
		return nil, fault.New(400, "InvalidCIDR", "Invalid CIDR %s given as IP prefix.", s)
	}
	return p.String(), nil
}
func (prefixType) Parse(s string) (any, error) { return s, nil }

// show renders a value as Neutron's messages quote it.
func show(v any) string {
	switch t := v.(type) {
	case nil:
		return "None"
	case string:
		return t
	case json.Number:
		return t.String()
	case bool:
		if t {
			return "True"
		}
		return "False"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
