package service

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"muon/internal/agentapi"
)

// Link-local addresses of vm1 (EUI-64) and of a stable-privacy host.
var (
	llVM1    = netip.MustParseAddrPort("[fe80::f816:3eff:feaa:bbcc%ns-dddddddd-dd]:546")
	llVM2    = netip.MustParseAddrPort("[fe80::f816:3eff:feaa:bbdd]:546")
	llOpaque = netip.MustParseAddrPort("[fe80::1234:5678:9abc:def0]:546")
)

func exchange6(t testing.TB, tb *Table, req *dhcpv6.Message, from netip.AddrPort) *dhcpv6.Message {
	t.Helper()
	b, ok := tb.DHCPv6(netA, req.ToBytes(), from)
	if !ok {
		return nil
	}
	r, err := dhcpv6.MessageFromBytes(b)
	if err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
	if r.TransactionID != req.TransactionID {
		t.Fatalf("reply xid %v, want %v", r.TransactionID, req.TransactionID)
	}
	return r
}

func solicit(t testing.TB, mac string, mods ...dhcpv6.Modifier) *dhcpv6.Message {
	t.Helper()
	m, err := dhcpv6.NewSolicit(mustMAC(t, mac), mods...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func leased(r *dhcpv6.Message) []string {
	var out []string
	for _, ia := range r.Options.IANA() {
		for _, a := range ia.Options.Addresses() {
			out = append(out, fmt.Sprintf("%s/%v/%v", a.IPv6Addr, a.PreferredLifetime, a.ValidLifetime))
		}
		if s := ia.Options.Status(); s != nil {
			out = append(out, s.StatusCode.String())
		}
	}
	return out
}

func wantServerID(t testing.TB, r *dhcpv6.Message) {
	t.Helper()
	sid := r.Options.ServerID()
	want := &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mustMAC(t, macDHCP)}
	if sid == nil || !bytes.Equal(sid.ToBytes(), want.ToBytes()) {
		t.Errorf("server id %v, want %v", sid, want)
	}
}

func TestDHCPv6Stateful(t *testing.T) {
	tb := newTestTable(t, Config{LeaseTime: time.Hour})
	sol := solicit(t, macVM1)
	adv := exchange6(t, tb, sol, llVM1)
	if adv == nil || adv.MessageType != dhcpv6.MessageTypeAdvertise {
		t.Fatalf("solicit got %v", adv)
	}
	wantServerID(t, adv)
	if got, want := fmt.Sprint(leased(adv)), "[2001:db8:1::5/1h0m0s/1h0m0s]"; got != want {
		t.Errorf("advertised %s, want %s", got, want)
	}
	if got := fmt.Sprint(adv.Options.DNS()); got != "[2001:4860:4860::8888]" {
		t.Errorf("dns %s", got)
	}
	if l := adv.Options.DomainSearchList(); l == nil || fmt.Sprint(l.Labels) != "[openstacklocal]" {
		t.Errorf("domain search list %v", l)
	}
	if ia := adv.Options.OneIANA(); ia == nil || ia.T1 != 30*time.Minute || ia.T2 != 48*time.Minute {
		t.Errorf("ia_na %v", ia)
	}

	req, err := dhcpv6.NewRequestFromAdvertise(adv)
	if err != nil {
		t.Fatal(err)
	}
	rep := exchange6(t, tb, req, llVM1)
	if rep == nil || rep.MessageType != dhcpv6.MessageTypeReply {
		t.Fatalf("request got %v", rep)
	}
	if got, want := fmt.Sprint(leased(rep)), "[2001:db8:1::5/1h0m0s/1h0m0s]"; got != want {
		t.Errorf("leased %s, want %s", got, want)
	}
	if !bytes.Equal(rep.Options.ClientID().ToBytes(), sol.Options.ClientID().ToBytes()) {
		t.Error("reply lost the client id")
	}

	// Renewing an address the port no longer has: the new one, and the
	// old at lifetime 0.
	renew := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeRenew, TransactionID: dhcpv6.TransactionID{1, 2, 3}}
	renew.AddOption(dhcpv6.OptClientID(sol.Options.ClientID()))
	renew.AddOption(dhcpv6.OptServerID(adv.Options.ServerID()))
	renew.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{1}, Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
		&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("2001:db8:1::99"), PreferredLifetime: time.Hour, ValidLifetime: time.Hour},
	}}})
	rep = exchange6(t, tb, renew, llVM1)
	if got, want := fmt.Sprint(leased(rep)), "[2001:db8:1::5/1h0m0s/1h0m0s 2001:db8:1::99/0s/0s]"; got != want {
		t.Errorf("renew leased %s, want %s", got, want)
	}
}

func TestDHCPv6RapidCommit(t *testing.T) {
	tb := newTestTable(t, Config{})
	rep := exchange6(t, tb, solicit(t, macVM1, dhcpv6.WithRapidCommit), llVM1)
	if rep == nil || rep.MessageType != dhcpv6.MessageTypeReply || rep.GetOneOption(dhcpv6.OptionRapidCommit) == nil {
		t.Fatalf("rapid commit solicit got %v", rep)
	}
	if len(leased(rep)) != 1 {
		t.Errorf("leased %v", leased(rep))
	}
}

func TestDHCPv6InformationRequest(t *testing.T) {
	tb := newTestTable(t, Config{})
	// vm2 is stateless only: no client id, known by its EUI-64
	// link-local address.
	info := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeInformationRequest, TransactionID: dhcpv6.TransactionID{9, 9, 9}}
	info.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList))
	rep := exchange6(t, tb, info, llVM2)
	if rep == nil || rep.MessageType != dhcpv6.MessageTypeReply {
		t.Fatalf("information-request got %v", rep)
	}
	wantServerID(t, rep)
	if got := fmt.Sprint(rep.Options.DNS()); got != "[2001:4860:4860::8888]" {
		t.Errorf("dns %s", got)
	}
	if rep.Options.DomainSearchList() == nil || len(rep.Options.IANA()) != 0 {
		t.Errorf("reply %v", rep.Summary())
	}

	// vm2 has no stateful address: its solicit goes unanswered.
	if r := exchange6(t, tb, solicit(t, macVM2), llVM2); r != nil {
		t.Errorf("a stateless client's solicit got %v", r)
	}

	// Without dns_nameservers, the DHCP port's address.
	n := network()
	n.Subnets[3].DNSNameservers = nil
	tb.SetNetwork(n)
	rep = exchange6(t, tb, info, llVM2)
	if got := fmt.Sprint(rep.Options.DNS()); got != "[2001:db8:3::2]" {
		t.Errorf("dns without dns_nameservers %s, want the dhcp port's", got)
	}
}

func TestDHCPv6Identification(t *testing.T) {
	var asked []netip.Addr
	neighbor := func(netID string, a netip.Addr) net.HardwareAddr {
		asked = append(asked, a)
		if a == llOpaque.Addr() {
			hw, _ := net.ParseMAC(macVM1)
			return hw
		}
		return nil
	}
	tb := newTestTable(t, Config{Neighbor: neighbor})
	uuid := &dhcpv6.DUIDUUID{}
	for _, c := range []struct {
		name string
		duid dhcpv6.DUID
		from netip.AddrPort
		ok   bool
	}{
		{"duid-ll", &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mustMAC(t, macVM1)}, llOpaque, true},
		{"duid-llt", &dhcpv6.DUIDLLT{HWType: iana.HWTypeEthernet, Time: 7, LinkLayerAddr: mustMAC(t, macVM1)}, llOpaque, true},
		{"eui64", uuid, llVM1, true},
		{"neighbor", uuid, llOpaque, true},
		{"unknown", &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mustMAC(t, "fa:16:3e:12:34:56")},
			netip.MustParseAddrPort("[fe80::f816:3eff:fe12:3456]:546"), false},
		{"unknown-opaque", uuid, netip.MustParseAddrPort("[fe80::99]:546"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sol := solicit(t, macVM1, dhcpv6.WithClientID(c.duid))
			sol.Options.Del(dhcpv6.OptionClientID)
			sol.AddOption(dhcpv6.OptClientID(c.duid))
			r := exchange6(t, tb, sol, c.from)
			if (r != nil) != c.ok {
				t.Fatalf("answered %v, want %v", r != nil, c.ok)
			}
		})
	}
	if len(asked) == 0 || asked[0].Zone() != "" {
		t.Errorf("neighbor asked for %v", asked)
	}
}

func TestDHCPv6Dropped(t *testing.T) {
	tb := newTestTable(t, Config{})
	otherServer := &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mustMAC(t, "fa:16:3e:00:00:02")}
	withServer := solicit(t, macVM1, dhcpv6.WithServerID(otherServer))
	req := solicit(t, macVM1)
	req.MessageType = dhcpv6.MessageTypeRequest // no server id
	noClient := solicit(t, macVM1)
	noClient.Options.Del(dhcpv6.OptionClientID)
	adv := solicit(t, macVM1)
	adv.MessageType = dhcpv6.MessageTypeAdvertise
	relay, err := dhcpv6.EncapsulateRelay(solicit(t, macVM1), dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:1::1"), net.ParseIP("fe80::1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"other-server", withServer.ToBytes()},
		{"request-without-server", req.ToBytes()},
		{"no-client-id", noClient.ToBytes()},
		{"advertise", adv.ToBytes()},
		{"relayed", relay.ToBytes()},
		{"short", []byte{1, 2}},
		{"truncated-option", append(solicit(t, macVM1).ToBytes(), 0, 1, 0, 9)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if b, ok := tb.DHCPv6(netA, c.b, llVM1); ok {
				t.Fatalf("answered %x", b)
			}
		})
	}
	if b, ok := tb.DHCPv6(netB, solicit(t, macVM1).ToBytes(), llVM1); ok {
		t.Fatalf("unknown network answered %x", b)
	}
}

func TestDHCPv6ConfirmRelease(t *testing.T) {
	tb := newTestTable(t, Config{})
	status := func(r *dhcpv6.Message) string {
		if r == nil {
			return "none"
		}
		if s := r.Options.Status(); s != nil {
			return s.StatusCode.String()
		}
		return "no status"
	}
	confirm := func(addr string) *dhcpv6.Message {
		m := solicit(t, macVM1)
		m.MessageType = dhcpv6.MessageTypeConfirm
		m.Options.Del(dhcpv6.OptionIANA)
		m.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{1}, Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
			&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP(addr)}}}})
		return m
	}
	if got := status(exchange6(t, tb, confirm("2001:db8:1::5"), llVM1)); got != "Success" {
		t.Errorf("confirm on link: %s", got)
	}
	if got := status(exchange6(t, tb, confirm("2001:db8:99::5"), llVM1)); got != "NotOnLink" {
		t.Errorf("confirm off link: %s", got)
	}
	rel := solicit(t, macVM1, dhcpv6.WithServerID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mustMAC(t, macDHCP)}))
	rel.MessageType = dhcpv6.MessageTypeRelease
	if got := status(exchange6(t, tb, rel, llVM1)); got != "Success" {
		t.Errorf("release: %s", got)
	}
}

func TestDHCPv6ExtraOptions(t *testing.T) {
	tb := newTestTable(t, Config{})
	p := vm1()
	p.ExtraDHCPOpts = []agentapi.ExtraDHCPOpt{
		{Name: "option6:dns-server", Value: "[2001:db8::53]", IPVersion: 6},
		{Name: "bootfile-url", Value: "tftp://[2001:db8::1]/boot", IPVersion: 6},
		{Name: "option6:24", Value: "", IPVersion: 6},         // removes the domain list
		{Name: "1", Value: "00:01", IPVersion: 6},             // reserved: skipped
		{Name: "dns-server", Value: "10.0.0.1", IPVersion: 6}, // not v6: skipped
	}
	tb.SetPort(p)
	r := exchange6(t, tb, solicit(t, macVM1), llVM1)
	if r == nil {
		t.Fatal("no advertise")
	}
	if got := fmt.Sprint(r.Options.DNS()); got != "[2001:db8::53]" {
		t.Errorf("dns %s", got)
	}
	if got := r.Options.BootFileURL(); got != "tftp://[2001:db8::1]/boot" {
		t.Errorf("bootfile url %q", got)
	}
	if r.Options.DomainSearchList() != nil {
		t.Error("domain search list not removed")
	}
	wantServerID(t, r)
}
