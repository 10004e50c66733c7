package service

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

const (
	// dnsUDPSize is the UDP payload size the service tells in EDNS0
	// (the DNS flag day's 1232).
	dnsUDPSize = 1232
	// localTTL is the TTL of the network's own names, and of their
	// negative answers: 0, as dnsmasq's local-ttl, so that a port's
	// change shows at once.
	localTTL = 0
	// upstreamTimeout bounds one try of one upstream.
	upstreamTimeout = 2 * time.Second
	// maxForwards bounds the queries being forwarded at once; more get
	// SERVFAIL.
	maxForwards = 256
)

// DNS answers one DNS query received on the network netID (tcp tells the
// transport, for truncation): the encoded reply, or ok false to send
// nothing (responses, queries too short to answer). Malformed queries get
// FORMERR.
//
// The network's ports are its names: Hostname + "." + dns_domain, with A
// and AAAA records of their fixed IPs, and PTR records for those
// addresses; matching is case-insensitive. Other names inside the domain
// are NXDOMAIN, authoritatively, as are the reverse names of the
// network's subnets' other addresses. Everything else is forwarded to
// Config.Upstreams (UDP, then TCP when truncated; 2 s a try; each in
// turn), or REFUSED without upstreams. Over UDP, an answer larger than
// the client's EDNS0 size (512 bytes without EDNS0) is truncated (TC).
func (t *Table) DNS(ctx context.Context, netID string, req []byte, tcp bool) (reply []byte, ok bool) {
	c := &t.stats.DNS
	c.Requests.Add(1)
	if len(req) < 12 || req[2]&0x80 != 0 {
		c.Dropped.Add(1)
		return nil, false
	}
	var resp *dns.Msg
	r := new(dns.Msg)
	if err := r.Unpack(req); err != nil {
		resp = &dns.Msg{MsgHdr: dns.MsgHdr{
			Id: binary.BigEndian.Uint16(req), Response: true,
			Opcode: int(req[2]>>3) & 0xf, Rcode: dns.RcodeFormatError,
		}}
	} else if resp = t.answerDNS(ctx, netID, r); resp == nil {
		c.Dropped.Add(1)
		return nil, false
	} else if !tcp {
		resp.Truncate(clientUDPSize(r))
	}
	b, err := resp.Pack()
	if err != nil {
		t.log.DebugContext(ctx, "dns answer not encoded", "network", netID, "err", err)
		c.Dropped.Add(1)
		return nil, false
	}
	c.Replies.Add(1)
	return b, true
}

// clientUDPSize is the largest UDP answer the client takes.
func clientUDPSize(r *dns.Msg) int {
	if opt := r.IsEdns0(); opt != nil {
		return max(dns.MinMsgSize, int(opt.UDPSize()))
	}
	return dns.MinMsgSize
}

// answerDNS answers a query, nil for none.
func (t *Table) answerDNS(ctx context.Context, netID string, r *dns.Msg) *dns.Msg {
	if r.Response {
		return nil
	}
	if r.Opcode != dns.OpcodeQuery {
		return withEDNS(new(dns.Msg).SetRcode(r, dns.RcodeNotImplemented), r)
	}
	if len(r.Question) != 1 {
		return withEDNS(new(dns.Msg).SetRcodeFormatError(r), r)
	}
	if opt := r.IsEdns0(); opt != nil && opt.Version() != 0 {
		return withEDNS(new(dns.Msg).SetRcode(r, dns.RcodeBadVers), r)
	}
	f := t.networkFacts(netID)
	if f == nil {
		return withEDNS(new(dns.Msg).SetRcode(r, dns.RcodeRefused), r)
	}
	q := r.Question[0]
	name := dns.CanonicalName(q.Name)
	local := q.Qclass == dns.ClassINET || q.Qclass == dns.ClassANY
	if local && f.zone != "" && dns.IsSubDomain(f.zone, name) {
		return withEDNS(t.answerZone(netID, f, r, name), r)
	}
	if a, ok := reverseAddr(name); ok && local {
		if m := t.answerReverse(netID, r, a); m != nil {
			return withEDNS(m, r)
		}
	}
	return t.forward(ctx, r)
}

// answerZone answers for a name of the network's domain.
func (t *Table) answerZone(netID string, f *facts, r *dns.Msg, name string) *dns.Msg {
	q := r.Question[0]
	m := new(dns.Msg).SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = len(t.upstreams) > 0
	soa := soaOf(f.zone)
	if name == f.zone {
		if q.Qtype == dns.TypeSOA || q.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, soa)
		} else {
			m.Ns = append(m.Ns, soa)
		}
		return m
	}
	_, p := t.lookupName(netID, strings.TrimSuffix(name, "."+f.zone))
	if p == nil {
		m.Rcode = dns.RcodeNameError
		m.Ns = append(m.Ns, soa)
		return m
	}
	hdr := func(rr uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: rr, Class: dns.ClassINET, Ttl: localTTL}
	}
	for _, a := range p.addrs {
		switch {
		case a.addr.Is4() && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY):
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: a.addr.AsSlice()})
		case a.addr.Is6() && (q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY):
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: a.addr.AsSlice()})
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = append(m.Ns, soa)
	}
	return m
}

// answerReverse answers a reverse name of a port's address, or of
// another address of the network's subnets; nil for others.
func (t *Table) answerReverse(netID string, r *dns.Msg, a netip.Addr) *dns.Msg {
	f, p := t.lookupIP(netID, a)
	if f == nil {
		return nil
	}
	q := r.Question[0]
	m := new(dns.Msg).SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = len(t.upstreams) > 0
	if p != nil && p.name != "" {
		if q.Qtype == dns.TypePTR || q.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, &dns.PTR{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: localTTL},
				Ptr: dns.Fqdn(strings.TrimSuffix(p.api.Hostname, ".") + "." + f.zone),
			})
		}
		return m
	}
	for _, s := range f.subnets {
		if s.prefix.Contains(a) {
			m.Rcode = dns.RcodeNameError
			return m
		}
	}
	return nil
}

func soaOf(zone string) *dns.SOA {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: localTTL},
		Ns:      zone,
		Mbox:    "hostmaster." + zone,
		Serial:  1,
		Refresh: 1200,
		Retry:   180,
		Expire:  1209600,
		Minttl:  localTTL,
	}
}

// withEDNS gives m an OPT record when the query had one.
func withEDNS(m, r *dns.Msg) *dns.Msg {
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(dnsUDPSize, opt.Do())
	}
	return m
}

// forward asks the upstreams, in turn, until one answers other than
// SERVFAIL or REFUSED.
func (t *Table) forward(ctx context.Context, r *dns.Msg) *dns.Msg {
	if len(t.upstreams) == 0 {
		return withEDNS(new(dns.Msg).SetRcode(r, dns.RcodeRefused), r)
	}
	select {
	case t.dnsSlots <- struct{}{}:
		defer func() { <-t.dnsSlots }()
	default:
		return withEDNS(new(dns.Msg).SetRcode(r, dns.RcodeServerFailure), r)
	}
	q := r.Copy()
	q.Id = dns.Id()
	if q.IsEdns0() == nil {
		// Ask for what fits our own size; the client's answer is cut
		// to its size after.
		q.SetEdns0(dnsUDPSize, false)
	}
	var fallback *dns.Msg
	for _, u := range t.upstreams {
		resp, err := exchange(ctx, q, u, "udp")
		if err == nil && resp.Truncated {
			resp, err = exchange(ctx, q, u, "tcp")
		}
		if err != nil {
			t.log.DebugContext(ctx, "dns upstream failed", "upstream", u, "err", err)
			continue
		}
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			fallback = resp
			continue
		}
		return fromUpstream(resp, r)
	}
	if fallback != nil {
		return fromUpstream(fallback, r)
	}
	return withEDNS(new(dns.Msg).SetRcode(r, dns.RcodeServerFailure), r)
}

func exchange(ctx context.Context, q *dns.Msg, addr, network string) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: upstreamTimeout, UDPSize: dns.MaxMsgSize}
	ctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	resp, _, err := c.ExchangeContext(ctx, q, addr)
	return resp, err
}

// fromUpstream makes an upstream's answer the client's: its id, and our
// EDNS0 in place of the upstream's.
func fromUpstream(resp, r *dns.Msg) *dns.Msg {
	resp.Id = r.Id
	extra := resp.Extra[:0]
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	resp.Extra = extra
	resp.Compress = true
	if r.IsEdns0() == nil && resp.Rcode > 0xf {
		resp.Rcode = dns.RcodeServerFailure
	}
	return withEDNS(resp, r)
}

// reverseAddr reads the address of a full in-addr.arpa or ip6.arpa name.
func reverseAddr(name string) (netip.Addr, bool) {
	switch {
	case strings.HasSuffix(name, ".in-addr.arpa."):
		ls := strings.Split(strings.TrimSuffix(name, ".in-addr.arpa."), ".")
		if len(ls) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range ls {
			n, err := strconv.ParseUint(l, 10, 8)
			if err != nil || len(l) > 3 {
				return netip.Addr{}, false
			}
			b[3-i] = byte(n)
		}
		return netip.AddrFrom4(b), true
	case strings.HasSuffix(name, ".ip6.arpa."):
		ls := strings.Split(strings.TrimSuffix(name, ".ip6.arpa."), ".")
		if len(ls) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range ls {
			n, err := strconv.ParseUint(l, 16, 8)
			if err != nil || len(l) != 1 {
				return netip.Addr{}, false
			}
			k := 31 - i
			if k%2 == 0 {
				b[k/2] |= byte(n) << 4
			} else {
				b[k/2] |= byte(n)
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// ServeDNS answers DNS for the network netID, over UDP on udp and TCP on
// tcp (either may be nil), until ctx ends or one of them is closed or
// fails (the other is then stopped too); it returns nil, or the socket
// error. The sockets are the driver's,
// opened in the network's namespace (port 53 on the DHCP port's
// addresses, or on the wildcard address: a *net.UDPConn gets its replies
// sent from the address queried). ServeDNS closes both when it returns.
func (t *Table) ServeDNS(ctx context.Context, netID string, udp net.PacketConn, tcp net.Listener) error {
	if udp == nil && tcp == nil {
		return errors.New("dns: no socket to serve")
	}
	log := t.log.With("network", netID, "proto", "dns")
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		c := &t.stats.DNS
		c.Requests.Add(1)
		resp := t.answerDNS(ctx, netID, r)
		if resp == nil {
			c.Dropped.Add(1)
			return
		}
		if _, isTCP := w.RemoteAddr().(*net.TCPAddr); !isTCP {
			resp.Truncate(clientUDPSize(r))
		}
		if err := w.WriteMsg(resp); err != nil {
			log.DebugContext(ctx, "dns answer not sent", "err", err)
			c.Dropped.Add(1)
			return
		}
		c.Replies.Add(1)
	})
	type run struct {
		srv     *dns.Server
		started chan struct{}
		done    chan error
	}
	var runs []*run
	start := func(s *dns.Server) {
		r := &run{srv: s, started: make(chan struct{}), done: make(chan error, 1)}
		s.Handler = h
		s.NotifyStartedFunc = func() { close(r.started) }
		runs = append(runs, r)
		go func() { r.done <- s.ActivateAndServe() }()
	}
	if udp != nil {
		start(&dns.Server{PacketConn: udp, UDPSize: dns.MaxMsgSize})
	}
	if tcp != nil {
		start(&dns.Server{Listener: tcp})
	}

	var errs []error
	finished := make([]bool, len(runs))
	end := func(i int, err error) {
		finished[i] = true
		if err != nil && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
			errs = append(errs, fmt.Errorf("dns: %w", err))
		}
	}
	// Wait for ctx, or for a server to stop (a closed or failed socket).
	var d1 chan error
	if len(runs) > 1 {
		d1 = runs[1].done
	}
	select {
	case <-ctx.Done():
	case err := <-runs[0].done:
		end(0, err)
	case err := <-d1:
		end(1, err)
	}
	for i, r := range runs {
		if finished[i] {
			continue
		}
		select {
		case <-r.started:
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), upstreamTimeout+time.Second)
			_ = r.srv.ShutdownContext(sctx)
			cancel()
			end(i, <-r.done)
		case err := <-r.done:
			end(i, err)
		}
	}
	if udp != nil {
		_ = udp.Close()
	}
	if tcp != nil {
		_ = tcp.Close()
	}
	return errors.Join(errs...)
}
