package service

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// DHCPv4 ports.
const (
	ServerPort4 = 67
	ClientPort4 = 68
)

// dhcpMinLen is the fixed part of a DHCP message with the magic cookie.
const dhcpMinLen = 240

// verdict is what became of a request.
type verdict int

const (
	dropped verdict = iota
	replied
	limited
)

// DHCPv4 answers one DHCPv4 request received on the network netID: the
// encoded reply and where to send it (the relay's giaddr:67, the
// client's ciaddr:68, else 255.255.255.255:68), or ok false to send
// nothing. It only answers admin-up ports of the network, by MAC.
func (t *Table) DHCPv4(netID string, req []byte) (reply []byte, to netip.AddrPort, ok bool) {
	c := &t.stats.DHCPv4
	c.Requests.Add(1)
	r, to, v := t.dhcpv4(netID, req)
	switch v {
	case replied:
		c.Replies.Add(1)
		return r, to, true
	case limited:
		c.RateLimited.Add(1)
	default:
		c.Dropped.Add(1)
	}
	return nil, netip.AddrPort{}, false
}

func (t *Table) dhcpv4(netID string, b []byte) ([]byte, netip.AddrPort, verdict) {
	var none netip.AddrPort
	if len(b) < dhcpMinLen {
		return nil, none, dropped
	}
	req, err := dhcpv4.FromBytes(b)
	if err != nil || req.OpCode != dhcpv4.OpcodeBootRequest ||
		req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 {
		return nil, none, dropped
	}
	mt := req.MessageType()
	switch mt {
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform:
	default:
		// RELEASE and DECLINE need no answer: the address is the
		// port's whatever the client does with it.
		return nil, none, dropped
	}
	var mac [6]byte
	copy(mac[:], req.ClientHWAddr)
	f, p := t.lookupMAC(netID, mac)
	if p == nil {
		return nil, none, dropped
	}
	if !t.limit.allow(t.now(), bucketKey{netID: netID, mac: mac}) {
		return nil, none, limited
	}

	// The port's addresses DHCP hands out, in its fixed_ips order.
	type lease struct {
		addr netip.Addr
		s    *subnet
	}
	var leases []lease
	for _, a := range p.addrs {
		if !a.addr.Is4() {
			continue
		}
		if s := f.subnetOf(a); s != nil && s.dhcp && f.server4(s).IsValid() {
			leases = append(leases, lease{a.addr, s})
		}
	}
	if len(leases) == 0 {
		return nil, none, dropped
	}
	ciaddr := ip4(req.ClientIPAddr)
	requested := ip4(dhcpv4.GetIP(dhcpv4.OptionRequestedIPAddress, req.Options))

	var out *dhcpv4.DHCPv4
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		l := leases[0]
		if i := slices.IndexFunc(leases, func(l lease) bool { return l.addr == requested }); i >= 0 {
			l = leases[i]
		}
		out = t.reply4(req, dhcpv4.MessageTypeOffer, f, p, l.s, l.addr, true)
	case dhcpv4.MessageTypeRequest:
		if sid := ip4(dhcpv4.GetIP(dhcpv4.OptionServerIdentifier, req.Options)); sid.IsValid() && !slices.Contains(f.serverIPs, sid) {
			// The client chose another DHCP agent's offer.
			return nil, none, dropped
		}
		want := requested
		if !want.IsValid() || want.IsUnspecified() {
			want = ciaddr
		}
		if !want.IsValid() || want.IsUnspecified() {
			return nil, none, dropped
		}
		if i := slices.IndexFunc(leases, func(l lease) bool { return l.addr == want }); i >= 0 {
			out = t.reply4(req, dhcpv4.MessageTypeAck, f, p, leases[i].s, leases[i].addr, true)
		} else {
			// Not (or no longer) the port's address: the client
			// starts over and is offered the current one.
			out = nak4(req, f.server4(leases[0].s))
		}
	case dhcpv4.MessageTypeInform:
		l := leases[0]
		if i := slices.IndexFunc(leases, func(l lease) bool { return l.s.prefix.Contains(ciaddr) }); i >= 0 {
			l = leases[i]
		}
		out = t.reply4(req, dhcpv4.MessageTypeAck, f, p, l.s, netip.Addr{}, false)
	}
	return encode4Reply(req, out), replyAddr4(req, out), replied
}

// reply4 builds an OFFER or ACK for the port's address yiaddr on s; with
// lease false (INFORM) it has no address and no lease times.
func (t *Table) reply4(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, f *facts, p *port, s *subnet, yiaddr netip.Addr, lease bool) *dhcpv4.DHCPv4 {
	out := header4(req)
	if yiaddr.IsValid() {
		out.YourIPAddr = yiaddr.AsSlice()
	}
	if mt == dhcpv4.MessageTypeAck {
		out.ClientIPAddr = req.ClientIPAddr
	}
	opts := make(dhcpv4.Options, len(s.opts4)+len(p.extra4)+8)
	for _, o := range s.opts4 {
		opts[o.code] = o.val
	}
	opts[optMessageType] = []byte{byte(mt)}
	if p.api.Hostname != "" {
		opts[optHostName] = []byte(p.api.Hostname)
	}
	if lease {
		if d := t.cfg.LeaseTime; d < 0 {
			opts[optLeaseTime] = []byte{0xff, 0xff, 0xff, 0xff}
		} else {
			secs := uint32(min(d.Seconds(), 0xfffffffe))
			opts[optLeaseTime] = binary.BigEndian.AppendUint32(nil, secs)
			opts[optRenewal] = binary.BigEndian.AppendUint32(nil, secs/2)
			opts[optRebinding] = binary.BigEndian.AppendUint32(nil, uint32(uint64(secs)*7/8))
		}
	}
	explicit249 := false
	for _, o := range p.extra4 {
		if o.code == optMSClassless {
			explicit249 = true
		}
	}
	for _, o := range p.extra4 {
		switch {
		case o.siaddr.IsValid():
			out.ServerIPAddr = o.siaddr.AsSlice()
		case len(o.val) == 0:
			delete(opts, o.code)
			if o.code == optClasslessRoute && !explicit249 {
				delete(opts, optMSClassless)
			}
		default:
			opts[o.code] = o.val
			if o.code == optClasslessRoute && !explicit249 {
				opts[optMSClassless] = o.val
			}
		}
	}
	copyOption4(opts, req, optClientID)
	copyOption4(opts, req, optRelayAgentInfo)
	out.Options = opts
	return out
}

func nak4(req *dhcpv4.DHCPv4, server netip.Addr) *dhcpv4.DHCPv4 {
	out := header4(req)
	out.Options = dhcpv4.Options{
		optMessageType: []byte{byte(dhcpv4.MessageTypeNak)},
		optServerID:    server.AsSlice(),
		optMessage:     []byte("requested address is not the port's address"),
	}
	if g := ip4(req.GatewayIPAddr); g.IsValid() && !g.IsUnspecified() {
		out.Flags |= 0x8000
	}
	copyOption4(out.Options, req, optClientID)
	copyOption4(out.Options, req, optRelayAgentInfo)
	return out
}

func header4(req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	return &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        req.HWType,
		TransactionID: req.TransactionID,
		Flags:         req.Flags,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: req.GatewayIPAddr,
		ClientHWAddr:  req.ClientHWAddr,
	}
}

func copyOption4(opts dhcpv4.Options, req *dhcpv4.DHCPv4, code uint8) {
	if v, ok := req.Options[code]; ok {
		opts[code] = v
	}
}

// encode4Reply encodes a reply; one larger than the client takes (576
// bytes unless it said more) loses option 249, Microsoft's copy of 121.
func encode4Reply(req, out *dhcpv4.DHCPv4) []byte {
	b := out.ToBytes()
	limit := dhcpv4.MaxMessageSize
	if v := req.Options[optMaxMessageSize]; len(v) == 2 {
		limit = max(limit, int(binary.BigEndian.Uint16(v)))
	}
	if _, ok := out.Options[optMSClassless]; ok && len(b) > limit {
		delete(out.Options, optMSClassless)
		b = out.ToBytes()
	}
	return b
}

// replyAddr4 is where a reply goes (RFC 2131 4.1): to the relay, to a
// configured client's address, else broadcast. NAKs are never unicast
// to the client's address, which is wrong.
func replyAddr4(req, out *dhcpv4.DHCPv4) netip.AddrPort {
	if g := ip4(req.GatewayIPAddr); g.IsValid() && !g.IsUnspecified() {
		return netip.AddrPortFrom(g, ServerPort4)
	}
	if c := ip4(req.ClientIPAddr); c.IsValid() && !c.IsUnspecified() && out.MessageType() != dhcpv4.MessageTypeNak {
		return netip.AddrPortFrom(c, ClientPort4)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), ClientPort4)
}

func ip4(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	a = a.Unmap()
	if !a.Is4() {
		return netip.Addr{}
	}
	return a
}

// ServeDHCPv4 answers DHCPv4 on conn for the network netID until ctx ends
// (it then sets conn's read deadline in the past to stop reading) or conn
// is closed; both return nil. conn is the driver's: a UDP socket on port
// 67 in the network's namespace, bound to its device (SO_BINDTODEVICE)
// with SO_BROADCAST set, so that replies to 255.255.255.255:68 leave by
// that device. ServeDHCPv4 never closes it.
func (t *Table) ServeDHCPv4(ctx context.Context, netID string, conn net.PacketConn) error {
	log := t.log.With("network", netID, "proto", "dhcpv4")
	return serveUDP(ctx, conn, log, func(b []byte, _ net.Addr) ([]byte, net.Addr, bool) {
		reply, to, ok := t.DHCPv4(netID, b)
		if !ok {
			return nil, nil, false
		}
		return reply, net.UDPAddrFromAddrPort(to), true
	}, &t.stats.DHCPv4)
}
