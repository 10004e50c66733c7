package service

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"muon/internal/agentapi"
)

const (
	netA     = "aaaaaaaa-0000-4000-8000-000000000001"
	netB     = "bbbbbbbb-0000-4000-8000-000000000002"
	sub4     = "44444444-0000-4000-8000-000000000004"
	subSLAAC = "55555555-0000-4000-8000-000000000005"
	subFull  = "66666666-0000-4000-8000-000000000006"
	subLess  = "77777777-0000-4000-8000-000000000007"
	pVM1     = "11111111-1111-4111-8111-111111111111"
	pVM2     = "22222222-2222-4222-8222-222222222222"
	pDHCP    = "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
	inst1    = "9e2a0ad0-0000-4000-8000-00000000000a"

	macDHCP = "fa:16:3e:00:00:01"
	macVM1  = "fa:16:3e:aa:bb:cc"
	macVM2  = "fa:16:3e:aa:bb:dd"
)

// network is netA: an IPv4 subnet with DHCP and a host route, and three
// IPv6 subnets, one per mode.
func network() agentapi.DHCPNetwork {
	return agentapi.DHCPNetwork{
		ID: netA, ProjectID: "proj-net", MTU: 1450, DNSDomain: "openstacklocal.",
		Port: agentapi.DHCPPort{
			ID: pDHCP, NetworkID: netA, MAC: macDHCP, DeviceOwner: "network:dhcp", AdminStateUp: true,
			FixedIPs: []agentapi.FixedIP{
				{SubnetID: sub4, IPAddress: "10.0.0.2"},
				{SubnetID: subFull, IPAddress: "2001:db8:1::2"},
				{SubnetID: subLess, IPAddress: "2001:db8:3::2"},
			},
		},
		Subnets: []agentapi.DHCPSubnet{
			{
				ID: sub4, IPVersion: 4, CIDR: "10.0.0.0/24", GatewayIP: "10.0.0.1", EnableDHCP: true,
				DNSNameservers: []string{"8.8.8.8", "8.8.4.4"},
				HostRoutes:     []agentapi.HostRoute{{Destination: "192.168.0.0/16", NextHop: "10.0.0.254"}},
			},
			{ID: subSLAAC, IPVersion: 6, CIDR: "2001:db8:2::/64", EnableDHCP: true, IPv6RAMode: "slaac", IPv6AddressMode: "slaac"},
			{ID: subFull, IPVersion: 6, CIDR: "2001:db8:1::/64", EnableDHCP: true, IPv6RAMode: "dhcpv6-stateful", IPv6AddressMode: "dhcpv6-stateful"},
			{ID: subLess, IPVersion: 6, CIDR: "2001:db8:3::/64", EnableDHCP: true, IPv6RAMode: "dhcpv6-stateless", IPv6AddressMode: "dhcpv6-stateless",
				DNSNameservers: []string{"2001:4860:4860::8888"}},
		},
	}
}

// vm1 has an address on every subnet of netA.
func vm1() agentapi.DHCPPort {
	return agentapi.DHCPPort{
		ID: pVM1, NetworkID: netA, ProjectID: "proj-1", MAC: macVM1, Hostname: "vm1",
		DeviceID: inst1, DeviceOwner: "compute:nova", AdminStateUp: true,
		FixedIPs: []agentapi.FixedIP{
			{SubnetID: sub4, IPAddress: "10.0.0.5"},
			{SubnetID: subSLAAC, IPAddress: "2001:db8:2:0:f816:3eff:feaa:bbcc"},
			{SubnetID: subFull, IPAddress: "2001:db8:1::5"},
			{SubnetID: subLess, IPAddress: "2001:db8:3:0:f816:3eff:feaa:bbcc"},
		},
	}
}

// vm2 has an IPv4 address and a stateless one.
func vm2() agentapi.DHCPPort {
	return agentapi.DHCPPort{
		ID: pVM2, NetworkID: netA, ProjectID: "proj-1", MAC: macVM2, Hostname: "vm2",
		DeviceID: "inst-2", DeviceOwner: "compute:nova", AdminStateUp: true,
		FixedIPs: []agentapi.FixedIP{
			{SubnetID: sub4, IPAddress: "10.0.0.6"},
			{SubnetID: subLess, IPAddress: "2001:db8:3:0:f816:3eff:feaa:bbdd"},
		},
	}
}

// clock is a settable clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestTable(t testing.TB, cfg Config) *Table {
	t.Helper()
	if cfg.Now == nil {
		c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		cfg.Now = c.now
	}
	tb := NewTable(cfg, nil)
	tb.SetNetwork(network())
	tb.SetPort(vm1())
	tb.SetPort(vm2())
	return tb
}

func mustMAC(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	hw, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return hw
}

func TestServable(t *testing.T) {
	tb := newTestTable(t, Config{})
	down := vm2()
	down.ID, down.MAC, down.AdminStateUp = "down", "fa:16:3e:00:00:99", false
	tb.SetPort(down)
	noMAC := vm2()
	noMAC.ID, noMAC.MAC = "nomac", ""
	tb.SetPort(noMAC)
	slaacOnly := agentapi.DHCPPort{ID: "slaac", NetworkID: netA, MAC: "fa:16:3e:00:00:98", AdminStateUp: true,
		FixedIPs: []agentapi.FixedIP{{SubnetID: subSLAAC, IPAddress: "2001:db8:2::98"}}}
	tb.SetPort(slaacOnly)
	pending := vm1()
	pending.ID, pending.NetworkID = "pending", netB
	tb.SetPort(pending)
	for _, c := range []struct {
		port string
		want bool
	}{
		{pVM1, true}, {pVM2, true}, {"down", false}, {"nomac", false}, {"slaac", true},
		{"pending", false}, {"unknown", false},
	} {
		if got := tb.Servable(c.port); got != c.want {
			t.Errorf("Servable(%s) = %v, want %v", c.port, got, c.want)
		}
	}
	n := network()
	n.ID = netB
	tb.SetNetwork(n)
	if !tb.Servable("pending") {
		t.Error("a port is not servable once its network came")
	}
	tb.RemoveNetwork(netB)
	if tb.Servable("pending") {
		t.Error("a port of a removed network is servable")
	}
	tb.Reset()
	if tb.Servable(pVM1) {
		t.Error("Reset kept a port")
	}
}

func TestMovePort(t *testing.T) {
	tb := newTestTable(t, Config{})
	n := network()
	n.ID = netB
	tb.SetNetwork(n)
	p := vm1()
	p.NetworkID = netB
	tb.SetPort(p)
	if _, q := tb.lookupMAC(netA, [6]byte{0xfa, 0x16, 0x3e, 0xaa, 0xbb, 0xcc}); q != nil {
		t.Error("a port moved to another network is still on its old one")
	}
	if _, q := tb.lookupMAC(netB, [6]byte{0xfa, 0x16, 0x3e, 0xaa, 0xbb, 0xcc}); q == nil {
		t.Error("a port moved to another network is not on it")
	}
	if _, q := tb.lookupIP(netA, netip.MustParseAddr("10.0.0.5")); q != nil {
		t.Error("a moved port's address is still indexed")
	}
}

func TestLimiterBounded(t *testing.T) {
	l := newLimiter(10, 20, 100)
	now := time.Unix(1000, 0)
	for i := range 1000 {
		l.allow(now, bucketKey{netID: "n", mac: [6]byte{0, 0, 0, 0, byte(i >> 8), byte(i)}})
		now = now.Add(time.Millisecond)
	}
	if n := l.size(); n > 100 {
		t.Errorf("limiter holds %d buckets, want at most 100", n)
	}
}

// TestConcurrent reads while the table changes; run it with -race.
func TestConcurrent(t *testing.T) {
	tb := newTestTable(t, Config{RatePerMAC: -1})
	disc := discover(t, macVM1).ToBytes()
	sol := solicit(t, macVM1).ToBytes()
	md := tb.Metadata(netA)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tb.DHCPv4(netA, disc)
				tb.DHCPv6(netA, sol, llVM1)
				tb.RouterAdvertisement(netA, nil)
				get(t, md, "GET", "/latest/meta-data/instance-id", "10.0.0.5:1", nil)
				tb.Servable(pVM1)
			}
		})
	}
	for i := range 300 {
		p := vm1()
		p.FixedIPs[0].IPAddress = fmt.Sprintf("10.0.0.%d", 5+i%2)
		tb.SetPort(p)
		if i%10 == 0 {
			tb.SetNetwork(network())
		}
		if i%50 == 0 {
			tb.RemovePort(pVM1)
			tb.Reset()
			tb.SetNetwork(network())
		}
	}
	close(stop)
	wg.Wait()
}
