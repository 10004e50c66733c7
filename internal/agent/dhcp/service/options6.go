package service

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/rfc1035label"
)

// opt6 is a DHCPv6 option, encoded; no value removes the computed one.
type opt6 struct {
	code uint16
	val  []byte
}

// Encodings of DHCPv6 option values.
const (
	k6Auto = iota
	k6IPs
	k6Domains
	k6String
	k6U32
)

// names6 are the dnsmasq option6 names the service encodes. Read only.
var names6 = map[string][2]int{
	"dns-server":               {23, k6IPs},
	"domain-search":            {24, k6Domains},
	"sntp-server":              {31, k6IPs},
	"information-refresh-time": {32, k6U32},
	"bootfile-url":             {59, k6String},
}

// DHCPv6 options a port's extra options must not replace.
func reserved6(code uint16) bool {
	switch code {
	case 0, 1, 2, 3, 4, 5, 9, 13, 14, 19, 20:
		return true // ids, IAs, relay and status options
	}
	return false
}

// parseExtra6 reads one of a port's IPv6 extra_dhcp_opts: name is a
// number ("23", "option6:23") or one of names6 ("option6:dns-server").
func parseExtra6(name, value string) (opt6, error) {
	name = strings.TrimSpace(name)
	if strings.Contains(name, ",") || strings.HasPrefix(name, "tag:") {
		return opt6{}, fmt.Errorf("option %q: tags are not supported", name)
	}
	name = strings.TrimPrefix(strings.TrimPrefix(name, "option6:"), "option:")
	var code uint16
	kind := k6Auto
	if c, err := strconv.ParseUint(name, 10, 16); err == nil {
		code = uint16(c)
		for _, n := range names6 {
			if n[0] == int(code) {
				kind = n[1]
			}
		}
	} else if n, ok := names6[strings.ToLower(name)]; ok {
		code, kind = uint16(n[0]), n[1]
	} else {
		return opt6{}, fmt.Errorf("option %q: unknown name", name)
	}
	if reserved6(code) {
		return opt6{}, fmt.Errorf("option %d: reserved", code)
	}
	value = strings.TrimSpace(value)
	if value == "" {
		return opt6{code: code}, nil
	}
	var b []byte
	var err error
	switch kind {
	case k6IPs:
		b, err = parseIPs6(value)
	case k6Domains:
		var ls []string
		for _, d := range strings.Split(value, ",") {
			if d = strings.TrimSuffix(strings.TrimSpace(unquote(d)), "."); d != "" {
				ls = append(ls, d)
			}
		}
		for _, d := range ls {
			for _, l := range strings.Split(d, ".") {
				if l == "" || len(l) > 63 {
					return opt6{}, fmt.Errorf("option %d: %q is not a domain name", code, d)
				}
			}
		}
		b = (&rfc1035label.Labels{Labels: ls}).ToBytes()
	case k6String:
		b = []byte(unquote(value))
	case k6U32:
		var n uint64
		n, err = strconv.ParseUint(value, 10, 32)
		b = binary.BigEndian.AppendUint32(nil, uint32(n))
	default:
		if b, err = parseIPs6(value); err != nil {
			var ok bool
			if b, ok = parseHex(value); !ok {
				b, err = []byte(unquote(value)), nil
			}
		}
	}
	if err != nil {
		return opt6{}, fmt.Errorf("option %d: %w", code, err)
	}
	if len(b) == 0 || len(b) > 0xffff {
		return opt6{}, fmt.Errorf("option %d: %w", code, errNoValue)
	}
	return opt6{code: code, val: b}, nil
}

func parseIPs6(v string) ([]byte, error) {
	var b []byte
	for _, p := range strings.Split(v, ",") {
		a, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(p), "[]"))
		if err != nil || !a.Is6() || a.Is4In6() {
			return nil, errors.New(strconv.Quote(p) + " is not an ipv6 address")
		}
		v := a.As16()
		b = append(b, v[:]...)
	}
	return b, nil
}
