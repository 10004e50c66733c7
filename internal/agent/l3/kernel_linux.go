package l3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/ndp"
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
	arp  map[string]*arpSocket
}

type made struct {
	at    time.Time
	spec  Spec
	rules string
}

// NewKernel is the host's Kernel. Namespaces are named prefix + Neutron's
// "qrouter-<router id>"; mark tells the agent's device mark.
func NewKernel(prefix string, mark func() string) Kernel {
	return &linuxKernel{prefix: prefix, mark: mark, made: map[string]*made{}, arp: map[string]*arpSocket{}}
}

func (k *linuxKernel) name(routerID string) string {
	return k.prefix + agentapi.RouterNamespace(routerID)
}

// Routers lists the routers whose namespaces hold a device of ours.
func (k *linuxKernel) Routers(ctx context.Context) ([]string, error) {
	return nsdev.Owned(k.name(""), k.mark())
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
			// The router's addresses are its at once (no duplicate
			// detection: it advertises from its link-local address as
			// the device comes), and it takes no advertisements.
			np := nsdev.Pair{Tap: p.Tap, Dev: p.Dev, MAC: p.MAC, MTU: p.MTU, Addrs: p.Addrs, Sysctls: map[string]string{
				"net/ipv6/conf/" + p.Dev + "/accept_dad": "0",
				"net/ipv6/conf/" + p.Dev + "/accept_ra":  "0",
			}}
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
		if added, err = floatingRoutes(ns, s, last); err != nil {
			return err
		}
	}
	if last == nil || !slices.Equal(last.spec.NextHops, s.NextHops) || !slices.Equal(last.spec.Routes, s.Routes) ||
		last.spec.Gateway != s.Gateway {
		if err := syncRoutes(ns.Inside, s); err != nil {
			return err
		}
	}
	rules, removed, err := k.nat(ns, s, last)
	if err != nil {
		return err
	}
	// The mappings in place, connections that went around them go
	// before the outside is told.
	if len(removed) > 0 {
		forget(ns, removed)
	}
	if len(added) > 0 {
		if err := k.announce(ns, s.RouterID, s.Gateway, added); err != nil {
			return fmt.Errorf("gratuitous ARP: %w", err)
		}
	}
	at := time.Now()
	if last != nil {
		at = last.at // still read back every recheck
	}
	k.mu.Lock()
	k.made[s.RouterID] = &made{at: at, spec: s, rules: rules}
	k.mu.Unlock()
	return nil
}

func pairEqual(a, b Pair) bool {
	return a.Tap == b.Tap && a.Dev == b.Dev && a.MAC == b.MAC && a.MTU == b.MTU && slices.Equal(a.Addrs, b.Addrs)
}

// floatingRoutes makes the floating IPs the router's own: a local route
// each (table local, on the gateway), so that it answers ARP for them
// and takes their packets; it tells those it added. Addresses would do
// the same, but a device's addresses are a list the kernel walks for
// each one added: 10,000 took 1.3 s, as routes they take a fraction.
func floatingRoutes(ns *nsdev.NS, s Spec, last *made) ([]netip.Addr, error) {
	dev, err := ns.Inside.LinkByName(s.Gateway)
	if err != nil {
		return nil, err
	}
	// want are the routes to add, have those to remove.
	want := map[netip.Addr]bool{}
	have := map[netip.Addr]*netlink.Route{}
	var errs []error
	if last != nil && last.spec.Gateway == s.Gateway {
		// Only what differs from the last Ensure.
		for fip := range last.spec.FloatingIPs {
			if _, ok := s.FloatingIPs[fip]; !ok {
				if a, err := netip.ParseAddr(fip); err == nil {
					have[a] = localRoute(a, dev.Attrs().Index)
				}
			}
		}
		for fip := range s.FloatingIPs {
			if _, ok := last.spec.FloatingIPs[fip]; !ok {
				if a, err := netip.ParseAddr(fip); err == nil {
					want[a] = true
				}
			}
		}
	} else {
		for fip := range s.FloatingIPs {
			if a, err := netip.ParseAddr(fip); err == nil {
				want[a] = true
			}
		}
		list, err := ns.Inside.RouteListFiltered(netlink.FAMILY_ALL,
			&netlink.Route{Table: unix.RT_TABLE_LOCAL, Protocol: routeProto}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return nil, err
		}
		for i := range list {
			if list[i].Dst == nil {
				continue
			}
			p, ok := nsdev.PrefixOf(list[i].Dst)
			if ok && list[i].LinkIndex == dev.Attrs().Index && want[p.Addr()] {
				delete(want, p.Addr()) // in place
				continue
			}
			if err := ns.Inside.RouteDel(&list[i]); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("remove a stale floating IP: %w", err))
			}
		}
	}
	for a, r := range have {
		if err := ns.Inside.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("remove floating IP %s: %w", a, err))
		}
	}
	var added []netip.Addr
	for a := range want {
		if err := ns.Inside.RouteAdd(localRoute(a, dev.Attrs().Index)); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("floating IP %s: %w", a, err))
			continue
		}
		if a.Is4() {
			added = append(added, a)
		}
	}
	return added, errors.Join(errs...)
}

func localRoute(a netip.Addr, link int) *netlink.Route {
	return &netlink.Route{Dst: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}, LinkIndex: link,
		Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST, Protocol: routeProto}
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

// arpSocket is a router's packet socket for gratuitous ARP on its
// gateway, kept open: closing a packet socket waits for an RCU grace
// period (10-20 ms), which a floating IP's association should not.
type arpSocket struct {
	fd      int
	dev     string
	ifindex int
	mac     net.HardwareAddr
}

// announce sends a gratuitous ARP for each address from the gateway.
func (k *linuxKernel) announce(ns *nsdev.NS, id, dev string, addrs []netip.Addr) error {
	k.mu.Lock()
	sock := k.arp[id]
	k.mu.Unlock()
	if sock == nil || sock.dev != dev {
		if sock != nil {
			unix.Close(sock.fd)
		}
		sock = &arpSocket{dev: dev}
		if err := netns.Do(ns.Handle, func() error {
			ifi, err := net.InterfaceByName(dev)
			if err != nil {
				return err
			}
			sock.ifindex, sock.mac = ifi.Index, ifi.HardwareAddr
			// Protocol 0: it receives nothing.
			sock.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
			return err
		}); err != nil {
			return err
		}
		k.mu.Lock()
		k.arp[id] = sock
		k.mu.Unlock()
	}
	to := &unix.SockaddrLinklayer{Ifindex: sock.ifindex, Halen: 6, Protocol: htons(unix.ETH_P_ARP),
		Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	var errs []error
	for _, a := range addrs {
		if err := unix.Sendto(sock.fd, garp(sock.mac, a), 0, to); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// closeARP closes a router's ARP socket.
func (k *linuxKernel) closeARP(id string) {
	k.mu.Lock()
	sock := k.arp[id]
	delete(k.arp, id)
	k.mu.Unlock()
	if sock != nil {
		unix.Close(sock.fd)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

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

// ListenRA opens an NDP socket on a router's device, inside its
// namespace.
func (k *linuxKernel) ListenRA(ctx context.Context, routerID, dev string) (*ndp.Conn, net.HardwareAddr, error) {
	ns, err := netns.OpenNamed(k.name(routerID))
	if err != nil {
		return nil, nil, err
	}
	defer ns.Close()
	var c *ndp.Conn
	var mac net.HardwareAddr
	err = netns.Do(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		c, _, err = ndp.Listen(ifi, ndp.LinkLocal)
		return err
	})
	return c, mac, err
}

// Remove deletes the router's namespace if it is ours.
func (k *linuxKernel) Remove(ctx context.Context, routerID string) error {
	k.mu.Lock()
	delete(k.made, routerID)
	k.mu.Unlock()
	k.closeARP(routerID)
	return nsdev.Remove(k.name(routerID), k.mark())
}
