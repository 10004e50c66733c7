package secgroup

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"muon/internal/fault"
	"muon/internal/resource"
)

// The checks neutron makes of a security group rule's own attributes, in
// its order, before it looks at the groups the rule names.

// portProtocols take port ranges; ICMP and ICMPv6 take a type and code.
var portProtocols = []int{33, 132, 6, 17, 136}

// ipv6Only are the protocols (names and numbers) an IPv4 rule cannot use.
var ipv6Only = []string{"ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route",
	"41", "44", "58", "59", "60", "43"}

func invalid(typ, format string, args ...any) *fault.Error {
	return fault.New(400, typ, format, args...)
}

// protocolNumber is a rule protocol's IP protocol number, -1 for any.
func protocolNumber(p any) int {
	s, _ := p.(string)
	if s == "" {
		return -1
	}
	if n, ok := protocolNumbers[s]; ok {
		return n
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// port reads a port bound: nil or an int64.
func port(v any) (int64, bool) {
	n, ok := v.(int64)
	return n, ok
}

// checkRule validates and canonicalises a converted rule document: legacy
// IPv6 ICMP protocols become ipv6-icmp, the full port range becomes none,
// port ranges are checked per protocol, the prefix must match the
// ethertype (normalized_cidr is its network), IPv6-only protocols need
// IPv6 and a rule has at most one remote.
func checkRule(d resource.Doc) error {
	eth := resource.Str(d["ethertype"])
	if eth == "IPv6" {
		switch resource.Str(d["protocol"]) {
		case "icmp", "icmpv6":
			d["protocol"] = "ipv6-icmp"
		case "1":
			d["protocol"] = "58"
		}
	}
	min, hasMin := port(d["port_range_min"])
	max, hasMax := port(d["port_range_max"])
	if hasMin && hasMax && min == 1 && max == 65535 {
		d["port_range_min"], d["port_range_max"] = nil, nil
		hasMin, hasMax = false, false
	}
	if hasMin || hasMax {
		proto := protocolNumber(d["protocol"])
		switch {
		case d["protocol"] == nil:
			return invalid("SecurityGroupProtocolRequiredWithPorts", "Must also specify protocol if port range is given.")
		case slices.Contains(portProtocols, proto):
			if hasMin && min == 0 || hasMax && max == 0 {
				return invalid("SecurityGroupInvalidPortValue", "Invalid value for port 0")
			}
			if !hasMin || !hasMax || min > max {
				return invalid("SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max")
			}
		case proto == 1 || proto == 58:
			for _, b := range []struct {
				attr, field string
				v           int64
				has         bool
			}{{"port_range_min", "type", min, hasMin}, {"port_range_max", "code", max, hasMax}} {
				if b.has && b.v > 255 {
					return invalid("SecurityGroupInvalidIcmpValue", "Invalid value for ICMP %s (%s) %d. It must be 0 to 255.", b.field, b.attr, b.v)
				}
			}
			if !hasMin && hasMax {
				return invalid("SecurityGroupMissingIcmpType", "ICMP code (port-range-max) %d is provided but ICMP type (port-range-min) is missing.", max)
			}
		default:
			return invalid("SecurityGroupInvalidProtocolForPort", "Ports cannot be specified for protocol %d. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE.", proto)
		}
	}
	d["normalized_cidr"] = nil
	if s := resource.Str(d["remote_ip_prefix"]); s != "" {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return invalid("InvalidCIDR", "Invalid CIDR %s given as IP prefix.", s)
		}
		if fmt.Sprintf("IPv%d", version(p.Addr())) != eth {
			return invalid("SecurityGroupRuleParameterConflict", "Conflicting value ethertype %s for CIDR %s", eth, s)
		}
		d["normalized_cidr"] = p.Masked().String()
	}
	if eth == "IPv4" && slices.Contains(ipv6Only, resource.Str(d["protocol"])) {
		return invalid("SecurityGroupEthertypeConflictWithProtocol", "Invalid ethertype %s for protocol %s.", eth, resource.Str(d["protocol"]))
	}
	remotes := 0
	for _, k := range []string{"remote_ip_prefix", "remote_group_id", "remote_address_group_id"} {
		if resource.Str(d[k]) != "" {
			remotes++
		}
	}
	if remotes > 1 {
		return invalid("SecurityGroupMultipleRemoteEntites", "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.")
	}
	return nil
}

func version(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// fingerprint is a rule's identity for duplicate detection, as neutron's
// _rule_to_key: protocols by number ("tcp" is "6"), the any-address
// prefixes as no prefix, and (stricter than neutron) the prefix by its
// network, so 10.0.0.5/24 and 10.0.0.0/24 are one rule. The group is the
// claim's scope.
func fingerprint(d resource.Doc) string {
	proto := ""
	if n := protocolNumber(d["protocol"]); n >= 0 {
		proto = strconv.Itoa(n)
	}
	cidr := resource.Str(d["normalized_cidr"])
	if cidr == "0.0.0.0/0" || cidr == "::/0" {
		cidr = ""
	}
	pr := func(v any) string {
		if n, ok := port(v); ok {
			return strconv.FormatInt(n, 10)
		}
		return ""
	}
	return strings.Join([]string{resource.Str(d["direction"]), resource.Str(d["ethertype"]), proto,
		pr(d["port_range_min"]), pr(d["port_range_max"]), resource.Str(d["remote_group_id"]),
		resource.Str(d["remote_address_group_id"]), cidr}, "|")
}
