package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"muon/internal/fault"
)

// ErrInvalidValue is the cause of every fault raised by an attribute
// validator here (neutron-lib's validate_* functions). Such a fault's
// message is the bare reason; ForAttr turns it into the full 400 that
// Neutron's API layer sends.
var ErrInvalidValue = errors.New("ipam: invalid attribute value")

func invalid(format string, args ...any) *fault.Error {
	return &fault.Error{Status: 400, Type: "HTTPBadRequest", Message: fmt.Sprintf(format, args...), Err: ErrInvalidValue}
}

// ForAttr words a validator fault as Neutron's API does ("Invalid input for
// cidr. Reason: 'x' is not a valid IP subnet."). Other errors pass through.
func ForAttr(attr string, err error) error {
	f, ok := fault.As(err)
	if !ok || !errors.Is(err, ErrInvalidValue) {
		return err
	}
	// the result no longer wraps ErrInvalidValue, so wording twice is harmless
	return &fault.Error{Status: 400, Type: "HTTPBadRequest",
		Message: "Invalid input for " + attr + ". Reason: " + f.Message + "."}
}

// hasSpace reports whether s holds whitespace, which Neutron's
// validate_no_whitespace rejects everywhere.
func hasSpace(s string) bool {
	return strings.ContainsAny(s, " \t\n\r\v\f\u0085\u00a0")
}

// ParseIP parses an IP address as neutron-lib's validate_ip_address does:
// dotted-quad IPv4 or any IPv6 form, no zone, no whitespace. An IPv4 address
// with leading zeros is refused with the canonical form recommended.
func ParseIP(s string) (netip.Addr, error) {
	a, msg := parseIP(s)
	if msg != "" {
		return netip.Addr{}, invalid("%s", msg)
	}
	return a, nil
}

// parseIP is validate_ip_address: the address, or why s is not one.
func parseIP(s string) (netip.Addr, string) {
	if !hasSpace(s) && !strings.ContainsRune(s, '%') {
		if a, err := netip.ParseAddr(s); err == nil {
			return a, ""
		}
		if fixed, ok := zeroFill(s); ok {
			return netip.Addr{}, "'" + s + "' is not an accepted IP address, '" + fixed + "' is recommended"
		}
	}
	return netip.Addr{}, "'" + s + "' is not a valid IP address"
}

// zeroFill returns the canonical form of a dotted quad whose octets carry
// leading zeros ("010.0.0.1" -> "10.0.0.1"), as netaddr's ZEROFILL reads it.
func zeroFill(s string) (string, bool) {
	var b [4]byte
	for i := range 4 {
		part := s
		if i < 3 {
			dot := strings.IndexByte(s, '.')
			if dot < 0 {
				return "", false
			}
			part, s = s[:dot], s[dot+1:]
		}
		if part == "" {
			return "", false
		}
		t := strings.TrimLeft(part, "0")
		if len(t) > 3 {
			return "", false
		}
		n := 0
		for _, c := range []byte(t) {
			if c < '0' || c > '9' {
				return "", false
			}
			n = n*10 + int(c-'0')
		}
		if n > 255 {
			return "", false
		}
		b[i] = byte(n)
	}
	return netip.AddrFrom4(b).String(), true
}

// parsePrefix parses "addr/bits" strictly (canonical bits, no zone, no
// whitespace); the host bits are kept.
func parsePrefix(s string) (netip.Prefix, bool) {
	if hasSpace(s) {
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	return p, err == nil
}

// ParsePrefix parses a CIDR as neutron-lib's validate_subnet does and
// returns it masked: Neutron accepts "10.0.0.1/24" and stores 10.0.0.0/24.
// Any prefix length is allowed; use ParseCIDR for a subnet's cidr.
func ParsePrefix(s string) (netip.Prefix, error) {
	p, ok := parsePrefix(s)
	if !ok {
		return netip.Prefix{}, invalid("'%s' is not a valid IP subnet", s)
	}
	return p.Masked(), nil
}

// ParseCIDR parses a subnet's cidr: ParsePrefix plus the rules Neutron
// applies when it saves a subnet. A /0 is refused (dnsmasq cannot serve it)
// and so is an IPv6 subnet whose network address is "::" (that is only the
// provisional prefix of prefix delegation).
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := ParsePrefix(s)
	if err != nil {
		return p, err
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, fault.InvalidInput("0 is not allowed as CIDR prefix length")
	}
	if p.Addr().Is6() && p.Addr().IsUnspecified() {
		return netip.Prefix{}, fault.InvalidInput("IPv6 subnet '::' is not supported")
	}
	return p, nil
}

// ParseRouteCIDR parses a route destination as neutron-lib's
// validate_route_cidr does: host bits must be clear, and loopback networks
// are not routable. A default route (0.0.0.0/0, ::/0) is fine.
func ParseRouteCIDR(s string) (netip.Prefix, error) {
	p, ok := parsePrefix(s)
	if !ok || p.Masked() != p {
		return netip.Prefix{}, invalid("'%s' is not a valid CIDR", s)
	}
	if p.Addr().IsLoopback() {
		return netip.Prefix{}, invalid("'%s' is not a routable CIDR", s)
	}
	return p, nil
}

// IPVersion is 4 or 6, the value of Neutron's ip_version, or 0 for the
// zero Addr.
func IPVersion(a netip.Addr) int {
	switch {
	case a.Is4():
		return 4
	case a.Is6():
		return 6
	}
	return 0
}

// CheckIPVersion refuses a that is not of the subnet's ip_version, naming
// the field as Neutron does ("gateway_ip '::1' does not match the
// ip_version '4'"). value is the text the client sent.
func CheckIPVersion(name, value string, a netip.Addr, version int) error {
	if IPVersion(a) != version {
		return fault.InvalidInput("%s '%s' does not match the ip_version '%d'", name, value, version)
	}
	return nil
}

// CheckDHCP refuses subnets Neutron will not serve DHCP on: too small
// (IPv4 longer than /30, IPv6 longer than /126), multicast, loopback, or an
// IPv4 network starting at 0.0.0.0.
func CheckDHCP(cidr netip.Prefix) error {
	cidr = cidr.Masked()
	a := cidr.Addr()
	if (a.Is4() && cidr.Bits() > 30) || (a.Is6() && cidr.Bits() > 126) {
		return fault.InvalidInput("Subnet has a prefix length that is incompatible with DHCP service enabled")
	}
	if a.IsMulticast() {
		return fault.InvalidInput("Multicast IP subnet is not supported if enable_dhcp is True")
	}
	if a.IsLoopback() {
		return fault.InvalidInput("Loopback IP subnet is not supported if enable_dhcp is True")
	}
	if a.Is4() && a.IsUnspecified() {
		return fault.InvalidInput("First IP '0.0.0.0' of network is not supported if enable_dhcp is True.")
	}
	return nil
}

// ParseMAC parses a MAC address in any form netaddr accepts (aa:bb:cc:dd:ee:ff,
// aa-bb-.., a:b:c:d:e:f, aabb.ccdd.eeff, aabbcc:ddeeff, aabbccddeeff) and
// returns it as lower-case aa:bb:cc:dd:ee:ff. Like validate_mac_address it
// refuses 00:00:00:00:00:00 and the broadcast address; multicast MACs are
// accepted (see CheckMACNotMulticast).
func ParseMAC(s string) (string, error) {
	mac, ok := parseMAC(s)
	if !ok || mac == 0 || mac == 1<<48-1 {
		return "", invalid("'%s' is not a valid MAC address", s)
	}
	return formatMAC(mac), nil
}

// CheckMACNotMulticast refuses a multicast MAC, as Neutron does for
// allowed address pairs. mac must already be valid.
func CheckMACNotMulticast(mac string) error {
	m, ok := parseMAC(mac)
	if ok && m>>40&1 == 1 {
		return invalid("MAC address %s is a multicast address, which is not supported.", mac)
	}
	return nil
}

// parseMAC reads the formats of netaddr's EUI-48 strategy into 48 bits.
func parseMAC(s string) (uint64, bool) {
	if len(s) > 17 {
		return 0, false
	}
	sep := byte(0)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ':' || c == '-' || c == '.' {
			sep = c
			break
		}
	}
	if sep == 0 {
		// bare: 12 hex digits (11 tolerated, as netaddr does)
		if len(s) != 12 && len(s) != 11 {
			return 0, false
		}
		return hexWord(s, 12)
	}
	parts := strings.Split(s, string(sep))
	var digits, maxLen, minLen int
	switch {
	case len(parts) == 6 && sep != '.':
		digits, minLen, maxLen = 2, 1, 2
	case len(parts) == 3:
		digits, minLen, maxLen = 4, 1, 4
	case len(parts) == 2 && sep != '.':
		digits, minLen, maxLen = 6, 5, 6
	default:
		return 0, false
	}
	var mac uint64
	for _, p := range parts {
		if len(p) < minLen || len(p) > maxLen {
			return 0, false
		}
		w, ok := hexWord(p, maxLen)
		if !ok {
			return 0, false
		}
		mac = mac<<(4*digits) | w
	}
	return mac, true
}

func hexWord(s string, maxLen int) (uint64, bool) {
	if s == "" || len(s) > maxLen {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

func formatMAC(mac uint64) string {
	const hex = "0123456789abcdef"
	var b [17]byte
	for i := range 6 {
		o := byte(mac >> (40 - 8*i))
		b[3*i] = hex[o>>4]
		b[3*i+1] = hex[o&15]
		if i < 5 {
			b[3*i+2] = ':'
		}
	}
	return string(b[:])
}
