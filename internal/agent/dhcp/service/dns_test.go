package service

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// upstream is a DNS server on 127.0.0.1 (UDP and TCP on one port) that
// knows example.com and big.example.com.
type upstream struct {
	addr    string
	tcpSeen atomic.Int32
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	var pc net.PacketConn
	var l net.Listener
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no port free for both udp and tcp")
	}
	u.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		q := r.Question[0]
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		if tcp {
			u.tcpSeen.Add(1)
		}
		switch {
		case q.Name == "example.com." && q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(192, 0, 2, 1)})
		case q.Name == "big.example.com." && q.Qtype == dns.TypeTXT:
			for i := range 30 {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
					Txt: []string{fmt.Sprintf("%03d%s", i, strings.Repeat("x", 97))}})
			}
		case q.Name == "fail.example.com.":
			m.Rcode = dns.RcodeServerFailure
		default:
			m.Rcode = dns.RcodeNameError
		}
		if opt := r.IsEdns0(); opt != nil {
			m.SetEdns0(opt.UDPSize(), false)
		}
		if !tcp {
			m.Truncate(clientUDPSize(r))
		}
		_ = w.WriteMsg(m)
	})
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return u
}

// serveDNS runs ServeDNS on loopback sockets; it returns their address.
func serveDNS(t *testing.T, tb *Table) (udpAddr, tcpAddr string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tb.ServeDNS(ctx, netA, pc, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeDNS: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("ServeDNS did not stop with its context")
		}
	})
	return pc.LocalAddr().String(), l.Addr().String()
}

func query(t *testing.T, network, addr, name string, qtype uint16, edns uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, qtype)
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: dns.MaxMsgSize}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return r
}

// summary is an answer as text: rcode, AA and TC, the answers' data.
func summary(r *dns.Msg) string {
	var data []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			data = append(data, rr.Hdr.Name+" "+rr.A.String())
		case *dns.AAAA:
			data = append(data, rr.Hdr.Name+" "+rr.AAAA.String())
		case *dns.PTR:
			data = append(data, rr.Ptr)
		case *dns.SOA:
			data = append(data, "SOA "+rr.Hdr.Name)
		default:
			data = append(data, dns.TypeToString[rr.Header().Rrtype])
		}
	}
	slices.Sort(data)
	head := []string{dns.RcodeToString[r.Rcode]}
	if r.Authoritative {
		head = append(head, "aa")
	}
	if r.Truncated {
		head = append(head, "tc")
	}
	for _, rr := range r.Ns {
		if _, ok := rr.(*dns.SOA); ok {
			head = append(head, "+soa")
		}
	}
	return strings.Join(head, " ") + ": " + strings.Join(data, ",")
}

func TestDNS(t *testing.T) {
	up := startUpstream(t)
	tb := newTestTable(t, Config{Upstreams: []string{up.addr}})
	udp, tcp := serveDNS(t, tb)
	rev6, _ := dns.ReverseAddr("2001:db8:1::5")
	cases := []struct {
		name  string
		qname string
		qtype uint16
		want  string
	}{
		{"a", "vm1.openstacklocal.", dns.TypeA, "NOERROR aa: vm1.openstacklocal. 10.0.0.5"},
		{"a-case", "VM1.OpenStackLocal.", dns.TypeA, "NOERROR aa: VM1.OpenStackLocal. 10.0.0.5"},
		{"aaaa", "vm1.openstacklocal.", dns.TypeAAAA, "NOERROR aa: vm1.openstacklocal. 2001:db8:1::5," +
			"vm1.openstacklocal. 2001:db8:2:0:f816:3eff:feaa:bbcc,vm1.openstacklocal. 2001:db8:3:0:f816:3eff:feaa:bbcc"},
		{"nodata", "vm1.openstacklocal.", dns.TypeMX, "NOERROR aa +soa: "},
		{"nxdomain", "nope.openstacklocal.", dns.TypeA, "NXDOMAIN aa +soa: "},
		{"nxdomain-deep", "a.vm1.openstacklocal.", dns.TypeA, "NXDOMAIN aa +soa: "},
		{"apex-soa", "openstacklocal.", dns.TypeSOA, "NOERROR aa: SOA openstacklocal."},
		{"ptr4", "5.0.0.10.in-addr.arpa.", dns.TypePTR, "NOERROR aa: vm1.openstacklocal."},
		{"ptr6", rev6, dns.TypePTR, "NOERROR aa: vm1.openstacklocal."},
		{"ptr-subnet", "99.0.0.10.in-addr.arpa.", dns.TypePTR, "NXDOMAIN aa: "},
		{"forward", "example.com.", dns.TypeA, "NOERROR: example.com. 192.0.2.1"},
		{"forward-nx", "nope.example.com.", dns.TypeA, "NXDOMAIN: "},
		{"forward-ptr", "8.8.8.8.in-addr.arpa.", dns.TypePTR, "NXDOMAIN: "},
	}
	for _, network := range []string{"udp", "tcp"} {
		addr := map[string]string{"udp": udp, "tcp": tcp}[network]
		for _, c := range cases {
			t.Run(network+"/"+c.name, func(t *testing.T) {
				if got := summary(query(t, network, addr, c.qname, c.qtype, 0)); got != c.want {
					t.Errorf("got  %q\nwant %q", got, c.want)
				}
			})
		}
	}
	s := &tb.Stats().DNS
	// The last reply is counted just after it is sent.
	for end := time.Now().Add(5 * time.Second); s.Replies.Load() < uint64(2*len(cases)) && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	if s.Requests.Load() != uint64(2*len(cases)) || s.Replies.Load() != s.Requests.Load() {
		t.Errorf("stats: %d requests, %d replies", s.Requests.Load(), s.Replies.Load())
	}
}

func TestDNSTruncation(t *testing.T) {
	up := startUpstream(t)
	tb := newTestTable(t, Config{Upstreams: []string{up.addr}})
	udp, tcp := serveDNS(t, tb)

	r := query(t, "udp", udp, "big.example.com.", dns.TypeTXT, 0)
	r.Compress = true
	if !r.Truncated || r.Len() > dns.MinMsgSize {
		t.Errorf("without edns0: %d bytes, tc %v; want truncated to 512", r.Len(), r.Truncated)
	}
	if up.tcpSeen.Load() == 0 {
		t.Error("the truncated upstream answer was not asked again over tcp")
	}
	r = query(t, "udp", udp, "big.example.com.", dns.TypeTXT, 4096)
	if r.Truncated || len(r.Answer) != 30 {
		t.Errorf("with edns0 4096: %d answers, tc %v", len(r.Answer), r.Truncated)
	}
	if opt := r.IsEdns0(); opt == nil || opt.UDPSize() != dnsUDPSize {
		t.Errorf("edns0 in the answer: %v", opt)
	}
	r = query(t, "tcp", tcp, "big.example.com.", dns.TypeTXT, 0)
	if r.Truncated || len(r.Answer) != 30 {
		t.Errorf("over tcp: %d answers, tc %v", len(r.Answer), r.Truncated)
	}
}

func TestDNSUpstreams(t *testing.T) {
	up := startUpstream(t)
	// A port nobody listens on: refused at once.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	dead.Close()
	tb := newTestTable(t, Config{Upstreams: []string{deadAddr, "not an address", up.addr}})
	udp, _ := serveDNS(t, tb)
	if got := summary(query(t, "udp", udp, "example.com.", dns.TypeA, 0)); got != "NOERROR: example.com. 192.0.2.1" {
		t.Errorf("past a dead upstream: %s", got)
	}
	if got := summary(query(t, "udp", udp, "fail.example.com.", dns.TypeA, 0)); got != "SERVFAIL: " {
		t.Errorf("failing name: %s", got)
	}

	only := newTestTable(t, Config{Upstreams: []string{deadAddr}})
	udp, _ = serveDNS(t, only)
	if got := summary(query(t, "udp", udp, "example.com.", dns.TypeA, 0)); got != "SERVFAIL: " {
		t.Errorf("dead upstream only: %s", got)
	}
}

func TestDNSRefused(t *testing.T) {
	tb := newTestTable(t, Config{})
	udp, tcp := serveDNS(t, tb)
	for _, c := range []struct{ network, addr string }{{"udp", udp}, {"tcp", tcp}} {
		if got := summary(query(t, c.network, c.addr, "example.com.", dns.TypeA, 0)); got != "REFUSED: " {
			t.Errorf("%s: %s, want REFUSED", c.network, got)
		}
		if got := summary(query(t, c.network, c.addr, "vm2.openstacklocal.", dns.TypeA, 0)); got != "NOERROR aa: vm2.openstacklocal. 10.0.0.6" {
			t.Errorf("%s: local name without upstreams: %s", c.network, got)
		}
	}
}

func TestDNSMalformed(t *testing.T) {
	tb := newTestTable(t, Config{})
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	q := func() *dns.Msg { return new(dns.Msg).SetQuestion("vm1.openstacklocal.", dns.TypeA) }
	response := q()
	response.Response = true
	two := q()
	two.Question = append(two.Question, dns.Question{Name: "x.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	update := q()
	update.Opcode = dns.OpcodeUpdate
	edns1 := q().SetEdns0(1232, false)
	edns1.IsEdns0().SetVersion(1)
	garbage := append(pack(q())[:12], 0xff, 0xff, 0xff)
	for _, c := range []struct {
		name  string
		b     []byte
		rcode int // -1: no answer
	}{
		{"ok", pack(q()), dns.RcodeSuccess},
		{"short", []byte{1, 2, 3}, -1},
		{"response", pack(response), -1},
		{"garbage", garbage, dns.RcodeFormatError},
		{"two-questions", pack(two), dns.RcodeFormatError},
		{"update", pack(update), dns.RcodeNotImplemented},
		{"edns-version", pack(edns1), dns.RcodeBadVers},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, ok := tb.DNS(t.Context(), netA, c.b, false)
			if c.rcode < 0 {
				if ok {
					t.Fatalf("answered %x", b)
				}
				return
			}
			if !ok {
				t.Fatal("no answer")
			}
			r := new(dns.Msg)
			if err := r.Unpack(b); err != nil {
				t.Fatal(err)
			}
			if r.Rcode != c.rcode || !r.Response {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode])
			}
		})
	}

	// Garbage on the socket does not stop the server.
	udp, _ := serveDNS(t, tb)
	conn, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, b := range [][]byte{{1}, garbage, make([]byte, 4000)} {
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if got := summary(query(t, "udp", udp, "vm1.openstacklocal.", dns.TypeA, 0)); !strings.HasPrefix(got, "NOERROR aa: ") {
		t.Errorf("after garbage: %s", got)
	}
}

func TestServeDNSClosed(t *testing.T) {
	tb := newTestTable(t, Config{})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- tb.ServeDNS(context.Background(), netA, pc, nil) }()
	time.Sleep(50 * time.Millisecond)
	pc.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeDNS on a closed socket: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeDNS did not stop when its socket closed")
	}
	if err := tb.ServeDNS(context.Background(), netA, nil, nil); err == nil {
		t.Error("ServeDNS without sockets did not fail")
	}
}
