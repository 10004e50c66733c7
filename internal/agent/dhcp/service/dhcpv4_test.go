package service

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"muon/internal/agentapi"
)

var broadcast68 = netip.MustParseAddrPort("255.255.255.255:68")

func discover(t testing.TB, mac string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	d, err := dhcpv4.NewDiscovery(mustMAC(t, mac), mods...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// exchange4 sends req and decodes the reply, nil when there is none.
func exchange4(t testing.TB, tb *Table, netID string, req *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, netip.AddrPort) {
	t.Helper()
	b, to, ok := tb.DHCPv4(netID, req.ToBytes())
	if !ok {
		return nil, to
	}
	r, err := dhcpv4.FromBytes(b)
	if err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
	if r.OpCode != dhcpv4.OpcodeBootReply || r.TransactionID != req.TransactionID || !bytes.Equal(r.ClientHWAddr, req.ClientHWAddr) {
		t.Fatalf("reply header %v does not answer %v", r.Summary(), req.Summary())
	}
	return r, to
}

func routesOf(r *dhcpv4.DHCPv4, code uint8) []string {
	b := r.Options[code]
	if b == nil {
		return nil
	}
	var rs dhcpv4.Routes
	if err := rs.FromBytes(b); err != nil {
		return []string{"bad: " + err.Error()}
	}
	var out []string
	for _, x := range rs {
		out = append(out, x.Dest.String()+" via "+x.Router.String())
	}
	return out
}

func u32(b []byte) uint32 {
	if len(b) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func TestDHCPv4Discover(t *testing.T) {
	tb := newTestTable(t, Config{})
	req := discover(t, macVM1)
	r, to := exchange4(t, tb, netA, req)
	if r == nil {
		t.Fatal("no offer")
	}
	if to != broadcast68 {
		t.Errorf("offer goes to %v, want %v", to, broadcast68)
	}
	check := []struct {
		name, got, want string
	}{
		{"type", r.MessageType().String(), "OFFER"},
		{"yiaddr", r.YourIPAddr.String(), "10.0.0.5"},
		{"ciaddr", r.ClientIPAddr.String(), "0.0.0.0"},
		{"mask", net.IP(r.SubnetMask()).String(), "255.255.255.0"},
		{"router", fmt.Sprint(r.Router()), "[10.0.0.1]"},
		{"dns", fmt.Sprint(r.DNS()), "[8.8.8.8 8.8.4.4]"},
		{"domain", r.DomainName(), "openstacklocal"},
		{"hostname", r.HostName(), "vm1"},
		{"server", r.ServerIdentifier().String(), "10.0.0.2"},
		{"broadcast", r.BroadcastAddress().String(), "10.0.0.255"},
		{"lease", fmt.Sprint(u32(r.Options[optLeaseTime])), "86400"},
		{"t1", fmt.Sprint(u32(r.Options[optRenewal])), "43200"},
		{"t2", fmt.Sprint(u32(r.Options[optRebinding])), "75600"},
		{"mtu", fmt.Sprint(r.Options[optMTU]), fmt.Sprint([]byte{0x05, 0xaa})},
		{"121", strings.Join(routesOf(r, optClasslessRoute), ", "),
			"192.168.0.0/16 via 10.0.0.254, 169.254.169.254/32 via 10.0.0.2, 0.0.0.0/0 via 10.0.0.1"},
		{"249", strings.Join(routesOf(r, optMSClassless), ", "),
			"192.168.0.0/16 via 10.0.0.254, 169.254.169.254/32 via 10.0.0.2, 0.0.0.0/0 via 10.0.0.1"},
	}
	for _, c := range check {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if s := &tb.Stats().DHCPv4; s.Requests.Load() != 1 || s.Replies.Load() != 1 || s.Dropped.Load() != 0 {
		t.Errorf("stats: %d requests, %d replies, %d dropped", s.Requests.Load(), s.Replies.Load(), s.Dropped.Load())
	}
}

func TestDHCPv4Request(t *testing.T) {
	tb := newTestTable(t, Config{LeaseTime: time.Hour})
	offer, _ := exchange4(t, tb, netA, discover(t, macVM1))
	req, err := dhcpv4.NewRequestFromOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	ack, to := exchange4(t, tb, netA, req)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.YourIPAddr.String() != "10.0.0.5" {
		t.Fatalf("request got %v", ack)
	}
	if to != broadcast68 {
		t.Errorf("ack goes to %v, want %v", to, broadcast68)
	}
	if got := ack.IPAddressLeaseTime(0); got != time.Hour {
		t.Errorf("lease %v, want 1h", got)
	}

	// Renewing: unicast from the client's address, answered there.
	renew, err := dhcpv4.NewRenewFromAck(ack)
	if err != nil {
		t.Fatal(err)
	}
	ack2, to := exchange4(t, tb, netA, renew)
	if ack2 == nil || ack2.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("renew got %v", ack2)
	}
	if want := netip.MustParseAddrPort("10.0.0.5:68"); to != want {
		t.Errorf("renew ack goes to %v, want %v", to, want)
	}
	if ack2.ClientIPAddr.String() != "10.0.0.5" {
		t.Errorf("renew ack ciaddr %v", ack2.ClientIPAddr)
	}
}

func TestDHCPv4Nak(t *testing.T) {
	tb := newTestTable(t, Config{})
	for _, c := range []struct {
		name string
		req  *dhcpv4.DHCPv4
	}{
		{"init-reboot", discover(t, macVM1, dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 0, 0, 77))))},
		{"renewing", discover(t, macVM1, dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
			dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 77)))},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, to := exchange4(t, tb, netA, c.req)
			if r == nil || r.MessageType() != dhcpv4.MessageTypeNak {
				t.Fatalf("got %v, want a NAK", r)
			}
			if to != broadcast68 {
				t.Errorf("nak goes to %v, want broadcast", to)
			}
			if r.ServerIdentifier().String() != "10.0.0.2" || !r.YourIPAddr.IsUnspecified() {
				t.Errorf("nak: server %v, yiaddr %v", r.ServerIdentifier(), r.YourIPAddr)
			}
		})
	}
}

func TestDHCPv4AddressChanged(t *testing.T) {
	tb := newTestTable(t, Config{})
	offer, _ := exchange4(t, tb, netA, discover(t, macVM1))
	old, err := dhcpv4.NewRequestFromOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	p := vm1()
	p.FixedIPs[0].IPAddress = "10.0.0.50"
	tb.SetPort(p)
	if r, _ := exchange4(t, tb, netA, old); r == nil || r.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("request for the old address got %v, want a NAK", r)
	}
	r, _ := exchange4(t, tb, netA, discover(t, macVM1))
	if r == nil || r.YourIPAddr.String() != "10.0.0.50" {
		t.Fatalf("discover after the change got %v, want 10.0.0.50", r)
	}
	if _, ok := tb.lookupIP(netA, netip.MustParseAddr("10.0.0.5")); ok != nil {
		t.Error("the old address still names the port")
	}
}

func TestDHCPv4Dropped(t *testing.T) {
	tb := newTestTable(t, Config{})
	down := vm2()
	down.ID, down.MAC, down.AdminStateUp = "down", "fa:16:3e:00:00:99", false
	tb.SetPort(down)
	bootReply := discover(t, macVM1)
	bootReply.OpCode = dhcpv4.OpcodeBootReply
	longHW := discover(t, macVM1)
	longHW.ClientHWAddr = append(longHW.ClientHWAddr, 0, 0)
	otherServer := discover(t, macVM1, dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 0, 0, 5))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 3))))
	noType := discover(t, macVM1)
	noType.Options.Del(dhcpv4.OptionDHCPMessageType)
	for _, c := range []struct {
		name  string
		netID string
		req   []byte
	}{
		{"unknown-mac", netA, discover(t, "fa:16:3e:12:34:56").ToBytes()},
		{"unknown-network", netB, discover(t, macVM1).ToBytes()},
		{"admin-down", netA, discover(t, "fa:16:3e:00:00:99").ToBytes()},
		{"boot-reply", netA, bootReply.ToBytes()},
		{"hw-length", netA, longHW.ToBytes()},
		{"other-server", netA, otherServer.ToBytes()},
		{"no-type", netA, noType.ToBytes()},
		{"release", netA, discover(t, macVM1, dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease)).ToBytes()},
		{"decline", netA, discover(t, macVM1, dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline)).ToBytes()},
		{"short", netA, discover(t, macVM1).ToBytes()[:100]},
		{"bad-cookie", netA, func() []byte { b := discover(t, macVM1).ToBytes(); b[236] = 0; return b }()},
		{"empty", netA, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := tb.Stats().DHCPv4.Dropped.Load()
			if b, _, ok := tb.DHCPv4(c.netID, c.req); ok || b != nil {
				t.Fatalf("answered: %x", b)
			}
			if tb.Stats().DHCPv4.Dropped.Load() != before+1 {
				t.Error("drop not counted")
			}
		})
	}
}

func TestDHCPv4PortRemoved(t *testing.T) {
	tb := newTestTable(t, Config{})
	if r, _ := exchange4(t, tb, netA, discover(t, macVM1)); r == nil {
		t.Fatal("no offer before the removal")
	}
	tb.RemovePort(pVM1)
	if r, _ := exchange4(t, tb, netA, discover(t, macVM1)); r != nil {
		t.Fatal("a removed port is answered")
	}
	if r, _ := exchange4(t, tb, netA, discover(t, macVM2)); r == nil {
		t.Fatal("another port lost its answers")
	}
	tb.RemoveNetwork(netA)
	if r, _ := exchange4(t, tb, netA, discover(t, macVM2)); r != nil {
		t.Fatal("a port of a removed network is answered")
	}
}

func TestDHCPv4PortBeforeNetwork(t *testing.T) {
	tb := NewTable(Config{}, nil)
	tb.SetPort(vm1())
	if r, _ := exchange4(t, tb, netA, discover(t, macVM1)); r != nil {
		t.Fatal("answered without the network")
	}
	tb.SetNetwork(network())
	if r, _ := exchange4(t, tb, netA, discover(t, macVM1)); r == nil {
		t.Fatal("not answered once the network came")
	}
	n := network()
	n.Subnets[0].DNSNameservers = nil
	tb.SetNetwork(n) // replaces the facts, keeps the ports
	r, _ := exchange4(t, tb, netA, discover(t, macVM1))
	if r == nil {
		t.Fatal("SetNetwork lost the ports")
	}
	if got := fmt.Sprint(r.DNS()); got != "[10.0.0.2]" {
		t.Errorf("dns without dns_nameservers = %s, want the dhcp port [10.0.0.2]", got)
	}
}

func TestDHCPv4InformAndRelay(t *testing.T) {
	tb := newTestTable(t, Config{})
	inform, err := dhcpv4.NewInform(mustMAC(t, macVM1), net.IPv4(10, 0, 0, 5))
	if err != nil {
		t.Fatal(err)
	}
	r, to := exchange4(t, tb, netA, inform)
	if r == nil || r.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("inform got %v", r)
	}
	if r.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || !r.YourIPAddr.IsUnspecified() {
		t.Errorf("inform ack has a lease: %v", r.Summary())
	}
	if want := netip.MustParseAddrPort("10.0.0.5:68"); to != want {
		t.Errorf("inform ack goes to %v, want %v", to, want)
	}
	if len(r.DNS()) == 0 || r.DomainName() == "" {
		t.Errorf("inform ack lacks configuration: %v", r.Summary())
	}

	relayed := discover(t, macVM1, dhcpv4.WithGatewayIP(net.IPv4(10, 1, 0, 1)))
	r, to = exchange4(t, tb, netA, relayed)
	if r == nil || r.GatewayIPAddr.String() != "10.1.0.1" {
		t.Fatalf("relayed discover got %v", r)
	}
	if want := netip.MustParseAddrPort("10.1.0.1:67"); to != want {
		t.Errorf("relayed offer goes to %v, want %v", to, want)
	}
}

func TestDHCPv4MetadataRoute(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(s *agentapi.DHCPSubnet)
		want   string
	}{
		{"isolated", func(*agentapi.DHCPSubnet) {},
			"192.168.0.0/16 via 10.0.0.254, 169.254.169.254/32 via 10.0.0.2, 0.0.0.0/0 via 10.0.0.1"},
		{"routed", func(s *agentapi.DHCPSubnet) { s.Routed = true },
			"192.168.0.0/16 via 10.0.0.254, 0.0.0.0/0 via 10.0.0.1"},
		{"routed-no-host-routes", func(s *agentapi.DHCPSubnet) { s.Routed, s.HostRoutes = true, nil }, ""},
		{"routed-no-gateway", func(s *agentapi.DHCPSubnet) { s.Routed, s.GatewayIP, s.HostRoutes = true, "", nil },
			"169.254.169.254/32 via 10.0.0.2"},
		{"host-route-default", func(s *agentapi.DHCPSubnet) {
			s.HostRoutes = []agentapi.HostRoute{{Destination: "0.0.0.0/0", NextHop: "10.0.0.9"}, {Destination: "bad", NextHop: "x"}}
		}, "0.0.0.0/0 via 10.0.0.9, 169.254.169.254/32 via 10.0.0.2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestTable(t, Config{})
			n := network()
			c.change(&n.Subnets[0])
			tb.SetNetwork(n)
			r, _ := exchange4(t, tb, netA, discover(t, macVM1))
			if r == nil {
				t.Fatal("no offer")
			}
			if got := strings.Join(routesOf(r, optClasslessRoute), ", "); got != c.want {
				t.Errorf("121 = %q, want %q", got, c.want)
			}
			if got := strings.Join(routesOf(r, optMSClassless), ", "); got != c.want {
				t.Errorf("249 = %q, want %q", got, c.want)
			}
		})
	}
}

func TestDHCPv4SiblingSubnets(t *testing.T) {
	tb := newTestTable(t, Config{})
	n := network()
	n.Subnets = append(n.Subnets, agentapi.DHCPSubnet{ID: "other", IPVersion: 4, CIDR: "10.9.0.0/24", EnableDHCP: false})
	n.Subnets[0].HostRoutes = nil
	tb.SetNetwork(n)
	r, _ := exchange4(t, tb, netA, discover(t, macVM1))
	want := "10.9.0.0/24 via 0.0.0.0, 169.254.169.254/32 via 10.0.0.2, 0.0.0.0/0 via 10.0.0.1"
	if got := strings.Join(routesOf(r, optClasslessRoute), ", "); got != want {
		t.Errorf("121 = %q, want %q", got, want)
	}
}

func TestDHCPv4ExtraOptions(t *testing.T) {
	tb := newTestTable(t, Config{})
	p := vm1()
	p.ExtraDHCPOpts = []agentapi.ExtraDHCPOpt{
		{Name: "ntp-server", Value: "10.0.0.7,10.0.0.8", IPVersion: 4},
		{Name: "tftp-server", Value: "tftp.example", IPVersion: 4},
		{Name: "bootfile-name", Value: "pxelinux.0", IPVersion: 4},
		{Name: "server-ip-address", Value: "10.0.0.9", IPVersion: 4},
		{Name: "tftp-server-address", Value: "10.0.0.9", IPVersion: 4},
		{Name: "option:mtu", Value: "1400", IPVersion: 4},
		{Name: "dns-server", Value: "1.1.1.1", IPVersion: 4},
		{Name: "router", Value: "", IPVersion: 4},
		{Name: "42", Value: "10.0.0.10", IPVersion: 4}, // by number: replaces ntp-server's
		{Name: "option:200", Value: "01:02:0a", IPVersion: 4},
		{Name: "201", Value: "hello", IPVersion: 4},
		{Name: "domain-search", Value: "a.example,b.example", IPVersion: 4},
		{Name: "classless-static-route", Value: "172.16.0.0/12,10.0.0.1", IPVersion: 4},
		{Name: "ntp-server", Value: "not-an-address", IPVersion: 4}, // skipped
		{Name: "no-such-option", Value: "1", IPVersion: 4},          // skipped
		{Name: "tag:ipxe,bootfile-name", Value: "x", IPVersion: 4},  // skipped
		{Name: "53", Value: "1", IPVersion: 4},                      // skipped
		{Name: "mtu", Value: "70000", IPVersion: 4},                 // skipped
		{Name: "bootfile-name", Value: "v6only", IPVersion: 6},      // not v4
	}
	tb.SetPort(p)
	r, _ := exchange4(t, tb, netA, discover(t, macVM1))
	if r == nil {
		t.Fatal("no offer")
	}
	check := []struct {
		name, got, want string
	}{
		{"type", r.MessageType().String(), "OFFER"},
		{"ntp", fmt.Sprint(r.NTPServers()), "[10.0.0.10]"},
		{"tftp", r.TFTPServerName(), "tftp.example"},
		{"bootfile", r.BootFileNameOption(), "pxelinux.0"},
		{"siaddr", r.ServerIPAddr.String(), "10.0.0.9"},
		{"150", fmt.Sprint(r.Options[150]), fmt.Sprint([]byte{10, 0, 0, 9})},
		{"mtu", fmt.Sprint(binary.BigEndian.Uint16(r.Options[optMTU])), "1400"},
		{"dns", fmt.Sprint(r.DNS()), "[1.1.1.1]"},
		{"router", fmt.Sprint(r.Options.Has(dhcpv4.OptionRouter)), "false"},
		{"200", fmt.Sprint(r.Options[200]), "[1 2 10]"},
		{"201", string(r.Options[201]), "hello"},
		{"119", r.DomainSearch().String(), "[a.example b.example]"},
		{"121", strings.Join(routesOf(r, optClasslessRoute), ", "), "172.16.0.0/12 via 10.0.0.1"},
		{"249", strings.Join(routesOf(r, optMSClassless), ", "), "172.16.0.0/12 via 10.0.0.1"},
		{"hostname", r.HostName(), "vm1"},
	}
	for _, c := range check {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestParseExtra4(t *testing.T) {
	for _, c := range []struct {
		name, value string
		code        uint8
		val         []byte
		ok          bool
	}{
		{"3", "10.0.0.1", 3, []byte{10, 0, 0, 1}, true},
		{"option:router", "10.0.0.1", 3, []byte{10, 0, 0, 1}, true},
		{"Router", "10.0.0.1", 3, []byte{10, 0, 0, 1}, true},
		{"T1", "100", 58, []byte{0, 0, 0, 100}, true},
		{"ip-forward-enable", "1", 19, []byte{1}, true},
		{"static-route", "10.1.0.0,10.0.0.1", 33, []byte{10, 1, 0, 0, 10, 0, 0, 1}, true},
		{"static-route", "10.1.0.0", 0, nil, false},
		{"230", "300", 230, []byte{1, 44}, true},
		{"230", "\"quoted\"", 230, []byte("quoted"), true},
		{"netmask", "1.2.3.4,5.6.7.8", 0, nil, false},
		{"classless-static-route", "10.0.0.0/8", 0, nil, false},
		{"classless-static-route", "::/0,10.0.0.1", 0, nil, false},
		{"domain-search", "a..b", 0, nil, false},
		{"256", "1", 0, nil, false},
		{"0", "1", 0, nil, false},
		{"server-ip-address", "::1", 0, nil, false},
	} {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			o, err := parseExtra4(c.name, c.value)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok %v", err, c.ok)
			}
			if c.ok && (o.code != c.code || !slices.Equal(o.val, c.val)) {
				t.Errorf("got %d %v, want %d %v", o.code, o.val, c.code, c.val)
			}
		})
	}
}

func TestDHCPv4RateLimit(t *testing.T) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	tb := newTestTable(t, Config{RatePerMAC: 1, Burst: 3, Now: c.now})
	answered := func(mac string) bool {
		_, _, ok := tb.DHCPv4(netA, discover(t, mac).ToBytes())
		return ok
	}
	var got []bool
	for range 5 {
		got = append(got, answered(macVM1))
	}
	if want := []bool{true, true, true, false, false}; !slices.Equal(got, want) {
		t.Errorf("answers %v, want %v", got, want)
	}
	if !answered(macVM2) {
		t.Error("another MAC is limited too")
	}
	if n := tb.Stats().DHCPv4.RateLimited.Load(); n != 2 {
		t.Errorf("RateLimited = %d, want 2", n)
	}
	c.t = c.t.Add(time.Second)
	if !answered(macVM1) {
		t.Error("no token after a second")
	}
	if answered(macVM1) {
		t.Error("two tokens after a second")
	}
}

func TestDHCPv4InfiniteLease(t *testing.T) {
	tb := newTestTable(t, Config{LeaseTime: -1})
	r, _ := exchange4(t, tb, netA, discover(t, macVM1))
	if r == nil || u32(r.Options[optLeaseTime]) != 0xffffffff || r.Options.Has(dhcpv4.OptionRenewTimeValue) {
		t.Fatalf("infinite lease: %v", r)
	}
}

func TestDHCPv4LargeReply(t *testing.T) {
	tb := newTestTable(t, Config{})
	n := network()
	for i := range 60 {
		n.Subnets[0].HostRoutes = append(n.Subnets[0].HostRoutes,
			agentapi.HostRoute{Destination: fmt.Sprintf("172.%d.0.0/16", 16+i), NextHop: "10.0.0.254"})
	}
	tb.SetNetwork(n)
	b, _, ok := tb.DHCPv4(netA, discover(t, macVM1).ToBytes())
	if !ok {
		t.Fatal("no offer")
	}
	r, err := dhcpv4.FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Options.Has(dhcpv4.GenericOptionCode(optMSClassless)) || !r.Options.Has(dhcpv4.OptionClasslessStaticRoute) {
		t.Errorf("%d-byte reply: 249 %v, 121 %v", len(b), r.Options.Has(dhcpv4.GenericOptionCode(optMSClassless)), r.Options.Has(dhcpv4.OptionClasslessStaticRoute))
	}
}
