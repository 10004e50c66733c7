package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"muon/internal/agentapi"
	"muon/internal/kernel"
	"muon/internal/kernel/netns"
)

// netnsDir is where named namespaces live (ip netns).
const netnsDir = "/run/netns"

// linuxKernel is the Kernel of this host: namespaces named prefix +
// "qdhcp-<network>", devices marked with the agent's mark.
type linuxKernel struct {
	prefix string
	mark   func() string
}

// NewKernel is the host's Kernel. Namespaces are named prefix + Neutron's
// "qdhcp-<network id>" (the prefix is for several agents on one machine,
// as in a lab); mark tells the agent's device mark.
func NewKernel(prefix string, mark func() string) Kernel {
	return &linuxKernel{prefix: prefix, mark: mark}
}

func (k *linuxKernel) name(networkID string) string {
	return k.prefix + agentapi.NamespaceName(networkID)
}

// Served lists the networks whose namespaces hold a device of ours.
func (k *linuxKernel) Served(ctx context.Context) ([]string, error) {
	ids, err := k.Present(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range ids {
		if mine, err := k.ours(k.name(id)); err == nil && mine {
			out = append(out, id)
		}
	}
	return out, nil
}

// Present lists the networks with a namespace name of ours.
func (k *linuxKernel) Present(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if id, ok := strings.CutPrefix(e.Name(), k.name("")); ok && id != "" {
			out = append(out, id)
		}
	}
	return out, nil
}

// ours tells whether a namespace holds a device with the agent's mark.
func (k *linuxKernel) ours(name string) (bool, error) {
	ns, err := netns.OpenNamed(name)
	if err != nil {
		return false, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return false, err
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return false, err
	}
	for _, l := range links {
		if l.Attrs().Alias == k.mark() {
			return true, nil
		}
	}
	return false, nil
}

// EnsurePort makes or fixes the namespace and the DHCP port's pair.
func (k *linuxKernel) EnsurePort(ctx context.Context, p Port) error {
	mac, err := net.ParseMAC(p.MAC)
	if err != nil {
		return fmt.Errorf("dhcp port MAC: %w", err)
	}
	name := k.name(p.NetworkID)
	fresh := false
	if _, err := os.Stat(netnsDir + "/" + name); err != nil {
		fresh = true
	}
	ns, err := netns.Ensure(name)
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
	mark := k.mark()
	mtu := p.MTU
	if mtu <= 0 {
		mtu = 1500
	}
	dev, err := inside.LinkByName(p.Dev)
	if err == nil && dev.Attrs().Alias != mark {
		return &kernel.ForeignError{Name: name + "/" + p.Dev, Alias: dev.Attrs().Alias}
	}
	if err != nil {
		if !fresh {
			if mine, err := k.ours(name); err == nil && !mine && nonLoopback(inside) {
				return fmt.Errorf("namespace %s exists and is not ours: left alone", name)
			}
		}
		if old, err := host.LinkByName(p.Tap); err == nil {
			if old.Attrs().Alias != mark {
				return &kernel.ForeignError{Name: p.Tap, Alias: old.Attrs().Alias}
			}
			host.LinkDel(old)
		}
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.Tap, MTU: mtu}, PeerName: p.Dev,
			PeerHardwareAddr: mac, PeerMTU: uint32(mtu), PeerNamespace: netlink.NsFd(int(ns))}
		if err := host.LinkAdd(veth); err != nil {
			return fmt.Errorf("create %s <-> %s/%s: %w", p.Tap, name, p.Dev, err)
		}
		if dev, err = inside.LinkByName(p.Dev); err != nil {
			return err
		}
		if err := inside.LinkSetAlias(dev, mark); err != nil {
			return err
		}
		// The server's addresses are its at once (no duplicate
		// detection), and the namespace takes no router advertisements:
		// it sends them.
		if err := netns.Do(ns, func() error {
			return errors.Join(
				sysctl("net/ipv6/conf/"+p.Dev+"/accept_dad", "0"),
				sysctl("net/ipv6/conf/"+p.Dev+"/accept_ra", "0"))
		}); err != nil {
			return err
		}
	}
	tap, err := host.LinkByName(p.Tap)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Tap, err)
	}
	if tap.Attrs().Alias != mark {
		if err := host.LinkSetAlias(tap, mark); err != nil {
			return err
		}
	}
	if tap.Attrs().MTU != mtu {
		if err := host.LinkSetMTU(tap, mtu); err != nil {
			return err
		}
	}
	if err := host.LinkSetUp(tap); err != nil {
		return err
	}
	if dev.Attrs().HardwareAddr.String() != mac.String() {
		if err := inside.LinkSetHardwareAddr(dev, mac); err != nil {
			return err
		}
	}
	if dev.Attrs().MTU != mtu {
		if err := inside.LinkSetMTU(dev, mtu); err != nil {
			return err
		}
	}
	if err := syncAddrs(inside, dev, append(slices.Clone(p.Addrs), MetadataIP+"/32")); err != nil {
		return err
	}
	if lo, err := inside.LinkByName("lo"); err == nil {
		inside.LinkSetUp(lo)
	}
	return inside.LinkSetUp(dev)
}

func nonLoopback(h *netlink.Handle) bool {
	links, err := h.LinkList()
	if err != nil {
		return true
	}
	for _, l := range links {
		if l.Attrs().Name != "lo" {
			return true
		}
	}
	return false
}

// syncAddrs makes a device's global addresses the wanted ones (link-local
// ones stay).
func syncAddrs(h *netlink.Handle, dev netlink.Link, want []string) error {
	have, err := h.AddrList(dev, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	for _, w := range want {
		if pf, err := netip.ParsePrefix(w); err == nil {
			wanted[pf.String()] = true
		}
	}
	present := map[string]bool{}
	var errs []error
	for _, a := range have {
		if a.IP.IsLinkLocalUnicast() && a.IP.To4() == nil {
			continue
		}
		pf, ok := prefixOf(a.IPNet)
		if !ok {
			continue
		}
		if !wanted[pf.String()] {
			errs = append(errs, h.AddrDel(dev, &a))
			continue
		}
		present[pf.String()] = true
	}
	for w := range wanted {
		if present[w] {
			continue
		}
		addr, err := netlink.ParseAddr(w)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if addr.IP.To4() == nil {
			addr.Flags |= unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(dev, addr); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add %s: %w", w, err))
		}
	}
	return errors.Join(errs...)
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// sysctl writes a value under /proc/sys of the calling thread's
// namespace.
func sysctl(path, value string) error {
	err := os.WriteFile("/proc/sys/"+path, []byte(value), 0o644)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no IPv6 here
	}
	return err
}

// Remove deletes the network's namespace if it is ours (its devices go
// with it; the host side of the pair with its peer).
func (k *linuxKernel) Remove(ctx context.Context, networkID string) error {
	name := k.name(networkID)
	mine, err := k.ours(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !mine {
		return fmt.Errorf("namespace %s is not ours: left alone", name)
	}
	ns, err := netns.OpenNamed(name)
	if err != nil {
		return err
	}
	inside, err := netlink.NewHandleAt(ns)
	ns.Close()
	if err != nil {
		return err
	}
	links, _ := inside.LinkList()
	for _, l := range links {
		if l.Attrs().Alias == k.mark() {
			inside.LinkDel(l)
		}
	}
	inside.Close()
	return netns.DeleteNamed(name)
}

// Listen opens the network's sockets inside its namespace: DHCPv4 on
// the port's device (broadcast), DNS on every address, metadata on its
// address, and for IPv6 DHCPv6 (joined to All_DHCP_Relay_Agents_and_
// Servers) and router advertisements.
func (k *linuxKernel) Listen(ctx context.Context, networkID string, v6 bool) (*Sockets, error) {
	ns, err := netns.OpenNamed(k.name(networkID))
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	s := &Sockets{}
	err = netns.Do(ns, func() error {
		ifi, err := k.portDevice()
		if err != nil {
			return err
		}
		s.MAC = ifi.HardwareAddr
		if s.DHCPv4, err = udpSocket(unix.AF_INET, ifi, 67, nil); err != nil {
			return fmt.Errorf("dhcpv4 socket: %w", err)
		}
		lc := net.ListenConfig{}
		if s.DNSUDP, err = lc.ListenPacket(ctx, "udp", ":53"); err != nil {
			return fmt.Errorf("dns socket: %w", err)
		}
		if s.DNSTCP, err = lc.Listen(ctx, "tcp", ":53"); err != nil {
			return fmt.Errorf("dns socket: %w", err)
		}
		if s.Metadata, err = lc.Listen(ctx, "tcp4", MetadataIP+":80"); err != nil {
			return fmt.Errorf("metadata socket: %w", err)
		}
		if !v6 {
			return nil
		}
		if s.DHCPv6, err = udpSocket(unix.AF_INET6, ifi, 547, net.ParseIP("ff02::1:2")); err != nil {
			return fmt.Errorf("dhcpv6 socket: %w", err)
		}
		if s.RA, _, err = ndp.Listen(ifi, ndp.LinkLocal); err != nil {
			return fmt.Errorf("router advertisement socket: %w", err)
		}
		return nil
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// portDevice is the namespace's device of ours (called inside it).
func (k *linuxKernel) portDevice() (*net.Interface, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if l.Attrs().Alias == k.mark() {
			return net.InterfaceByIndex(l.Attrs().Index)
		}
	}
	return nil, errors.New("no DHCP port device in the namespace")
}

// udpSocket is a UDP socket on port bound to the device, broadcast
// allowed, joined to group if given.
func udpSocket(family int, ifi *net.Interface, port int, group net.IP) (net.PacketConn, error) {
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("udp-%s-%d", ifi.Name, port))
	defer f.Close()
	opts := []error{
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1),
		unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifi.Name),
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		opts = append(opts, unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1))
		sa = &unix.SockaddrInet4{Port: port}
	} else {
		opts = append(opts, unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1))
		if group != nil {
			mreq := &unix.IPv6Mreq{Interface: uint32(ifi.Index)}
			copy(mreq.Multiaddr[:], group.To16())
			opts = append(opts, unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq))
		}
		sa = &unix.SockaddrInet6{Port: port}
	}
	if err := errors.Join(opts...); err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, err
	}
	return net.FilePacketConn(f)
}
