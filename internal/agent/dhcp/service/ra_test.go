package service

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"

	"muon/internal/agentapi"
)

// describeRA is an RA as text, one line per option, for comparison.
func describeRA(ra *ndp.RouterAdvertisement) string {
	var b strings.Builder
	fmt.Fprintf(&b, "M=%v O=%v lifetime=%v\n", ra.ManagedConfiguration, ra.OtherConfiguration, ra.RouterLifetime)
	for _, o := range ra.Options {
		switch o := o.(type) {
		case *ndp.PrefixInformation:
			fmt.Fprintf(&b, "prefix %s/%d L=%v A=%v valid=%v preferred=%v\n", o.Prefix, o.PrefixLength,
				o.OnLink, o.AutonomousAddressConfiguration, o.ValidLifetime, o.PreferredLifetime)
		case *ndp.MTU:
			fmt.Fprintf(&b, "mtu %d\n", o.MTU)
		case *ndp.RecursiveDNSServer:
			fmt.Fprintf(&b, "rdnss %v %v\n", o.Servers, o.Lifetime)
		case *ndp.LinkLayerAddress:
			fmt.Fprintf(&b, "slla %s\n", o.Addr)
		default:
			fmt.Fprintf(&b, "option %T\n", o)
		}
	}
	return b.String()
}

func TestRouterAdvertisement(t *testing.T) {
	tb := newTestTable(t, Config{})
	src := mustMAC(t, macDHCP)
	ra, ok := tb.RouterAdvertisement(netA, src)
	if !ok {
		t.Fatal("no RA")
	}
	// Through the wire and back.
	b, err := ndp.MarshalMessage(ra)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	want := `M=true O=true lifetime=0s
prefix 2001:db8:2::/64 L=true A=true valid=24h0m0s preferred=4h0m0s
prefix 2001:db8:1::/64 L=true A=false valid=24h0m0s preferred=4h0m0s
prefix 2001:db8:3::/64 L=true A=true valid=24h0m0s preferred=4h0m0s
mtu 1450
rdnss [2001:4860:4860::8888] 3m0s
slla fa:16:3e:00:00:01
`
	if got := describeRA(m.(*ndp.RouterAdvertisement)); got != want {
		t.Errorf("RA:\n%s\nwant:\n%s", got, want)
	}
}

func TestRouterAdvertisementModes(t *testing.T) {
	for _, c := range []struct {
		name           string
		raMode, adMode string
		want           string
	}{
		{"slaac", "slaac", "slaac", "M=false O=false lifetime=0s\nprefix 2001:db8:9::/64 L=true A=true valid=24h0m0s preferred=4h0m0s\nslla fa:16:3e:00:00:01\n"},
		{"address-mode-only", "", "dhcpv6-stateless", "M=false O=true lifetime=0s\nprefix 2001:db8:9::/64 L=true A=true valid=24h0m0s preferred=4h0m0s\nslla fa:16:3e:00:00:01\n"},
		{"stateful", "dhcpv6-stateful", "dhcpv6-stateful", "M=true O=false lifetime=0s\nprefix 2001:db8:9::/64 L=true A=false valid=24h0m0s preferred=4h0m0s\nslla fa:16:3e:00:00:01\n"},
		{"none", "", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := NewTable(Config{}, nil)
			tb.SetNetwork(agentapi.DHCPNetwork{ID: netA, Port: agentapi.DHCPPort{MAC: macDHCP}, Subnets: []agentapi.DHCPSubnet{
				{ID: "s4", IPVersion: 4, CIDR: "10.0.0.0/24", EnableDHCP: true},
				{ID: "s6", IPVersion: 6, CIDR: "2001:db8:9::/64", EnableDHCP: true, IPv6RAMode: c.raMode, IPv6AddressMode: c.adMode},
			}})
			ra, ok := tb.RouterAdvertisement(netA, mustMAC(t, macDHCP))
			got := ""
			if ok {
				got = describeRA(ra)
			}
			if got != c.want {
				t.Errorf("RA:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
	if _, ok := NewTable(Config{}, nil).RouterAdvertisement(netB, nil); ok {
		t.Error("RA for an unknown network")
	}
}

// fakeNDP is an ndpConn: reads come from in, writes are recorded.
type fakeNDP struct {
	in       chan fakeRead
	mu       sync.Mutex
	sent     []fakeSent
	deadline chan struct{}
	once     sync.Once
}

type fakeRead struct {
	m    ndp.Message
	from netip.Addr
}

type fakeSent struct {
	dst netip.Addr
	ra  *ndp.RouterAdvertisement
}

var _ ndpConn = (*fakeNDP)(nil)

func newFakeNDP() *fakeNDP {
	return &fakeNDP{in: make(chan fakeRead), deadline: make(chan struct{})}
}

func (f *fakeNDP) ReadFrom() (ndp.Message, *ipv6.ControlMessage, netip.Addr, error) {
	select {
	case r := <-f.in:
		return r.m, &ipv6.ControlMessage{HopLimit: ndp.HopLimit}, r.from, nil
	case <-f.deadline:
		return nil, nil, netip.Addr{}, os.ErrDeadlineExceeded
	}
}

func (f *fakeNDP) WriteTo(m ndp.Message, _ *ipv6.ControlMessage, dst netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, fakeSent{dst: dst, ra: m.(*ndp.RouterAdvertisement)})
	return nil
}

func (f *fakeNDP) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && t.Before(time.Now()) {
		f.once.Do(func() { close(f.deadline) })
	}
	return nil
}

func (f *fakeNDP) sentTo() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range f.sent {
		out = append(out, s.dst.String())
	}
	return out
}

func (f *fakeNDP) waitSent(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if len(f.sentTo()) >= n {
			return
		}
	}
	t.Fatalf("sent %v, want %d RAs", f.sentTo(), n)
}

func TestServeRA(t *testing.T) {
	tb := newTestTable(t, Config{})
	c := newFakeNDP()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- tb.serveRA(ctx, netA, c, mustMAC(t, macDHCP), raTiming{time.Hour, time.Hour, 10 * time.Millisecond})
	}()

	c.waitSent(t, 1) // at once, to all nodes
	solicitor := netip.MustParseAddr("fe80::f816:3eff:feaa:bbcc")
	c.in <- fakeRead{m: &ndp.RouterSolicitation{}, from: solicitor}
	c.waitSent(t, 2)
	c.in <- fakeRead{m: &ndp.NeighborSolicitation{}, from: solicitor} // ignored

	// A removed subnet is told at lifetime 0, a few times.
	n := network()
	n.Subnets = slices.DeleteFunc(n.Subnets, func(s agentapi.DHCPSubnet) bool { return s.ID == subSLAAC })
	tb.SetNetwork(n)
	c.waitSent(t, 3)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serveRA: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serveRA did not stop with its context")
	}
	if got, want := c.sentTo(), []string{"ff02::1", solicitor.String(), "ff02::1"}; !slices.Equal(got, want) {
		t.Errorf("sent to %v, want %v", got, want)
	}
	last := c.sent[2].ra
	var gone *ndp.PrefixInformation
	for _, o := range last.Options {
		if pi, ok := o.(*ndp.PrefixInformation); ok && pi.Prefix == netip.MustParseAddr("2001:db8:2::") {
			gone = pi
		}
	}
	if gone == nil || gone.ValidLifetime != 0 || gone.PreferredLifetime != 0 {
		t.Errorf("removed prefix told as %+v", gone)
	}
	if s := &tb.Stats().RA; s.Replies.Load() != 3 || s.Requests.Load() != 2 || s.Dropped.Load() != 1 {
		t.Errorf("stats %d sent, %d received, %d dropped", s.Replies.Load(), s.Requests.Load(), s.Dropped.Load())
	}
}

func TestServeRAConnFails(t *testing.T) {
	tb := newTestTable(t, Config{})
	c := &failingNDP{}
	err := tb.serveRA(t.Context(), netA, c, net.HardwareAddr{}, raTiming{time.Hour, time.Hour, time.Second})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("serveRA = %v, want the read error", err)
	}
}

type failingNDP struct{}

func (failingNDP) ReadFrom() (ndp.Message, *ipv6.ControlMessage, netip.Addr, error) {
	time.Sleep(10 * time.Millisecond)
	return nil, nil, netip.Addr{}, fmt.Errorf("boom")
}
func (failingNDP) WriteTo(ndp.Message, *ipv6.ControlMessage, netip.Addr) error { return nil }
func (failingNDP) SetReadDeadline(time.Time) error                             { return nil }
