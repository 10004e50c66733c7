package ipam

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
)

func TestGenerateMAC(t *testing.T) {
	tests := []struct {
		name, base string
		random     []byte
		want       string
	}{
		{"default", "fa:16:3e:00:00:00", []byte{1, 2, 3}, "fa:16:3e:01:02:03"},
		{"fourth-kept", "fa:16:3e:4f:00:00", []byte{1, 2, 3}, "fa:16:3e:4f:02:03"},
		{"last-two-always-random", "fa:16:3e:4f:11:22", []byte{1, 2, 3}, "fa:16:3e:4f:02:03"},
		{"first-three-kept-even-zero", "00:16:00:00:00:00", []byte{0xaa, 0xbb, 0xcc}, "00:16:00:aa:bb:cc"},
		{"upper-base", "FA:16:3E:00:00:00", []byte{0xff, 0xff, 0xff}, "fa:16:3e:ff:ff:ff"},
		{"multicast-base", "fb:16:3e:00:00:00", []byte{1, 2, 3}, ""},
		{"short-octets", "fa:16:3e:0:0:0", []byte{1, 2, 3}, ""},
		{"dashes", "fa-16-3e-00-00-00", []byte{1, 2, 3}, ""},
		{"short-random", "fa:16:3e:00:00:00", []byte{1, 2}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := GenerateMAC(tc.base, bytes.NewReader(tc.random))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("GenerateMAC = %s, want error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("GenerateMAC = %q, %v; want %s", got, err, tc.want)
			}
		})
	}
	got, err := GenerateMAC("fa:16:3e:00:00:00", rand.Reader)
	if err != nil || !strings.HasPrefix(got, "fa:16:3e:") {
		t.Fatalf("GenerateMAC(crypto) = %q, %v", got, err)
	}
	if _, err := ParseMAC(got); err != nil {
		t.Fatal(err)
	}
}

func TestEUI64(t *testing.T) {
	tests := []struct {
		name, prefix, mac, want string
	}{
		{"doc-example", "2001:db8::/64", "00:01:02:03:04:05", "2001:db8::201:2ff:fe03:405"},
		{"openstack-mac", "2001:db8::/64", "fa:16:3e:33:44:55", "2001:db8::f816:3eff:fe33:4455"},
		{"lla", "fe80::/64", "fa:16:3e:33:44:55", "fe80::f816:3eff:fe33:4455"},
		{"ul-bit-set", "2001:db8::/64", "02:00:00:00:00:01", "2001:db8::ff:fe00:1"},
		{"host-bits-ignored", "2001:db8::1234/64", "00:01:02:03:04:05", "2001:db8::201:2ff:fe03:405"},
		{"short-prefix", "2001:db8::/48", "00:01:02:03:04:05", "2001:db8::201:2ff:fe03:405"},
		{"cisco-mac", "2001:db8::/64", "fa16.3e33.4455", "2001:db8::f816:3eff:fe33:4455"},
		{"v4", "10.0.0.0/24", "fa:16:3e:33:44:55", ""},
		{"long-prefix", "2001:db8::/80", "fa:16:3e:33:44:55", ""},
		{"bad-mac", "2001:db8::/64", "zz:16:3e:33:44:55", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EUI64(pfx(tc.prefix), tc.mac)
			if tc.want == "" {
				checkFault(t, err, 400, "InvalidInput", "")
				return
			}
			if err != nil || got != ip(tc.want) {
				t.Fatalf("EUI64 = %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}
