package l3

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/ndp"

	"muon/internal/agent/dhcp/service"
	"muon/internal/agentapi"
)

// A router advertises the IPv6 subnets of its interfaces that have an
// ipv6_ra_mode (Neutron's radvd in the router's namespace): the prefix,
// autonomous for slaac and dhcpv6-stateless, the M flag for
// dhcpv6-stateful, the O flag for dhcpv6-stateless, the network's MTU, and
// a router lifetime: the instances' default route. The timing, the
// answers to solicitations and the prefixes that went told with lifetime
// 0 are the DHCP service's (service.Advertise).

// routerLifetime is how long hosts keep the router as a default router
// (RFC 4861's 3 x MaxRtrAdvInterval).
const routerLifetime = 30 * time.Minute

// raInfo is what one interface advertises.
type raInfo struct {
	prefixes []raPrefix
	mtu      int
}

type raPrefix struct {
	prefix netip.Prefix
	mode   string
}

// advertised is what an interface of a router advertises; false when it
// has nothing to (no IPv6 subnet with an RA mode).
func advertised(in agentapi.RouterPort) (raInfo, bool) {
	info := raInfo{mtu: in.MTU}
	for _, a := range in.Addrs {
		ip, err := netip.ParseAddr(a.IP)
		if err != nil || !ip.Is6() || a.PrefixLen <= 0 {
			continue
		}
		switch a.IPv6RAMode {
		case "slaac", "dhcpv6-stateless", "dhcpv6-stateful":
		default:
			continue
		}
		info.prefixes = append(info.prefixes, raPrefix{netip.PrefixFrom(ip, a.PrefixLen).Masked(), a.IPv6RAMode})
	}
	slices.SortFunc(info.prefixes, func(a, b raPrefix) int { return a.prefix.Addr().Compare(b.prefix.Addr()) })
	return info, len(info.prefixes) > 0
}

func (r raInfo) equal(o raInfo) bool { return r.mtu == o.mtu && slices.Equal(r.prefixes, o.prefixes) }

func (r raInfo) build(mac net.HardwareAddr) *ndp.RouterAdvertisement {
	ra := &ndp.RouterAdvertisement{CurrentHopLimit: 64, RouterSelectionPreference: ndp.Medium, RouterLifetime: routerLifetime}
	for _, p := range r.prefixes {
		ra.Options = append(ra.Options, &ndp.PrefixInformation{
			PrefixLength: uint8(p.prefix.Bits()), OnLink: true, AutonomousAddressConfiguration: p.mode != "dhcpv6-stateful",
			ValidLifetime: 24 * time.Hour, PreferredLifetime: 4 * time.Hour, Prefix: p.prefix.Addr(),
		})
		ra.ManagedConfiguration = ra.ManagedConfiguration || p.mode == "dhcpv6-stateful"
		ra.OtherConfiguration = ra.OtherConfiguration || p.mode == "dhcpv6-stateless"
	}
	if r.mtu >= 1280 {
		ra.Options = append(ra.Options, ndp.NewMTU(uint32(r.mtu)))
	}
	if len(mac) == 6 {
		ra.Options = append(ra.Options, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac})
	}
	return ra
}

// advertiser sends one interface's advertisements.
type advertiser struct {
	cancel context.CancelFunc
	conn   *ndp.Conn
	done   chan struct{}

	mu      sync.Mutex
	info    raInfo
	mac     net.HardwareAddr
	changed chan struct{}
}

func (a *advertiser) set(info raInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.info.equal(info) {
		return
	}
	a.info = info
	close(a.changed)
	a.changed = make(chan struct{})
}

func (a *advertiser) source() service.RASource {
	return service.RASource{
		Build: func() (*ndp.RouterAdvertisement, bool) {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.info.build(a.mac), true
		},
		Changed: func() <-chan struct{} {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.changed
		},
	}
}

func (a *advertiser) stop() {
	a.cancel()
	<-a.done
	a.conn.Close()
}

// advertise makes router id's advertisers match its interfaces:
// started, told what changed, stopped; a nil r stops them all.
func (d *driver) advertise(ctx context.Context, id string, r *agentapi.Router) error {
	want := map[string]raInfo{}
	if r != nil {
		if r.AdminStateUp {
			for _, in := range r.Interfaces {
				if info, ok := advertised(in); ok {
					want[agentapi.InterfaceName(in.ID)] = info
				}
			}
		}
	}
	var first error
	for key, a := range d.ras {
		if key.router != id {
			continue
		}
		if _, ok := want[key.dev]; !ok {
			a.stop()
			delete(d.ras, key)
		}
	}
	for dev, info := range want {
		key := raKey{id, dev}
		if a := d.ras[key]; a != nil {
			a.set(info)
			continue
		}
		c, mac, err := d.k.ListenRA(ctx, id, dev)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		if c == nil {
			continue // the fake's
		}
		actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		a := &advertiser{cancel: cancel, conn: c, done: make(chan struct{}), info: info, mac: mac, changed: make(chan struct{})}
		go func() {
			defer close(a.done)
			if err := service.Advertise(actx, c, mac, a.source(), &d.raStats, d.log.With("router", id, "device", dev, "proto", "ra")); err != nil {
				d.log.WarnContext(actx, "router advertisements stopped", "router", id, "device", dev, "err", err)
			}
		}()
		d.ras[key] = a
	}
	return first
}

type raKey struct{ router, dev string }
