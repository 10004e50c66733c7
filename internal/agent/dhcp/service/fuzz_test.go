package service

import (
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/miekg/dns"

	"muon/internal/agentapi"
)

// fuzzTable is the test table with extra options on vm1, so that the
// fuzzers reach every option path; no upstreams: DNS never leaves.
func fuzzTable(t testing.TB) *Table {
	tb := newTestTable(t, Config{RatePerMAC: -1})
	p := vm1()
	p.ExtraDHCPOpts = []agentapi.ExtraDHCPOpt{
		{Name: "bootfile-name", Value: "pxelinux.0", IPVersion: 4},
		{Name: "server-ip-address", Value: "10.0.0.9", IPVersion: 4},
		{Name: "option6:bootfile-url", Value: "http://x/boot", IPVersion: 6},
	}
	tb.SetPort(p)
	return tb
}

func FuzzDHCPv4(f *testing.F) {
	tb := fuzzTable(f)
	d := discover(f, macVM1)
	f.Add(d.ToBytes())
	offer, _ := exchange4(f, tb, netA, d)
	if req, err := dhcpv4.NewRequestFromOffer(offer); err == nil {
		f.Add(req.ToBytes())
	}
	if inf, err := dhcpv4.NewInform(mustMAC(f, macVM1), net.IPv4(10, 0, 0, 5)); err == nil {
		f.Add(inf.ToBytes())
	}
	f.Add(discover(f, macVM2, dhcpv4.WithGatewayIP(net.IPv4(10, 1, 0, 1)),
		dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(1500))).ToBytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		reply, to, ok := tb.DHCPv4(netA, b)
		if !ok {
			if reply != nil {
				t.Fatal("a reply with ok false")
			}
			return
		}
		if _, err := dhcpv4.FromBytes(reply); err != nil {
			t.Fatalf("reply does not decode: %v", err)
		}
		if !to.IsValid() || !to.Addr().Is4() {
			t.Fatalf("reply to %v", to)
		}
	})
}

func FuzzDHCPv6(f *testing.F) {
	tb := fuzzTable(f)
	sol := solicit(f, macVM1)
	f.Add(sol.ToBytes(), true)
	adv := exchange6(f, tb, sol, llVM1)
	if req, err := dhcpv6.NewRequestFromAdvertise(adv); err == nil {
		f.Add(req.ToBytes(), true)
	}
	info := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeInformationRequest}
	f.Add(info.ToBytes(), false)
	f.Add(solicit(f, macVM1, dhcpv6.WithRapidCommit).ToBytes(), false)
	f.Fuzz(func(t *testing.T, b []byte, eui bool) {
		from := llOpaque
		if eui {
			from = llVM2
		}
		reply, ok := tb.DHCPv6(netA, b, from)
		if !ok {
			return
		}
		if _, err := dhcpv6.MessageFromBytes(reply); err != nil {
			t.Fatalf("reply does not decode: %v", err)
		}
	})
}

func FuzzDNS(f *testing.F) {
	tb := fuzzTable(f)
	for _, q := range []struct {
		name string
		t    uint16
	}{
		{"vm1.openstacklocal.", dns.TypeA}, {"vm1.openstacklocal.", dns.TypeAAAA},
		{"5.0.0.10.in-addr.arpa.", dns.TypePTR}, {"nope.openstacklocal.", dns.TypeANY},
		{"example.com.", dns.TypeA}, {"openstacklocal.", dns.TypeSOA},
	} {
		m := new(dns.Msg).SetQuestion(q.name, q.t)
		b, _ := m.Pack()
		f.Add(b, false)
		m.SetEdns0(4096, true)
		b, _ = m.Pack()
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, tcp bool) {
		reply, ok := tb.DNS(t.Context(), netA, b, tcp)
		if !ok {
			return
		}
		r := new(dns.Msg)
		if err := r.Unpack(reply); err != nil {
			t.Fatalf("reply does not decode: %v", err)
		}
		if !r.Response {
			t.Fatal("reply is no response")
		}
		if !tcp && len(reply) > 65535 {
			t.Fatalf("udp reply of %d bytes", len(reply))
		}
	})
}

func FuzzExtraOptions(f *testing.F) {
	for _, s := range [][2]string{
		{"ntp-server", "10.0.0.1,10.0.0.2"}, {"option:121", "10.0.0.0/8,10.0.0.1"}, {"119", "a.b,c.d"},
		{"250", "01:02"}, {"option6:dns-server", "[2001:db8::1]"}, {"option6:99", "x"}, {"T1", "9"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		if o, err := parseExtra4(name, value); err == nil && o.code == 0 && !o.siaddr.IsValid() {
			t.Fatalf("option 0 accepted: %q %q", name, value)
		}
		if o, err := parseExtra6(name, value); err == nil && reserved6(o.code) {
			t.Fatalf("reserved option accepted: %q %q", name, value)
		}
	})
}

func FuzzReverseAddr(f *testing.F) {
	for _, a := range []string{"10.0.0.5", "2001:db8::1"} {
		r, _ := dns.ReverseAddr(a)
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, name string) {
		a, ok := reverseAddr(name)
		if !ok {
			return
		}
		back, err := dns.ReverseAddr(a.String())
		if err != nil {
			t.Fatalf("%q -> %v: %v", name, a, err)
		}
		if b, ok := reverseAddr(back); !ok || b.Unmap() != a.Unmap() {
			t.Fatalf("%q -> %v -> %q -> %v", name, a, back, b)
		}
	})
}
