package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// RA timing and lifetimes (radvd's defaults, RFC 4861 6.2.1).
const (
	raMinInterval   = 30 * time.Second
	raMaxInterval   = 60 * time.Second
	raMinSpacing    = 3 * time.Second // MIN_DELAY_BETWEEN_RAS
	prefixValid     = 24 * time.Hour
	prefixPreferred = 4 * time.Hour
	rdnssLifetime   = 3 * raMaxInterval
	// raGoneCount is how many RAs still tell a prefix that went, with
	// lifetime 0, so that hosts deprecate their addresses in it.
	raGoneCount = 3
)

var (
	allNodes   = netip.MustParseAddr("ff02::1")
	allRouters = netip.MustParseAddr("ff02::2")
)

// RouterAdvertisement is the RA the network netID's namespace sends from
// the device whose MAC is src, false when the network has no subnet to
// tell (none whose ipv6_ra_mode, else ipv6_address_mode, is slaac,
// dhcpv6-stateless or dhcpv6-stateful).
//
// Each such subnet gets a prefix information option, on link, autonomous
// for slaac and dhcpv6-stateless; the M flag tells a dhcpv6-stateful
// subnet, the O flag a dhcpv6-stateless one; the MTU option tells the
// network's MTU, an RDNSS option the subnets' IPv6 DNS servers. The
// router lifetime is 0: the DHCP namespace is no router, it only tells
// prefixes; default routes come from routers' own RAs (the L3 agent's).
func (t *Table) RouterAdvertisement(netID string, src net.HardwareAddr) (*ndp.RouterAdvertisement, bool) {
	f := t.networkFacts(netID)
	if f == nil {
		return nil, false
	}
	ra := &ndp.RouterAdvertisement{}
	var dns []netip.Addr
	for _, s := range f.subnets {
		if !s.prefix.Addr().Is6() {
			continue
		}
		mode := s.raMode
		if mode == "" {
			mode = s.addrMode
		}
		switch mode {
		case modeSLAAC, modeStateless, modeStateful:
		default:
			continue
		}
		ra.Options = append(ra.Options, &ndp.PrefixInformation{
			PrefixLength:                   uint8(s.prefix.Bits()),
			OnLink:                         true,
			AutonomousAddressConfiguration: mode != modeStateful,
			ValidLifetime:                  prefixValid,
			PreferredLifetime:              prefixPreferred,
			Prefix:                         s.prefix.Addr(),
		})
		ra.ManagedConfiguration = ra.ManagedConfiguration || mode == modeStateful
		ra.OtherConfiguration = ra.OtherConfiguration || mode == modeStateless
		for _, a := range s.dns {
			if !containsAddr(dns, a) {
				dns = append(dns, a)
			}
		}
	}
	if len(ra.Options) == 0 {
		return nil, false
	}
	if f.mtu >= 1280 {
		ra.Options = append(ra.Options, ndp.NewMTU(uint32(f.mtu)))
	}
	if len(dns) > 0 {
		ra.Options = append(ra.Options, &ndp.RecursiveDNSServer{Lifetime: rdnssLifetime, Servers: dns})
	}
	if len(src) == 6 {
		ra.Options = append(ra.Options, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: src})
	}
	return ra, true
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, b := range as {
		if a == b {
			return true
		}
	}
	return false
}

// ndpConn is what ServeRA uses of an *ndp.Conn.
type ndpConn interface {
	ReadFrom() (ndp.Message, *ipv6.ControlMessage, netip.Addr, error)
	WriteTo(m ndp.Message, cm *ipv6.ControlMessage, dst netip.Addr) error
	SetReadDeadline(t time.Time) error
}

var _ ndpConn = (*ndp.Conn)(nil)

// ServeRA sends the network's router advertisements on c until ctx ends
// (it then sets c's read deadline in the past) or c is closed; both
// return nil. It sends one at once, then every 30 to 60 s (jittered) and
// soon after the network changes, to ff02::1, and answers each router
// solicitation (to its sender, or ff02::1 from ::).
//
// c is the driver's: ndp.Listen on the namespace's device with
// ndp.LinkLocal (RAs must come from a link-local address), which
// needs the address to be past DAD. ServeRA joins ff02::2 on it, filters
// it to router solicitations and asks for hop limits (failures are only
// logged); it never closes c. ifMAC is the device's MAC, told in the
// source link-layer address option.
func (t *Table) ServeRA(ctx context.Context, netID string, c *ndp.Conn, ifMAC net.HardwareAddr) error {
	return Advertise(ctx, c, ifMAC, t.raSource(netID, ifMAC), &t.stats.RA, t.log.With("network", netID, "proto", "ra"))
}

// RASource is what Advertise sends: the advertisement now (false: none
// to send), and a channel closed when it changes.
type RASource struct {
	Build   func() (*ndp.RouterAdvertisement, bool)
	Changed func() <-chan struct{}
}

func (t *Table) raSource(netID string, ifMAC net.HardwareAddr) RASource {
	return RASource{
		Build:   func() (*ndp.RouterAdvertisement, bool) { return t.RouterAdvertisement(netID, ifMAC) },
		Changed: func() <-chan struct{} { return t.wake(netID) },
	}
}

// Advertise is ServeRA for any source of advertisements (a router's
// namespace has its own): the same socket options, timing, answers to
// solicitations and prefixes that went told with lifetime 0; cnt counts.
func Advertise(ctx context.Context, c *ndp.Conn, ifMAC net.HardwareAddr, src RASource, cnt *Counters, log *slog.Logger) error {
	if err := c.JoinGroup(allRouters); err != nil {
		log.DebugContext(ctx, "joining ff02::2 failed", "err", err)
	}
	var filter ipv6.ICMPFilter
	filter.SetAll(true)
	filter.Accept(ipv6.ICMPTypeRouterSolicitation)
	if err := c.SetICMPFilter(&filter); err != nil {
		log.DebugContext(ctx, "setting an icmp filter failed", "err", err)
	}
	if err := c.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
		log.DebugContext(ctx, "asking for hop limits failed", "err", err)
	}
	return advertise(ctx, c, ifMAC, src, raTiming{raMinInterval, raMaxInterval, raMinSpacing}, cnt, log)
}

// raTiming is when unsolicited RAs go: every min to max, jittered, and
// never closer than spacing to all nodes.
type raTiming struct {
	min, max, spacing time.Duration
}

func (t *Table) serveRA(ctx context.Context, netID string, c ndpConn, ifMAC net.HardwareAddr, tm raTiming) error {
	return advertise(ctx, c, ifMAC, t.raSource(netID, ifMAC), tm, &t.stats.RA, t.log.With("network", netID, "proto", "ra"))
}

func advertise(ctx context.Context, c ndpConn, ifMAC net.HardwareAddr, src RASource, tm raTiming, cnt *Counters, log *slog.Logger) error {
	solicits := make(chan netip.Addr, 16)
	readErr := make(chan error, 1)
	go func() {
		for {
			m, cm, from, err := c.ReadFrom()
			if err != nil {
				readErr <- err
				return
			}
			cnt.Requests.Add(1)
			_, isRS := m.(*ndp.RouterSolicitation)
			if !isRS || (cm != nil && cm.HopLimit != 0 && cm.HopLimit != ndp.HopLimit) {
				cnt.Dropped.Add(1)
				continue
			}
			select {
			case solicits <- from:
			default:
				cnt.Dropped.Add(1)
			}
		}
	}()
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(longAgo) })
	defer stop()

	gone := map[netip.Prefix]int{}  // prefixes that went, RAs left to tell it
	told := map[netip.Prefix]bool{} // prefixes the last RA told
	build := func() (*ndp.RouterAdvertisement, bool) {
		ra, ok := src.Build()
		now := map[netip.Prefix]bool{}
		if ok {
			for _, o := range ra.Options {
				if pi, isPI := o.(*ndp.PrefixInformation); isPI {
					now[netip.PrefixFrom(pi.Prefix, int(pi.PrefixLength))] = true
				}
			}
		}
		for p := range told {
			if !now[p] {
				gone[p] = raGoneCount
			}
		}
		told = now
		if len(gone) > 0 && !ok {
			ra, ok = &ndp.RouterAdvertisement{}, true
			if len(ifMAC) == 6 {
				ra.Options = append(ra.Options, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifMAC})
			}
		}
		for p, n := range gone {
			if now[p] {
				delete(gone, p)
				continue
			}
			ra.Options = append(ra.Options, &ndp.PrefixInformation{
				PrefixLength: uint8(p.Bits()), OnLink: true, AutonomousAddressConfiguration: true, Prefix: p.Addr(),
			})
			if n <= 1 {
				delete(gone, p)
			} else {
				gone[p] = n - 1
			}
		}
		return ra, ok
	}
	send := func(dst netip.Addr) {
		ra, ok := build()
		if !ok {
			return
		}
		if err := c.WriteTo(ra, nil, dst); err != nil {
			log.DebugContext(ctx, "router advertisement not sent", "to", dst, "err", err)
			return
		}
		cnt.Replies.Add(1)
	}
	jitter := func() time.Duration { return tm.min + rand.N(tm.max-tm.min+1) }

	timer := time.NewTimer(0)
	defer timer.Stop()
	wake := src.Changed()
	var lastMulticast time.Time
	// Unicast answers are limited too: 10 per second.
	tokens, lastToken := 10.0, time.Now()
	for {
		select {
		case <-ctx.Done():
			<-readErr
			return nil
		case err := <-readErr:
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read: %w", err)
		case <-timer.C:
			send(allNodes)
			lastMulticast = time.Now()
			timer.Reset(jitter())
		case <-wake:
			wake = src.Changed()
			timer.Reset(max(0, time.Until(lastMulticast.Add(tm.spacing))))
		case from := <-solicits:
			now := time.Now()
			tokens = min(10, tokens+now.Sub(lastToken).Seconds()*10)
			lastToken = now
			if tokens < 1 {
				cnt.Dropped.Add(1)
				continue
			}
			tokens--
			if from.IsValid() && !from.IsUnspecified() {
				send(from)
				continue
			}
			timer.Reset(max(0, time.Until(lastMulticast.Add(tm.spacing))))
		}
	}
}
