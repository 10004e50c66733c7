package service

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/insomniacslk/dhcp/rfc1035label"
)

// DHCPv6 ports.
const (
	ServerPort6 = 547
	ClientPort6 = 546
)

// DHCPv6 answers one DHCPv6 message received on the network netID from
// the client address from: the encoded reply, to send back to from, or ok
// false to send nothing.
//
// The client is the admin-up port whose MAC is in its DUID (DUID-LL or
// DUID-LLT), else in its EUI-64 link-local source address, else the one
// Config.Neighbor tells. SOLICIT gets an ADVERTISE (a REPLY with rapid
// commit), REQUEST, RENEW and REBIND a REPLY with the port's address on
// its dhcpv6-stateful subnet in each IA_NA, CONFIRM a REPLY telling
// whether its addresses are on link, INFORMATION-REQUEST a REPLY with
// DNS servers and the domain search list, RELEASE and DECLINE a REPLY
// with status Success. Relayed messages are not answered.
func (t *Table) DHCPv6(netID string, req []byte, from netip.AddrPort) (reply []byte, ok bool) {
	c := &t.stats.DHCPv6
	c.Requests.Add(1)
	r, v := t.dhcpv6(netID, req, from)
	switch v {
	case replied:
		c.Replies.Add(1)
		return r, true
	case limited:
		c.RateLimited.Add(1)
	default:
		c.Dropped.Add(1)
	}
	return nil, false
}

func (t *Table) dhcpv6(netID string, b []byte, from netip.AddrPort) ([]byte, verdict) {
	if len(b) < 4 {
		return nil, dropped
	}
	switch dhcpv6.MessageType(b[0]) {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeConfirm,
		dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind, dhcpv6.MessageTypeRelease,
		dhcpv6.MessageTypeDecline, dhcpv6.MessageTypeInformationRequest:
	default:
		return nil, dropped
	}
	msg, err := dhcpv6.MessageFromBytes(b)
	if err != nil {
		return nil, dropped
	}
	f := t.networkFacts(netID)
	if f == nil || f.serverDUID == nil {
		return nil, dropped
	}
	mt := msg.MessageType
	sid := msg.Options.ServerID()
	switch {
	case sid != nil && !bytes.Equal(sid.ToBytes(), f.serverDUID):
		return nil, dropped // for another server
	case sid != nil && (mt == dhcpv6.MessageTypeSolicit || mt == dhcpv6.MessageTypeConfirm || mt == dhcpv6.MessageTypeRebind):
		return nil, dropped // RFC 8415 16
	case sid == nil && (mt == dhcpv6.MessageTypeRequest || mt == dhcpv6.MessageTypeRenew ||
		mt == dhcpv6.MessageTypeRelease || mt == dhcpv6.MessageTypeDecline):
		return nil, dropped
	}
	cid := msg.Options.ClientID()
	if cid == nil && mt != dhcpv6.MessageTypeInformationRequest {
		return nil, dropped
	}
	f, p := t.client6(netID, cid, from.Addr())
	if p == nil {
		return nil, dropped
	}
	if !t.limit.allow(t.now(), bucketKey{netID: netID, mac: p.mac}) {
		return nil, limited
	}

	// The port's address to lease, and the subnets whose DNS it is
	// told.
	var addr netip.Addr
	var info []*subnet
	for _, a := range p.addrs {
		if !a.addr.Is6() {
			continue
		}
		s := f.subnetOf(a)
		if s == nil || !s.dhcp {
			continue
		}
		switch s.addrMode {
		case modeStateful:
			if !addr.IsValid() {
				addr = a.addr
			}
			info = append(info, s)
		case modeStateless:
			info = append(info, s)
		}
	}

	out := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply, TransactionID: msg.TransactionID}
	if cid != nil {
		out.AddOption(dhcpv6.OptClientID(cid))
	}
	out.AddOption(dhcpv6.OptServerID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: f.serverMAC}))

	switch mt {
	case dhcpv6.MessageTypeSolicit:
		if !addr.IsValid() || len(msg.Options.IANA()) == 0 {
			return nil, dropped
		}
		if msg.GetOneOption(dhcpv6.OptionRapidCommit) != nil {
			out.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
		} else {
			out.MessageType = dhcpv6.MessageTypeAdvertise
		}
		t.addIANAs(out, msg, addr)
		t.addInfo6(out, f, p, info)
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind:
		if !addr.IsValid() && len(info) == 0 {
			return nil, dropped
		}
		t.addIANAs(out, msg, addr)
		t.addInfo6(out, f, p, info)
	case dhcpv6.MessageTypeConfirm:
		var addrs []netip.Addr
		for _, ia := range msg.Options.IANA() {
			for _, a := range ia.Options.Addresses() {
				if v, ok := netip.AddrFromSlice(a.IPv6Addr); ok {
					addrs = append(addrs, v)
				}
			}
		}
		if len(addrs) == 0 {
			return nil, dropped
		}
		code := iana.StatusSuccess
		for _, a := range addrs {
			if !slices.ContainsFunc(f.subnets, func(s *subnet) bool { return s.prefix.Addr().Is6() && s.prefix.Contains(a) }) {
				code = iana.StatusNotOnLink
			}
		}
		out.AddOption(&dhcpv6.OptStatusCode{StatusCode: code})
	case dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		out.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess})
	case dhcpv6.MessageTypeInformationRequest:
		if len(info) == 0 {
			return nil, dropped
		}
		t.addInfo6(out, f, p, info)
	}
	return out.ToBytes(), replied
}

// client6 finds the admin-up port a DHCPv6 client is: by the MAC of its
// DUID, of its EUI-64 link-local source, or that Config.Neighbor tells.
func (t *Table) client6(netID string, cid dhcpv6.DUID, src netip.Addr) (*facts, *port) {
	var macs [][6]byte
	if m, ok := duidMAC(cid); ok {
		macs = append(macs, m)
	}
	if m, ok := eui64MAC(src); ok {
		macs = append(macs, m)
	}
	for _, m := range macs {
		if f, p := t.lookupMAC(netID, m); p != nil {
			return f, p
		}
	}
	if t.cfg.Neighbor != nil && src.IsValid() {
		if hw := t.cfg.Neighbor(netID, src.WithZone("")); len(hw) == 6 {
			var m [6]byte
			copy(m[:], hw)
			return t.lookupMAC(netID, m)
		}
	}
	return nil, nil
}

// addIANAs answers each IA_NA: the first gets addr, with the client's
// other addresses in it at lifetime 0 (as they are no longer its); the
// others NoAddrsAvail, as does every IA_NA when there is no address.
func (t *Table) addIANAs(out, req *dhcpv6.Message, addr netip.Addr) {
	lease, t1, t2 := t.lifetimes6()
	given := false
	for _, ia := range req.Options.IANA() {
		r := &dhcpv6.OptIANA{IaId: ia.IaId}
		if addr.IsValid() && !given {
			given = true
			r.T1, r.T2 = t1, t2
			r.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: addr.AsSlice(), PreferredLifetime: lease, ValidLifetime: lease})
			for _, old := range ia.Options.Addresses() {
				if a, ok := netip.AddrFromSlice(old.IPv6Addr); ok && a != addr {
					r.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: old.IPv6Addr})
				}
			}
		} else {
			r.Options.Add(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail, StatusMessage: "no address for this client"})
		}
		out.AddOption(r)
	}
}

// lifetimes6 are the lease's lifetime, T1 (50%) and T2 (80%).
func (t *Table) lifetimes6() (lease, t1, t2 time.Duration) {
	if t.cfg.LeaseTime < 0 {
		inf := time.Duration(0xffffffff) * time.Second
		return inf, inf, inf
	}
	lease = min(t.cfg.LeaseTime, time.Duration(0xfffffffe)*time.Second)
	return lease, lease / 2, lease * 4 / 5
}

// addInfo6 adds DNS servers (the subnets', else the DHCP port's
// addresses on them), the domain search list and the port's extra
// options.
func (t *Table) addInfo6(out *dhcpv6.Message, f *facts, p *port, subnets []*subnet) {
	var dns []net.IP
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr) {
		if a.IsValid() && !seen[a] {
			seen[a] = true
			dns = append(dns, a.AsSlice())
		}
	}
	for _, s := range subnets {
		for _, a := range s.dns {
			add(a)
		}
	}
	if len(dns) == 0 {
		for _, s := range subnets {
			add(s.server)
		}
	}
	if len(dns) > 0 {
		out.AddOption(dhcpv6.OptDNS(dns...))
	}
	if f.domain != "" {
		out.AddOption(dhcpv6.OptDomainSearchList(&rfc1035label.Labels{Labels: []string{f.domain}}))
	}
	for _, o := range p.extra6 {
		out.Options.Del(dhcpv6.OptionCode(o.code))
		if len(o.val) > 0 {
			out.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionCode(o.code), OptionData: o.val})
		}
	}
}

// duidMAC is the Ethernet MAC of a DUID-LL or DUID-LLT.
func duidMAC(d dhcpv6.DUID) ([6]byte, bool) {
	var m [6]byte
	var hw net.HardwareAddr
	switch v := d.(type) {
	case *dhcpv6.DUIDLL:
		if v.HWType != iana.HWTypeEthernet {
			return m, false
		}
		hw = v.LinkLayerAddr
	case *dhcpv6.DUIDLLT:
		if v.HWType != iana.HWTypeEthernet {
			return m, false
		}
		hw = v.LinkLayerAddr
	}
	if len(hw) != 6 {
		return m, false
	}
	copy(m[:], hw)
	return m, true
}

// eui64MAC is the MAC a modified EUI-64 link-local address was made of
// (RFC 4291 appendix A).
func eui64MAC(a netip.Addr) ([6]byte, bool) {
	var m [6]byte
	if !a.Is6() || !a.IsLinkLocalUnicast() {
		return m, false
	}
	b := a.As16()
	if b[11] != 0xff || b[12] != 0xfe {
		return m, false
	}
	m = [6]byte{b[8] ^ 0x02, b[9], b[10], b[13], b[14], b[15]}
	return m, true
}

// ServeDHCPv6 answers DHCPv6 on conn for the network netID until ctx ends
// (it then sets conn's read deadline in the past) or conn is closed; both
// return nil. conn is the driver's: a UDP socket on [::]:547 in the
// network's namespace, bound to its device and joined to ff02::1:2 on
// it. Replies go back to the sender's address (with its zone).
// ServeDHCPv6 never closes conn.
func (t *Table) ServeDHCPv6(ctx context.Context, netID string, conn net.PacketConn) error {
	log := t.log.With("network", netID, "proto", "dhcpv6")
	return serveUDP(ctx, conn, log, func(b []byte, from net.Addr) ([]byte, net.Addr, bool) {
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			return nil, nil, false
		}
		reply, ok := t.DHCPv6(netID, b, ua.AddrPort())
		return reply, from, ok
	}, &t.stats.DHCPv6)
}
