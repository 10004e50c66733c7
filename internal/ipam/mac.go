package ipam

import (
	"io"
	"net/netip"

	"muon/internal/fault"
)

// GenerateMAC draws a random MAC from Neutron's base_mac (default
// "fa:16:3e:00:00:00") as neutron-lib's get_random_mac does: the first three
// octets are kept, the fourth is kept unless it is 00, and the last two are
// always random. base must be a unicast MAC written as six colon-separated
// two-digit hex octets (Neutron's MAC_PATTERN). rand supplies
// the random bytes (crypto/rand.Reader in production).
func GenerateMAC(base string, rand io.Reader) (string, error) {
	b, ok := parseBaseMAC(base)
	if !ok || b[0]&1 == 1 {
		return "", fault.InvalidInput("'%s' is not a valid base MAC address", base)
	}
	var r [3]byte
	if _, err := io.ReadFull(rand, r[:]); err != nil {
		return "", err
	}
	if b[3] == 0 {
		b[3] = r[0]
	}
	b[4], b[5] = r[1], r[2]
	var mac uint64
	for _, o := range b {
		mac = mac<<8 | uint64(o)
	}
	return formatMAC(mac), nil
}

// parseBaseMAC reads "xx:xx:xx:xx:xx:xx" (exactly two hex digits each, as
// Neutron's MAC_PATTERN wants for base_mac).
func parseBaseMAC(s string) ([6]byte, bool) {
	var b [6]byte
	if len(s) != 17 {
		return b, false
	}
	for i := range 6 {
		if i < 5 && s[3*i+2] != ':' {
			return b, false
		}
		w, ok := hexWord(s[3*i:3*i+2], 2)
		if !ok {
			return b, false
		}
		b[i] = byte(w)
	}
	return b, true
}

// EUI64 is the SLAAC address of a port: the modified EUI-64 interface
// identifier of mac (ff:fe inserted in the middle, universal/local bit
// flipped) in the low 64 bits of prefix. prefix must be IPv6 and no longer
// than /64; mac may be in any form ParseMAC reads.
func EUI64(prefix netip.Prefix, mac string) (netip.Addr, error) {
	if !prefix.IsValid() || prefix.Addr().Is4() {
		return netip.Addr{}, fault.InvalidInput("Unable to generate IP address by EUI64 for IPv4 prefix")
	}
	m, ok := parseMAC(mac)
	if !ok || prefix.Bits() > 64 {
		return netip.Addr{}, fault.InvalidInput(
			"Bad prefix or mac format for generating IPv6 address by EUI-64: %s, %s:", prefix, mac)
	}
	iid := (m>>24)<<40 | 0xfffe<<24 | m&0xffffff
	iid ^= 1 << 57
	u := toU(prefix.Masked().Addr())
	u.lo |= iid
	return fromU(u, false), nil
}
