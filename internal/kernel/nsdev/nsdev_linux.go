// Package nsdev is what the agent's namespaced services share: named
// network namespaces of the agent's own (Neutron's qdhcp- and qrouter-),
// each holding the namespace side of veth pairs whose host side the l2
// driver wires into a network's bridge. A namespace is the agent's when a
// device in it carries the agent's mark; one that is not is never
// touched.
package nsdev

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"muon/internal/kernel"
	"muon/internal/kernel/netns"
)

// Dir is where named namespaces live (ip netns).
const Dir = "/run/netns"

// Present lists the suffixes of the namespace names that start with
// prefix, whoever made them.
func Present(prefix string) ([]string, error) {
	ents, err := os.ReadDir(Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if id, ok := strings.CutPrefix(e.Name(), prefix); ok && id != "" {
			out = append(out, id)
		}
	}
	return out, nil
}

// Owned lists the suffixes of the namespace names that start with prefix
// and are the agent's (a device in each carries the mark).
func Owned(prefix, mark string) ([]string, error) {
	ids, err := Present(prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range ids {
		if mine, err := Ours(prefix+id, mark); err == nil && mine {
			out = append(out, id)
		}
	}
	return out, nil
}

// Ours tells whether a namespace holds a device with the mark.
func Ours(name, mark string) (bool, error) {
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
		if l.Attrs().Alias == mark {
			return true, nil
		}
	}
	return false, nil
}

// NS is one namespace opened for work, with netlink handles in it and
// in the caller's namespace.
type NS struct {
	Name   string
	Handle netns.Handle
	Host   *netlink.Handle
	Inside *netlink.Handle
	// Fresh tells that the namespace was made by this Open.
	Fresh bool
	mark  string
}

// Open makes (when missing) and opens a named namespace for an agent
// whose mark is mark. One that exists, holds other devices than lo and
// none of the mark is refused: it is not ours.
func Open(name, mark string) (*NS, error) {
	fresh := false
	if _, err := os.Stat(Dir + "/" + name); err != nil {
		fresh = true
	}
	h, err := netns.Ensure(name)
	if err != nil {
		return nil, err
	}
	n := &NS{Name: name, Handle: h, Fresh: fresh, mark: mark}
	if n.Host, err = netlink.NewHandle(); err != nil {
		n.Close()
		return nil, err
	}
	if n.Inside, err = netlink.NewHandleAt(h); err != nil {
		n.Close()
		return nil, err
	}
	if !fresh {
		if mine, err := Ours(name, mark); err == nil && !mine && nonLoopback(n.Inside) {
			n.Close()
			return nil, fmt.Errorf("namespace %s exists and is not ours: left alone", name)
		}
	}
	// Its loopback carries the mark too: a namespace whose pairs are
	// all gone (a router without ports) is still known as ours.
	if lo, err := n.Inside.LinkByName("lo"); err == nil {
		if lo.Attrs().Alias != mark {
			n.Inside.LinkSetAlias(lo, mark)
		}
		if lo.Attrs().Flags&net.FlagUp == 0 {
			n.Inside.LinkSetUp(lo)
		}
	}
	return n, nil
}

// Close lets go of the namespace (it stays).
func (n *NS) Close() {
	if n.Inside != nil {
		n.Inside.Close()
	}
	if n.Host != nil {
		n.Host.Close()
	}
	n.Handle.Close()
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

// Pair is a veth pair: Tap on the host (marked and up, for the l2 driver
// to wire), Dev in the namespace with the port's MAC, MTU and addresses.
type Pair struct {
	Tap, Dev string
	MAC      string
	MTU      int
	// Addrs are CIDR prefixes ("10.0.0.1/24"); nil leaves the device's
	// addresses alone.
	Addrs []string
	// Sysctls are written under /proc/sys inside the namespace when the
	// pair is made ("net/ipv6/conf/<dev>/accept_dad": "0").
	Sysctls map[string]string
}

// EnsurePair makes or fixes a pair; it tells whether it made the pair.
func (n *NS) EnsurePair(p Pair) (bool, error) {
	mac, err := net.ParseMAC(p.MAC)
	if err != nil {
		return false, fmt.Errorf("%s: MAC: %w", p.Dev, err)
	}
	mtu := p.MTU
	if mtu <= 0 {
		mtu = 1500
	}
	made := false
	dev, err := n.Inside.LinkByName(p.Dev)
	if err == nil && dev.Attrs().Alias != n.mark {
		return false, &kernel.ForeignError{Name: n.Name + "/" + p.Dev, Alias: dev.Attrs().Alias}
	}
	if err != nil {
		if old, err := n.Host.LinkByName(p.Tap); err == nil {
			if old.Attrs().Alias != n.mark {
				return false, &kernel.ForeignError{Name: p.Tap, Alias: old.Attrs().Alias}
			}
			n.Host.LinkDel(old)
		}
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.Tap, MTU: mtu}, PeerName: p.Dev,
			PeerHardwareAddr: mac, PeerMTU: uint32(mtu), PeerNamespace: netlink.NsFd(int(n.Handle))}
		if err := n.Host.LinkAdd(veth); err != nil {
			return false, fmt.Errorf("create %s <-> %s/%s: %w", p.Tap, n.Name, p.Dev, err)
		}
		if dev, err = n.Inside.LinkByName(p.Dev); err != nil {
			return false, err
		}
		if err := n.Inside.LinkSetAlias(dev, n.mark); err != nil {
			return false, err
		}
		if len(p.Sysctls) > 0 {
			if err := netns.Do(n.Handle, func() error {
				var errs []error
				for _, k := range slices.Sorted(maps.Keys(p.Sysctls)) {
					errs = append(errs, Sysctl(k, p.Sysctls[k]))
				}
				return errors.Join(errs...)
			}); err != nil {
				return false, err
			}
		}
		made = true
	}
	tap, err := n.Host.LinkByName(p.Tap)
	if err != nil {
		return made, fmt.Errorf("%s: %w", p.Tap, err)
	}
	if tap.Attrs().Alias != n.mark {
		if err := n.Host.LinkSetAlias(tap, n.mark); err != nil {
			return made, err
		}
	}
	if tap.Attrs().MTU != mtu {
		if err := n.Host.LinkSetMTU(tap, mtu); err != nil {
			return made, err
		}
	}
	if tap.Attrs().Flags&net.FlagUp == 0 {
		if err := n.Host.LinkSetUp(tap); err != nil {
			return made, err
		}
	}
	if dev.Attrs().HardwareAddr.String() != mac.String() {
		if err := n.Inside.LinkSetHardwareAddr(dev, mac); err != nil {
			return made, err
		}
	}
	if dev.Attrs().MTU != mtu {
		if err := n.Inside.LinkSetMTU(dev, mtu); err != nil {
			return made, err
		}
	}
	if p.Addrs != nil {
		if err := SyncAddrs(n.Inside, dev, p.Addrs); err != nil {
			return made, err
		}
	}
	if dev.Attrs().Flags&net.FlagUp == 0 {
		return made, n.Inside.LinkSetUp(dev)
	}
	return made, nil
}

// Devices lists the namespace's devices of ours by name.
func (n *NS) Devices() (map[string]netlink.Link, error) {
	links, err := n.Inside.LinkList()
	if err != nil {
		return nil, err
	}
	out := map[string]netlink.Link{}
	for _, l := range links {
		if l.Attrs().Alias == n.mark {
			out[l.Attrs().Name] = l
		}
	}
	return out, nil
}

// SyncAddrs makes a device's global addresses the wanted ones (IPv6
// link-local ones stay).
func SyncAddrs(h *netlink.Handle, dev netlink.Link, want []string) error {
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
		pf, ok := PrefixOf(a.IPNet)
		if !ok {
			continue
		}
		if !wanted[pf.String()] {
			errs = append(errs, h.AddrDel(dev, &a))
			continue
		}
		present[pf.String()] = true
	}
	for _, w := range slices.Sorted(maps.Keys(wanted)) {
		if present[w] {
			continue
		}
		if err := AddAddr(h, dev, w); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AddAddr adds one address (IPv6 without duplicate detection); one there
// already is no error.
func AddAddr(h *netlink.Handle, dev netlink.Link, cidr string) error {
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if addr.IP.To4() == nil {
		addr.Flags |= unix.IFA_F_NODAD
	}
	if err := h.AddrAdd(dev, addr); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add %s to %s: %w", cidr, dev.Attrs().Name, err)
	}
	return nil
}

// PrefixOf is an address with its prefix length as netip has it.
func PrefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// Sysctl writes a value under /proc/sys of the calling thread's
// namespace; a key that does not exist (no IPv6 here) is no error.
func Sysctl(path, value string) error {
	err := os.WriteFile("/proc/sys/"+path, []byte(value), 0o644)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Remove deletes a namespace if it is ours, its devices first (their
// host sides go with them); one that is gone is no error.
func Remove(name, mark string) error {
	mine, err := Ours(name, mark)
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
		if l.Attrs().Alias == mark && l.Attrs().Name != "lo" {
			inside.LinkDel(l)
		}
	}
	inside.Close()
	return netns.DeleteNamed(name)
}
