package service

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

// fakePacketConn is a net.PacketConn fed by in; writes go to out.
type fakePacketConn struct {
	in       chan datagram
	out      chan datagram
	deadline chan struct{}
	closed   chan struct{}
	once     sync.Once
	close    sync.Once
}

type datagram struct {
	b    []byte
	addr net.Addr
}

var _ net.PacketConn = (*fakePacketConn)(nil)

func newFakePacketConn() *fakePacketConn {
	return &fakePacketConn{in: make(chan datagram), out: make(chan datagram, 16), deadline: make(chan struct{}), closed: make(chan struct{})}
}

func (c *fakePacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case d := <-c.in:
		return copy(b, d.b), d.addr, nil
	case <-c.deadline:
		return 0, nil, os.ErrDeadlineExceeded
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *fakePacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.out <- datagram{b: append([]byte(nil), b...), addr: addr}
	return len(b), nil
}

func (c *fakePacketConn) Close() error {
	c.close.Do(func() { close(c.closed) })
	return nil
}

func (c *fakePacketConn) LocalAddr() net.Addr                { return &net.UDPAddr{IP: net.IPv4zero, Port: 67} }
func (c *fakePacketConn) SetDeadline(t time.Time) error      { return c.SetReadDeadline(t) }
func (c *fakePacketConn) SetWriteDeadline(t time.Time) error { return nil }
func (c *fakePacketConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && t.Before(time.Now()) {
		c.once.Do(func() { close(c.deadline) })
	}
	return nil
}

func TestServeDHCPv4(t *testing.T) {
	tb := newTestTable(t, Config{})
	conn := newFakePacketConn()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- tb.ServeDHCPv4(ctx, netA, conn) }()

	client := &net.UDPAddr{IP: net.IPv4zero, Port: 68}
	conn.in <- datagram{b: []byte("garbage"), addr: client}
	conn.in <- datagram{b: discover(t, macVM1).ToBytes(), addr: client}
	select {
	case d := <-conn.out:
		if d.addr.String() != "255.255.255.255:68" {
			t.Errorf("offer sent to %v", d.addr)
		}
		if r, err := dhcpv4.FromBytes(d.b); err != nil || r.MessageType() != dhcpv4.MessageTypeOffer {
			t.Errorf("sent %v, %v", r, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no offer sent")
	}
	cancel()
	if err := waitDone(t, done); err != nil {
		t.Errorf("ServeDHCPv4 after cancel: %v", err)
	}

	// A closed socket ends it too.
	conn = newFakePacketConn()
	go func() { done <- tb.ServeDHCPv4(t.Context(), netA, conn) }()
	conn.Close()
	if err := waitDone(t, done); err != nil {
		t.Errorf("ServeDHCPv4 after close: %v", err)
	}
}

func waitDone(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("serving loop did not stop")
		return nil
	}
}

func TestServeDHCPv6Loopback(t *testing.T) {
	srv, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skip("no ipv6 loopback:", err)
	}
	tb := newTestTable(t, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- tb.ServeDHCPv6(ctx, netA, srv) }()

	client, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sol := solicit(t, macVM1) // a DUID-LLT names vm1
	if _, err := client.WriteTo(sol.ToBytes(), srv.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, _, err := client.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := dhcpv6.MessageFromBytes(buf[:n]); err != nil || r.MessageType != dhcpv6.MessageTypeAdvertise {
		t.Errorf("got %v, %v", r, err)
	}
	cancel()
	if err := waitDone(t, done); err != nil {
		t.Errorf("ServeDHCPv6: %v", err)
	}
}

func TestServeDHCPv4ReadError(t *testing.T) {
	tb := newTestTable(t, Config{})
	err := tb.ServeDHCPv4(t.Context(), netA, errConn{newFakePacketConn()})
	if err == nil || !errors.Is(err, errBroken) {
		t.Errorf("ServeDHCPv4 = %v, want the read error", err)
	}
}

var errBroken = errors.New("broken")

type errConn struct{ *fakePacketConn }

func (errConn) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, errBroken }

func TestGuard(t *testing.T) {
	tb := newTestTable(t, Config{})
	_, _, ok := guard(tb.log, &tb.stats.DHCPv4, func() ([]byte, net.Addr, bool) { panic("boom") })
	if ok || tb.stats.DHCPv4.Dropped.Load() != 1 {
		t.Error("a panicking handler was not turned into a drop")
	}
}

func TestEUI64(t *testing.T) {
	for _, c := range []struct {
		addr string
		mac  string
	}{
		{"fe80::f816:3eff:feaa:bbcc", macVM1},
		{"fe80::f816:3eff:feaa:bbcc%eth0", macVM1},
		{"fe80::1", ""},
		{"2001:db8::f816:3eff:feaa:bbcc", ""},
		{"10.0.0.1", ""},
	} {
		m, ok := eui64MAC(netip.MustParseAddr(c.addr))
		got := ""
		if ok {
			got = net.HardwareAddr(m[:]).String()
		}
		if got != c.mac {
			t.Errorf("eui64MAC(%s) = %q, want %q", c.addr, got, c.mac)
		}
	}
}
