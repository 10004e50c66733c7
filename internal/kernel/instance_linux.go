package kernel

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"golang.org/x/sys/unix"
	knetns "muon/internal/kernel/netns"
)

// PlugInstance makes the instance's namespace (when missing) and a veth
// pair: eth0 inside with the MAC, MTU, addresses and default routes, up;
// the tap outside, up. A tap already there is made again.
func PlugInstance(in Instance) error {
	mac, err := net.ParseMAC(in.MAC)
	if err != nil {
		return fmt.Errorf("port MAC: %w", err)
	}
	ns, err := knetns.Ensure(in.NetNS)
	if err != nil {
		return err
	}
	defer ns.Close()
	host, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer host.Close()
	inside, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer inside.Close()
	if old, err := host.LinkByName(in.Tap); err == nil {
		host.LinkDel(old)
	}
	if old, err := inside.LinkByName("eth0"); err == nil {
		inside.LinkDel(old)
	}
	mtu := in.MTU
	if mtu == 0 {
		mtu = 1500
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: in.Tap, MTU: mtu}, PeerName: "eth0",
		PeerHardwareAddr: mac, PeerMTU: uint32(mtu), PeerNamespace: netlink.NsFd(int(ns))}
	if err := host.LinkAdd(veth); err != nil {
		return fmt.Errorf("create %s <-> %s/eth0: %w", in.Tap, in.NetNS, err)
	}
	eth0, err := inside.LinkByName("eth0")
	if err != nil {
		return err
	}
	if err := inside.LinkSetHardwareAddr(eth0, mac); err != nil {
		return fmt.Errorf("set MAC: %w", err)
	}
	for _, a := range in.Addrs {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			return fmt.Errorf("address %q: %w", a, err)
		}
		if addr.IP.To4() == nil {
			addr.Flags |= unix.IFA_F_NODAD
		}
		if err := inside.AddrAdd(eth0, addr); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add %s to eth0: %w", a, err)
		}
	}
	if lo, err := inside.LinkByName("lo"); err == nil {
		inside.LinkSetUp(lo)
	}
	if err := inside.LinkSetUp(eth0); err != nil {
		return err
	}
	for _, g := range in.Gateways {
		gw := net.ParseIP(g)
		if gw == nil {
			return fmt.Errorf("bad gateway %q", g)
		}
		r := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw}
		if gw.To4() == nil {
			r.Family = unix.AF_INET6
		}
		if err := inside.RouteReplace(r); err != nil {
			return fmt.Errorf("default route via %s: %w", g, err)
		}
	}
	tap, err := host.LinkByName(in.Tap)
	if err != nil {
		return err
	}
	return host.LinkSetUp(tap)
}

// UnplugInstance removes the tap (and so eth0 with it) and, when it has
// nothing left but loopback, the instance's namespace.
func UnplugInstance(netnsName, tap string) error {
	host, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer host.Close()
	if l, err := host.LinkByName(tap); err == nil {
		if err := host.LinkDel(l); err != nil {
			return fmt.Errorf("delete %s: %w", tap, err)
		}
	}
	if netnsName == "" {
		return nil
	}
	ns, err := netns.GetFromName(netnsName)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	inside, err := netlink.NewHandleAt(ns)
	ns.Close()
	if err != nil {
		return err
	}
	links, err := inside.LinkList()
	inside.Close()
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.Attrs().Name != "lo" {
			return nil // someone else's too: keep it
		}
	}
	return netns.DeleteNamed(netnsName)
}
