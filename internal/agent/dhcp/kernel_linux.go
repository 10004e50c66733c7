package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"muon/internal/agentapi"
	"muon/internal/kernel/netns"
	"muon/internal/kernel/nsdev"
)

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
	return nsdev.Owned(k.name(""), k.mark())
}

// Present lists the networks with a namespace name of ours.
func (k *linuxKernel) Present(ctx context.Context) ([]string, error) {
	return nsdev.Present(k.name(""))
}

// EnsurePort makes or fixes the namespace and the DHCP port's pair. The
// server's addresses are its at once (no duplicate detection), and the
// namespace takes no router advertisements: it sends them.
func (k *linuxKernel) EnsurePort(ctx context.Context, p Port) error {
	ns, err := nsdev.Open(k.name(p.NetworkID), k.mark())
	if err != nil {
		return err
	}
	defer ns.Close()
	_, err = ns.EnsurePair(nsdev.Pair{Tap: p.Tap, Dev: p.Dev, MAC: p.MAC, MTU: p.MTU,
		Addrs: append(slices.Clone(p.Addrs), MetadataIP+"/32"),
		Sysctls: map[string]string{
			"net/ipv6/conf/" + p.Dev + "/accept_dad": "0",
			"net/ipv6/conf/" + p.Dev + "/accept_ra":  "0",
		}})
	return err
}

// Remove deletes the network's namespace if it is ours (its devices go
// with it; the host side of the pair with its peer).
func (k *linuxKernel) Remove(ctx context.Context, networkID string) error {
	return nsdev.Remove(k.name(networkID), k.mark())
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
		if l.Attrs().Alias == k.mark() && l.Attrs().Name != "lo" {
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
