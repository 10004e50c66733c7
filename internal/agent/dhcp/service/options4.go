package service

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/rfc1035label"

	"muon/internal/agentapi"
)

// DHCPv4 option codes the service computes.
const (
	optSubnetMask     = 1
	optRouter         = 3
	optDNS            = 6
	optHostName       = 12
	optDomainName     = 15
	optMTU            = 26
	optBroadcast      = 28
	optRequestedIP    = 50
	optLeaseTime      = 51
	optOverload       = 52
	optMessageType    = 53
	optServerID       = 54
	optMessage        = 56
	optMaxMessageSize = 57
	optRenewal        = 58
	optRebinding      = 59
	optClientID       = 61
	optRelayAgentInfo = 82
	optClasslessRoute = 121
	optMSClassless    = 249
)

// metadataPrefix is the metadata service's address, as a host route.
var metadataPrefix = netip.MustParsePrefix("169.254.169.254/32")

// opt4 is a DHCPv4 option, encoded. An extra option with no value
// removes the computed one; siaddr, when valid, is server-ip-address
// (the header's next server) rather than an option.
type opt4 struct {
	code   uint8
	val    []byte
	siaddr netip.Addr
}

type route4 struct {
	dst netip.Prefix
	via netip.Addr
}

// baseOptions4 are the options all clients of a DHCP-enabled IPv4 subnet
// get, as Neutron's dnsmasq configuration gives them.
func baseOptions4(f *facts, s *subnet, hostRoutes []agentapi.HostRoute, log *slog.Logger) []opt4 {
	var opts []opt4
	add := func(code uint8, val []byte) { opts = append(opts, opt4{code: code, val: val}) }

	mask := ^uint32(0) << (32 - s.prefix.Bits())
	add(optSubnetMask, binary.BigEndian.AppendUint32(nil, mask))
	if s.gateway.IsValid() {
		add(optRouter, s.gateway.AsSlice())
	}
	server := f.server4(s)
	if len(s.dns) > 0 {
		add(optDNS, ips4(s.dns))
	} else if server.IsValid() {
		add(optDNS, server.AsSlice())
	}
	if f.domain != "" {
		add(optDomainName, []byte(f.domain))
	}
	if f.mtu >= 68 && f.mtu <= 0xffff {
		add(optMTU, binary.BigEndian.AppendUint16(nil, uint16(f.mtu)))
	}
	if s.prefix.Bits() <= 30 {
		b := s.prefix.Addr().As4()
		binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])|^mask)
		add(optBroadcast, b[:])
	}
	if server.IsValid() {
		add(optServerID, server.AsSlice())
	}

	// Option 121 as Neutron builds it: the network's other IPv4 subnets
	// on link, the subnet's host routes, the metadata route through the
	// DHCP port when no router serves the subnet, and then, because
	// clients ignore option 3 when 121 is given, the default route.
	var routes []route4
	for _, o := range f.subnets {
		if o != s && o.prefix.Addr().Is4() && o.prefix != s.prefix {
			routes = append(routes, route4{dst: o.prefix, via: netip.IPv4Unspecified()})
		}
	}
	hasDefault, hasMetadata := false, false
	for _, hr := range hostRoutes {
		dst, err1 := netip.ParsePrefix(hr.Destination)
		via, err2 := netip.ParseAddr(hr.NextHop)
		if err1 != nil || err2 != nil || !dst.Addr().Unmap().Is4() || !via.Unmap().Is4() {
			log.Debug("host route skipped", "subnet", s.id, "destination", hr.Destination, "nexthop", hr.NextHop)
			continue
		}
		dst = netip.PrefixFrom(dst.Addr().Unmap(), dst.Bits()).Masked()
		hasDefault = hasDefault || dst.Bits() == 0
		hasMetadata = hasMetadata || dst == metadataPrefix
		routes = append(routes, route4{dst: dst, via: via.Unmap()})
	}
	if (!s.routed || !s.gateway.IsValid()) && server.IsValid() && !hasMetadata {
		routes = append(routes, route4{dst: metadataPrefix, via: server})
	}
	if len(routes) > 0 {
		if s.gateway.IsValid() && !hasDefault {
			routes = append(routes, route4{dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), via: s.gateway})
		}
		b := encodeRoutes(routes)
		add(optClasslessRoute, b)
		add(optMSClassless, b)
	}
	return opts
}

// encodeRoutes encodes routes as RFC 3442 does: width, the significant
// octets of the destination, the router.
func encodeRoutes(rs []route4) []byte {
	var b []byte
	for _, r := range rs {
		bits := r.dst.Bits()
		d := r.dst.Addr().As4()
		v := r.via.As4()
		b = append(b, byte(bits))
		b = append(b, d[:(bits+7)/8]...)
		b = append(b, v[:]...)
	}
	return b
}

func ips4(as []netip.Addr) []byte {
	b := make([]byte, 0, 4*len(as))
	for _, a := range as {
		v := a.As4()
		b = append(b, v[:]...)
	}
	return b
}

// How an option's value is written.
type kind4 int

const (
	kAuto kind4 = iota
	kIPs
	kIP
	kString
	kU8
	kU16
	kU32
	kBool
	kRoutes
	kPairs
	kDomains
	kSiaddr
)

type optName4 struct {
	code uint8
	kind kind4
}

// names4 are dnsmasq's option names ("dnsmasq --help dhcp"), lower
// case. Read only.
var names4 = map[string]optName4{
	"netmask":                  {1, kIP},
	"time-offset":              {2, kU32},
	"router":                   {3, kIPs},
	"dns-server":               {6, kIPs},
	"log-server":               {7, kIPs},
	"lpr-server":               {9, kIPs},
	"hostname":                 {12, kString},
	"boot-file-size":           {13, kU16},
	"domain-name":              {15, kString},
	"swap-server":              {16, kIP},
	"root-path":                {17, kString},
	"extension-path":           {18, kString},
	"ip-forward-enable":        {19, kBool},
	"non-local-source-routing": {20, kBool},
	"policy-filter":            {21, kPairs},
	"max-datagram-reassembly":  {22, kU16},
	"default-ttl":              {23, kU8},
	"mtu":                      {26, kU16},
	"all-subnets-local":        {27, kBool},
	"broadcast":                {28, kIP},
	"router-discovery":         {31, kBool},
	"router-solicitation":      {32, kIP},
	"static-route":             {33, kPairs},
	"trailer-encapsulation":    {34, kBool},
	"arp-timeout":              {35, kU32},
	"ethernet-encap":           {36, kBool},
	"tcp-ttl":                  {37, kU8},
	"tcp-keepalive":            {38, kU32},
	"nis-domain":               {40, kString},
	"nis-server":               {41, kIPs},
	"ntp-server":               {42, kIPs},
	"netbios-ns":               {44, kIPs},
	"netbios-dd":               {45, kIPs},
	"netbios-nodetype":         {46, kU8},
	"netbios-scope":            {47, kString},
	"x-windows-fs":             {48, kIPs},
	"x-windows-dm":             {49, kIPs},
	"lease-time":               {51, kU32},
	"message":                  {56, kString},
	"t1":                       {58, kU32},
	"t2":                       {59, kU32},
	"vendor-class":             {60, kString},
	"nis+-domain":              {64, kString},
	"nis+-server":              {65, kIPs},
	"tftp-server":              {66, kString},
	"bootfile-name":            {67, kString},
	"mobile-ip-home":           {68, kIPs},
	"smtp-server":              {69, kIPs},
	"pop3-server":              {70, kIPs},
	"nntp-server":              {71, kIPs},
	"irc-server":               {74, kIPs},
	"user-class":               {77, kString},
	"client-arch":              {93, kU16},
	"subnet-select":            {118, kIP},
	"domain-search":            {119, kDomains},
	"classless-static-route":   {121, kRoutes},
	"tftp-server-address":      {150, kIPs},
	"server-ip-address":        {0, kSiaddr},
}

// kinds4 are the encodings of options given by number. Read only.
var kinds4 = func() map[uint8]kind4 {
	m := map[uint8]kind4{249: kRoutes}
	for _, n := range names4 {
		if n.kind != kSiaddr {
			m[n.code] = n.kind
		}
	}
	return m
}()

var errNoValue = errors.New("no value")

// parseExtra4 reads one of a port's IPv4 extra_dhcp_opts: name is an
// option number ("42", "option:42") or a dnsmasq name ("ntp-server",
// "option:ntp-server"). An empty value removes the option.
func parseExtra4(name, value string) (opt4, error) {
	name = strings.TrimSpace(name)
	if strings.Contains(name, ",") || strings.HasPrefix(name, "tag:") {
		return opt4{}, fmt.Errorf("option %q: tags are not supported", name)
	}
	name = strings.TrimPrefix(name, "option:")
	var n optName4
	if c, err := strconv.ParseUint(name, 10, 8); err == nil {
		n = optName4{code: uint8(c), kind: kinds4[uint8(c)]}
	} else if known, ok := names4[strings.ToLower(name)]; ok {
		n = known
	} else {
		return opt4{}, fmt.Errorf("option %q: unknown name", name)
	}
	switch n.code {
	case 0, optOverload, optMessageType, optMaxMessageSize, 255:
		if n.kind != kSiaddr {
			return opt4{}, fmt.Errorf("option %d: reserved", n.code)
		}
	}
	value = strings.TrimSpace(value)
	if n.kind == kSiaddr {
		a, err := netip.ParseAddr(value)
		if err != nil || !a.Unmap().Is4() {
			return opt4{}, fmt.Errorf("server-ip-address %q: not an ipv4 address", value)
		}
		return opt4{siaddr: a.Unmap()}, nil
	}
	if value == "" {
		return opt4{code: n.code}, nil
	}
	b, err := encode4(n.kind, value)
	if err != nil {
		return opt4{}, fmt.Errorf("option %d: %w", n.code, err)
	}
	if len(b) == 0 {
		return opt4{}, fmt.Errorf("option %d: %w", n.code, errNoValue)
	}
	return opt4{code: n.code, val: b}, nil
}

func encode4(k kind4, v string) ([]byte, error) {
	switch k {
	case kIPs, kIP:
		parts := strings.Split(v, ",")
		if k == kIP && len(parts) != 1 {
			return nil, errors.New("one address expected")
		}
		return parseIPs4(parts)
	case kPairs:
		parts := strings.Split(v, ",")
		if len(parts)%2 != 0 {
			return nil, errors.New("address pairs expected")
		}
		return parseIPs4(parts)
	case kString:
		return []byte(unquote(v)), nil
	case kU8, kU16, kU32:
		bits := map[kind4]int{kU8: 8, kU16: 16, kU32: 32}[k]
		n, err := strconv.ParseUint(v, 10, bits)
		if err != nil {
			return nil, err
		}
		return appendUint(nil, n, bits/8), nil
	case kBool:
		switch strings.ToLower(v) {
		case "1", "true", "yes", "on":
			return []byte{1}, nil
		case "0", "false", "no", "off":
			return []byte{0}, nil
		}
		return nil, fmt.Errorf("%q is not a boolean", v)
	case kRoutes:
		parts := strings.Split(v, ",")
		if len(parts)%2 != 0 {
			return nil, errors.New("destination,router pairs expected")
		}
		var rs []route4
		for i := 0; i < len(parts); i += 2 {
			d, err := netip.ParsePrefix(strings.TrimSpace(parts[i]))
			if err != nil || !d.Addr().Is4() {
				return nil, fmt.Errorf("%q is not an ipv4 prefix", parts[i])
			}
			r, err := netip.ParseAddr(strings.TrimSpace(parts[i+1]))
			if err != nil || !r.Is4() {
				return nil, fmt.Errorf("%q is not an ipv4 address", parts[i+1])
			}
			rs = append(rs, route4{dst: d.Masked(), via: r})
		}
		return encodeRoutes(rs), nil
	case kDomains:
		var ls []string
		for _, d := range strings.Split(v, ",") {
			if d = strings.TrimSuffix(strings.TrimSpace(unquote(d)), "."); d != "" {
				ls = append(ls, d)
			}
		}
		if len(ls) == 0 {
			return nil, errNoValue
		}
		for _, d := range ls {
			for _, l := range strings.Split(d, ".") {
				if l == "" || len(l) > 63 {
					return nil, fmt.Errorf("%q is not a domain name", d)
				}
			}
		}
		return (&rfc1035label.Labels{Labels: ls}).ToBytes(), nil
	}
	return encodeAuto(v)
}

// encodeAuto guesses as dnsmasq does for options it has no type for:
// addresses, hex bytes ("01:02:0a"), a number in as few bytes as fit,
// else the text.
func encodeAuto(v string) ([]byte, error) {
	if b, err := parseIPs4(strings.Split(v, ",")); err == nil {
		return b, nil
	}
	if b, ok := parseHex(v); ok {
		return b, nil
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		switch {
		case n <= 0xff:
			return []byte{byte(n)}, nil
		case n <= 0xffff:
			return appendUint(nil, n, 2), nil
		}
		return appendUint(nil, n, 4), nil
	}
	return []byte(unquote(v)), nil
}

func parseIPs4(parts []string) ([]byte, error) {
	b := make([]byte, 0, 4*len(parts))
	for _, p := range parts {
		a, err := netip.ParseAddr(strings.TrimSpace(p))
		if err != nil || !a.Unmap().Is4() {
			return nil, fmt.Errorf("%q is not an ipv4 address", p)
		}
		v := a.Unmap().As4()
		b = append(b, v[:]...)
	}
	return b, nil
}

func parseHex(v string) ([]byte, bool) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 {
		return nil, false
	}
	b := make([]byte, 0, len(parts))
	for _, p := range parts {
		if len(p) == 0 || len(p) > 2 {
			return nil, false
		}
		n, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return nil, false
		}
		b = append(b, byte(n))
	}
	return b, true
}

func appendUint(b []byte, n uint64, size int) []byte {
	for i := size - 1; i >= 0; i-- {
		b = append(b, byte(n>>(8*i)))
	}
	return b
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}
