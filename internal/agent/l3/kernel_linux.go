package l3

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"muon/internal/agentapi"
	"muon/internal/kernel/netns"
	"muon/internal/kernel/nsdev"
)

// routeProto marks the routes the agent makes in a router's namespace
// (default and extra routes), so that it changes only those.
const routeProto = netlink.RouteProtocol(77)

// recheck is how long what the kernel was last made is trusted without
// reading it back.
const recheck = 30 * time.Second

// linuxKernel is the Kernel of this host: namespaces named prefix +
// "qrouter-<router>", devices marked with the agent's mark.
type linuxKernel struct {
	prefix string
	mark   func() string

	mu sync.Mutex
	// made is what Ensure last made of each router, trusted for
	// recheck: a change is then only its difference.
	made map[string]*made
}

type made struct {
	at    time.Time
	spec  Spec
	rules string
	elems map[string]map[string]string // set -> key -> value
}

// NewKernel is the host's Kernel. Namespaces are named prefix + Neutron's
// "qrouter-<router id>"; mark tells the agent's device mark.
func NewKernel(prefix string, mark func() string) Kernel {
	return &linuxKernel{prefix: prefix, mark: mark, made: map[string]*made{}}
}

func (k *linuxKernel) name(routerID string) string {
	return k.prefix + agentapi.RouterNamespace(routerID)
}

// Routers lists the routers whose namespaces hold a device of ours.
func (k *linuxKernel) Routers(ctx context.Context) ([]string, error) {
	ids, err := k.Present(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range ids {
		if mine, err := nsdev.Ours(k.name(id), k.mark()); err == nil && mine {
			out = append(out, id)
		}
	}
	return out, nil
}

// Present lists the routers with a namespace name of ours.
func (k *linuxKernel) Present(ctx context.Context) ([]string, error) {
	return nsdev.Present(k.name(""))
}

// Ensure makes the router's namespace: forwarding on, its pairs with
// their addresses (the gateway's with the floating IPs as /32s), its
// routes, its NAT table; then it announces the floating IPs it added and
// drops the connections of those it took away.
func (k *linuxKernel) Ensure(ctx context.Context, s Spec) error {
	k.mu.Lock()
	last := k.made[s.RouterID]
	k.mu.Unlock()
	if last != nil && time.Since(last.at) > recheck {
		last = nil
	}
	ns, err := nsdev.Open(k.name(s.RouterID), k.mark())
	if err != nil {
		return err
	}
	defer ns.Close()
	if last == nil || ns.Fresh {
		last = nil
		if err := netns.Do(ns.Handle, func() error {
			return errors.Join(
				nsdev.Sysctl("net/ipv4/ip_forward", "1"),
				nsdev.Sysctl("net/ipv6/conf/all/forwarding", "1"),
				nsdev.Sysctl("net/ipv6/conf/default/accept_ra", "0"),
				nsdev.Sysctl("net/ipv6/conf/default/accept_dad", "0"))
		}); err != nil {
			return err
		}
	}
	// Devices: the pairs of the spec, and none other of ours.
	if last == nil || !slices.EqualFunc(last.spec.Ports, s.Ports, pairEqual) {
		want := map[string]bool{}
		for _, p := range s.Ports {
			want[p.Dev] = true
			np := nsdev.Pair{Tap: p.Tap, Dev: p.Dev, MAC: p.MAC, MTU: p.MTU, Addrs: p.Addrs}
			if p.Dev == s.Gateway {
				np.Addrs = nil // with the floating IPs, below
			}
			if _, err := ns.EnsurePair(np); err != nil {
				return err
			}
		}
		devs, err := ns.Devices()
		if err != nil {
			return err
		}
		for name, l := range devs {
			if !want[name] && name != "lo" {
				if err := ns.Inside.LinkDel(l); err != nil {
					return fmt.Errorf("remove %s: %w", name, err)
				}
			}
		}
	}
	var added []netip.Addr
	if s.Gateway != "" {
		if added, err = k.gatewayAddrs(ns, s, last); err != nil {
			return err
		}
	}
	if last == nil || !slices.Equal(last.spec.NextHops, s.NextHops) || !slices.Equal(last.spec.Routes, s.Routes) ||
		last.spec.Gateway != s.Gateway {
		if err := syncRoutes(ns.Inside, s); err != nil {
			return err
		}
	}
	elems, rules, removed, err := k.nat(ns, s, last)
	if err != nil {
		return err
	}
	if len(added) > 0 {
		if err := announce(ns, s.Gateway, added); err != nil {
			return fmt.Errorf("gratuitous ARP: %w", err)
		}
	}
	if len(removed) > 0 {
		forget(ns, removed)
	}
	at := time.Now()
	if last != nil {
		at = last.at // still read back every recheck
	}
	spec := s
	spec.FloatingIPs = maps.Clone(s.FloatingIPs)
	k.mu.Lock()
	k.made[s.RouterID] = &made{at: at, spec: spec, rules: rules, elems: elems}
	k.mu.Unlock()
	return nil
}

func pairEqual(a, b Pair) bool {
	return a.Tap == b.Tap && a.Dev == b.Dev && a.MAC == b.MAC && a.MTU == b.MTU && slices.Equal(a.Addrs, b.Addrs)
}

// gatewayAddrs makes the gateway's addresses its port's and the
// floating IPs (as /32s); it tells the floating IPs it added.
func (k *linuxKernel) gatewayAddrs(ns *nsdev.NS, s Spec, last *made) ([]netip.Addr, error) {
	want := map[netip.Prefix]bool{}
	for _, a := range s.Ports[0].Addrs {
		if p, err := netip.ParsePrefix(a); err == nil {
			want[p] = true
		}
	}
	for fip := range s.FloatingIPs {
		if a, err := netip.ParseAddr(fip); err == nil {
			want[netip.PrefixFrom(a, a.BitLen())] = true
		}
	}
	dev, err := ns.Inside.LinkByName(s.Gateway)
	if err != nil {
		return nil, err
	}
	have := map[netip.Prefix]bool{}
	if last != nil && last.spec.Gateway == s.Gateway {
		for fip := range last.spec.FloatingIPs {
			if a, err := netip.ParseAddr(fip); err == nil {
				have[netip.PrefixFrom(a, a.BitLen())] = true
			}
		}
		for _, a := range last.spec.Ports[0].Addrs {
			if p, err := netip.ParsePrefix(a); err == nil {
				have[p] = true
			}
		}
	} else {
		list, err := ns.Inside.AddrList(dev, netlink.FAMILY_ALL)
		if err != nil {
			return nil, err
		}
		for _, a := range list {
			if a.IP.IsLinkLocalUnicast() && a.IP.To4() == nil {
				continue
			}
			if p, ok := nsdev.PrefixOf(a.IPNet); ok {
				have[p] = true
			}
		}
	}
	var errs []error
	for p := range have {
		if !want[p] {
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
			if err := ns.Inside.AddrDel(dev, addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
			}
		}
	}
	var added []netip.Addr
	for p := range want {
		if have[p] {
			continue
		}
		if err := nsdev.AddAddr(ns.Inside, dev, p.String()); err != nil {
			errs = append(errs, err)
			continue
		}
		if p.Addr().Is4() {
			added = append(added, p.Addr())
		}
	}
	return added, errors.Join(errs...)
}

// syncRoutes makes the namespace's routes of ours the default routes
// via the gateway's next hops and the extra routes.
func syncRoutes(h *netlink.Handle, s Spec) error {
	type key struct{ dst, via string }
	want := map[key]bool{}
	if s.Gateway != "" {
		for _, nh := range s.NextHops {
			a, err := netip.ParseAddr(nh)
			if err != nil {
				continue
			}
			dst := "0.0.0.0/0"
			if a.Is6() {
				dst = "::/0"
			}
			want[key{dst, a.String()}] = true
		}
	}
	for _, r := range s.Routes {
		d, err1 := netip.ParsePrefix(r.Destination)
		a, err2 := netip.ParseAddr(r.Nexthop)
		if err1 != nil || err2 != nil {
			continue
		}
		want[key{d.Masked().String(), a.String()}] = true
	}
	have, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: routeProto}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return err
	}
	var errs []error
	present := map[key]bool{}
	for _, r := range have {
		dst := "0.0.0.0/0"
		if r.Dst != nil {
			if p, ok := nsdev.PrefixOf(r.Dst); ok {
				dst = p.String()
			}
		} else if r.Family == unix.AF_INET6 {
			dst = "::/0"
		}
		via := ""
		if a, ok := netip.AddrFromSlice(r.Gw); ok {
			via = a.Unmap().String()
		}
		k := key{dst, via}
		if !want[k] || present[k] {
			errs = append(errs, h.RouteDel(&r))
			continue
		}
		present[k] = true
	}
	for k := range want {
		if present[k] {
			continue
		}
		_, dst, _ := net.ParseCIDR(k.dst)
		r := &netlink.Route{Dst: dst, Gw: net.ParseIP(k.via), Protocol: routeProto}
		if err := h.RouteAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			// A next hop not on a connected subnet yet (its interface
			// is still coming): the next Sync adds it.
			errs = append(errs, fmt.Errorf("route %s via %s: %w", k.dst, k.via, err))
		}
	}
	return errors.Join(errs...)
}

// announce sends a gratuitous ARP for each address from the device.
func announce(ns *nsdev.NS, dev string, addrs []netip.Addr) error {
	return netns.Do(ns.Handle, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		bcast := &packet.Addr{HardwareAddr: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
		var errs []error
		for _, a := range addrs {
			if _, err := c.WriteTo(garp(ifi.HardwareAddr, a), bcast); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

// garp is an Ethernet frame with a gratuitous ARP request for ip.
func garp(mac net.HardwareAddr, ip netip.Addr) []byte {
	f := make([]byte, 0, 42)
	f = append(f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	f = append(f, mac...)
	f = append(f, 0x08, 0x06)                // ARP
	f = append(f, 0, 1, 0x08, 0, 6, 4, 0, 1) // Ethernet, IPv4, request
	a := ip.As4()
	f = append(f, mac...)
	f = append(f, a[:]...)
	f = append(f, 0, 0, 0, 0, 0, 0)
	f = append(f, a[:]...)
	return f
}

// Remove deletes the router's namespace if it is ours.
func (k *linuxKernel) Remove(ctx context.Context, routerID string) error {
	k.mu.Lock()
	delete(k.made, routerID)
	k.mu.Unlock()
	return nsdev.Remove(k.name(routerID), k.mark())
}
