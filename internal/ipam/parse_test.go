package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"muon/internal/fault"
)

// checkFault fails unless err is a *fault.Error of that status and type and,
// when msg is set, that message.
func checkFault(t *testing.T, err error, status int, typ, msg string) {
	t.Helper()
	f, ok := fault.As(err)
	if !ok {
		t.Fatalf("err = %v, want fault %s", err, typ)
	}
	if f.Status != status || f.Type != typ {
		t.Fatalf("fault = %d %s (%q), want %d %s", f.Status, f.Type, f.Message, status, typ)
	}
	if msg != "" && f.Message != msg {
		t.Fatalf("message = %q\n want %q", f.Message, msg)
	}
}

func TestParseIP(t *testing.T) {
	tests := []struct {
		name, in, want, msg string
	}{
		{"v4", "10.0.0.1", "10.0.0.1", ""},
		{"v6", "2001:db8::1", "2001:db8::1", ""},
		{"v6-upper", "2001:DB8::A", "2001:db8::a", ""},
		{"v6-full", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", ""},
		{"v4-mapped-stays-v6", "::ffff:10.0.0.1", "::ffff:10.0.0.1", ""},
		{"leading-zero", "010.0.0.1", "", "'010.0.0.1' is not an accepted IP address, '10.0.0.1' is recommended"},
		{"leading-zeros-all", "001.002.003.004", "", "'001.002.003.004' is not an accepted IP address, '1.2.3.4' is recommended"},
		{"octet-too-big", "256.0.0.1", "", "'256.0.0.1' is not a valid IP address"},
		{"three-octets", "10.0.1", "", "'10.0.1' is not a valid IP address"},
		{"integer", "167772161", "", "'167772161' is not a valid IP address"},
		{"zone", "fe80::1%eth0", "", "'fe80::1%eth0' is not a valid IP address"},
		{"space", " 10.0.0.1", "", "' 10.0.0.1' is not a valid IP address"},
		{"trailing-newline", "10.0.0.1\n", "", ""},
		{"empty", "", "", "'' is not a valid IP address"},
		{"cidr", "10.0.0.1/32", "", "'10.0.0.1/32' is not a valid IP address"},
		{"garbage", "x", "", "'x' is not a valid IP address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseIP(tc.in)
			if tc.want == "" {
				checkFault(t, err, 400, "HTTPBadRequest", tc.msg)
				if !errors.Is(err, ErrInvalidValue) {
					t.Fatal("validator fault must wrap ErrInvalidValue")
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("ParseIP(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseCIDR(t *testing.T) {
	tests := []struct {
		name, in, want string
		typ, msg       string
	}{
		{"v4", "10.0.0.0/24", "10.0.0.0/24", "", ""},
		{"v6", "2001:db8::/64", "2001:db8::/64", "", ""},
		{"v6-upper", "2001:DB8::/64", "2001:db8::/64", "", ""},
		{"host-bits-corrected", "10.129.122.5/8", "10.0.0.0/8", "", ""},
		{"host-bits-v6", "2001:db8::1/64", "2001:db8::/64", "", ""},
		{"v4-32", "17.129.122.5/32", "17.129.122.5/32", "", ""},
		{"v6-128", "2001:db8::5/128", "2001:db8::5/128", "", ""},
		{"no-slash", "10.0.2.0", "", "HTTPBadRequest", "'10.0.2.0' is not a valid IP subnet"},
		{"garbage", "foo", "", "HTTPBadRequest", "'foo' is not a valid IP subnet"},
		{"bits-too-long", "10.0.0.0/33", "", "HTTPBadRequest", "'10.0.0.0/33' is not a valid IP subnet"},
		{"bits-leading-zero", "10.0.0.0/024", "", "HTTPBadRequest", ""},
		{"octet-leading-zero", "010.0.0.0/24", "", "HTTPBadRequest", ""},
		{"netmask", "10.0.0.0/255.255.255.0", "", "HTTPBadRequest", ""},
		{"space", "10.0.0.0/24 ", "", "HTTPBadRequest", ""},
		{"zone", "fe80::%eth0/64", "", "HTTPBadRequest", ""},
		{"zero-len-v4", "0.0.0.0/0", "", "InvalidInput", "Invalid input for operation: 0 is not allowed as CIDR prefix length."},
		{"zero-len-v4-host", "10.0.0.0/0", "", "InvalidInput", ""},
		{"zero-len-v6", "::/0", "", "InvalidInput", "Invalid input for operation: 0 is not allowed as CIDR prefix length."},
		{"v6-any-64", "::/64", "", "InvalidInput", "Invalid input for operation: IPv6 subnet '::' is not supported."},
		{"v6-any-host-bits", "::1/64", "", "InvalidInput", ""},
		{"v6-loopback-128", "::1/128", "::1/128", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCIDR(tc.in)
			if tc.typ != "" {
				checkFault(t, err, 400, tc.typ, tc.msg)
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("ParseCIDR(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParsePrefix(t *testing.T) {
	for _, in := range []string{"0.0.0.0/0", "::/0", "::/64"} {
		if _, err := ParsePrefix(in); err != nil {
			t.Errorf("ParsePrefix(%q) = %v", in, err)
		}
	}
	if _, err := ParsePrefix("10.0.0.0"); err == nil {
		t.Error("ParsePrefix without a length must fail")
	}
}

func TestParseRouteCIDR(t *testing.T) {
	tests := []struct {
		name, in, msg string
	}{
		{"ok", "10.0.0.0/8", ""},
		{"default-v4", "0.0.0.0/0", ""},
		{"default-v6", "::/0", ""},
		{"host-route", "192.168.1.5/32", ""},
		{"host-bits", "10.0.0.1/8", "'10.0.0.1/8' is not a valid CIDR"},
		{"no-slash", "10.0.0.0", "'10.0.0.0' is not a valid CIDR"},
		{"loopback", "127.0.0.0/8", "'127.0.0.0/8' is not a routable CIDR"},
		{"loopback-v6", "::1/128", "'::1/128' is not a routable CIDR"},
		{"garbage", "x/8", "'x/8' is not a valid CIDR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRouteCIDR(tc.in)
			if tc.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkFault(t, err, 400, "HTTPBadRequest", tc.msg)
		})
	}
}

func TestForAttr(t *testing.T) {
	_, err := ParseCIDR("bad")
	checkFault(t, ForAttr("cidr", err), 400, "HTTPBadRequest",
		"Invalid input for cidr. Reason: 'bad' is not a valid IP subnet.")
	_, err = ParseCIDR("0.0.0.0/0")
	if ForAttr("cidr", err) != err {
		t.Fatal("ForAttr must pass plugin-level faults through")
	}
	once := ForAttr("cidr", ForAttr("cidr", errBad()))
	checkFault(t, once, 400, "HTTPBadRequest", "Invalid input for cidr. Reason: 'bad' is not a valid IP subnet.")
	if ForAttr("cidr", nil) != nil {
		t.Fatal("ForAttr(nil) must be nil")
	}
}

func TestCheckIPVersion(t *testing.T) {
	a := netip.MustParseAddr("::1")
	checkFault(t, CheckIPVersion("gateway_ip", "::1", a, 4), 400, "InvalidInput",
		"Invalid input for operation: gateway_ip '::1' does not match the ip_version '4'.")
	if err := CheckIPVersion("gateway_ip", "::1", a, 6); err != nil {
		t.Fatal(err)
	}
}

func TestCheckDHCP(t *testing.T) {
	tests := []struct {
		name, cidr, msg string
	}{
		{"v4-24", "10.0.0.0/24", ""},
		{"v4-30", "10.0.0.0/30", ""},
		{"v4-31", "10.0.0.0/31", "Subnet has a prefix length that is incompatible with DHCP service enabled"},
		{"v4-32", "10.0.0.0/32", "Subnet has a prefix length that is incompatible with DHCP service enabled"},
		{"v6-126", "2001:db8::/126", ""},
		{"v6-127", "2001:db8::/127", "Subnet has a prefix length that is incompatible with DHCP service enabled"},
		{"multicast", "224.0.0.0/24", "Multicast IP subnet is not supported if enable_dhcp is True"},
		{"multicast-v6", "ff00::/64", "Multicast IP subnet is not supported if enable_dhcp is True"},
		{"loopback", "127.0.0.0/8", "Loopback IP subnet is not supported if enable_dhcp is True"},
		{"zero-first", "0.0.0.0/8", "First IP '0.0.0.0' of network is not supported if enable_dhcp is True."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckDHCP(netip.MustParsePrefix(tc.cidr))
			if tc.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkFault(t, err, 400, "InvalidInput", "Invalid input for operation: "+tc.msg+".")
		})
	}
}

func TestParseMAC(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"unix", "fa:16:3e:12:34:56", "fa:16:3e:12:34:56"},
		{"upper", "FA:16:3E:AB:CD:EF", "fa:16:3e:ab:cd:ef"},
		{"short-octets", "a:b:c:d:e:f", "0a:0b:0c:0d:0e:0f"},
		{"dashes", "fa-16-3e-12-34-56", "fa:16:3e:12:34:56"},
		{"cisco", "fa16.3e12.3456", "fa:16:3e:12:34:56"},
		{"cisco-colon", "fa16:3e12:3456", "fa:16:3e:12:34:56"},
		{"cisco-short", "1.2.3", "00:01:00:02:00:03"},
		{"pgsql", "fa163e:123456", "fa:16:3e:12:34:56"},
		{"pgsql-dash-5", "a163e-12345", "0a:16:3e:01:23:45"},
		{"bare", "fa163e123456", "fa:16:3e:12:34:56"},
		{"bare-11", "a163e123456", "0a:16:3e:12:34:56"},
		{"multicast-ok", "01:00:5e:00:00:01", "01:00:5e:00:00:01"},
		{"zero", "00:00:00:00:00:00", ""},
		{"zero-bare", "000000000000", ""},
		{"broadcast", "ff:ff:ff:ff:ff:ff", ""},
		{"broadcast-upper", "FF-FF-FF-FF-FF-FF", ""},
		{"mixed-seps", "fa:16-3e:12:34:56", ""},
		{"five-octets", "fa:16:3e:12:34", ""},
		{"seven-octets", "fa:16:3e:12:34:56:78", ""},
		{"long-octet", "fa:16:3e:12:34:567", ""},
		{"empty-octet", "fa::3e:12:34:56", ""},
		{"dots-six", "fa.16.3e.12.34.56", ""},
		{"pgsql-short", "fa16:123456", ""},
		{"bare-10", "fa163e1234", ""},
		{"non-hex", "fg:16:3e:12:34:56", ""},
		{"space", "fa:16:3e:12:34:56 ", ""},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMAC(tc.in)
			if tc.want == "" {
				checkFault(t, err, 400, "HTTPBadRequest", "'"+tc.in+"' is not a valid MAC address")
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseMAC(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestCheckMACNotMulticast(t *testing.T) {
	if err := CheckMACNotMulticast("fa:16:3e:00:00:01"); err != nil {
		t.Fatal(err)
	}
	checkFault(t, CheckMACNotMulticast("01:00:5e:00:00:01"), 400, "HTTPBadRequest",
		"MAC address 01:00:5e:00:00:01 is a multicast address, which is not supported.")
}

func errBad() error { _, err := ParseCIDR("bad"); return err }
