package kernel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	knetns "muon/internal/kernel/netns"
)

var _ Kernel = (*Linux)(nil)

// Linux is the Kernel of one network namespace, over netlink sockets
// bound to it (so no call depends on which namespace the calling thread
// is in).
type Linux struct {
	mark string
	ns   netns.NsHandle
	h    *netlink.Handle
	once sync.Once
	caps Capabilities
	// fdbSock dumps one bridge port's FDB (fdbOf).
	fdbSock *nl.NetlinkSocket
}

// Open is the Kernel of the agent named owner in the calling thread's
// network namespace.
func Open(owner string) (*Linux, error) {
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("kernel: current network namespace: %w", err)
	}
	return OpenAt(ns, owner)
}

// OpenAt is the Kernel of the agent named owner in namespace ns; it takes
// ownership of the handle.
func OpenAt(ns netns.NsHandle, owner string) (*Linux, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("kernel: netlink: %w", err)
	}
	return &Linux{mark: Mark(owner), ns: ns, h: h}, nil
}

func (l *Linux) Mark() string { return l.mark }

func (l *Linux) Own(owner string) { l.mark = Mark(owner) }

// claim refuses an existing device that is not ours.
func (l *Linux) claim(lk netlink.Link) error {
	if a := lk.Attrs(); !claimable(a.Alias, l.mark) {
		return &ForeignError{Name: a.Name, Alias: a.Alias}
	}
	return nil
}

// Close releases the netlink sockets and the namespace handle.
func (l *Linux) Close() error {
	if l.fdbSock != nil {
		l.fdbSock.Close()
	}
	l.h.Close()
	return l.ns.Close()
}

func notFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

func (l *Linux) link(name string) (netlink.Link, error) {
	lk, err := l.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	return lk, nil
}

func (l *Linux) Links(context.Context) ([]Link, error) {
	var (
		list []netlink.Link
		err  error
	)
	for range 5 {
		if list, err = l.h.LinkList(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	names := map[int]string{}
	for _, lk := range list {
		names[lk.Attrs().Index] = lk.Attrs().Name
	}
	out := make([]Link, 0, len(list))
	for _, lk := range list {
		a := lk.Attrs()
		k := Link{Name: a.Name, Kind: lk.Type(), MTU: a.MTU, Up: a.Flags&net.FlagUp != 0, Alias: a.Alias}
		if a.MasterIndex != 0 {
			k.Master = names[a.MasterIndex]
		}
		switch v := lk.(type) {
		case *netlink.Vxlan:
			local := ""
			if v.SrcAddr != nil {
				local = v.SrcAddr.String()
			}
			k.VXLAN = &VXLAN{Name: a.Name, VNI: v.VxlanId, Local: local, Port: v.Port, Learning: v.Learning, Proxy: v.Proxy, MTU: a.MTU}
		case *netlink.Vlan:
			k.VLAN = &VLAN{Parent: names[a.ParentIndex], ID: v.VlanId}
		}
		out = append(out, k)
	}
	return out, nil
}

// settle sets MTU, alias and up on a link we made or found.
func (l *Linux) settle(lk netlink.Link, mtu int) error {
	a := lk.Attrs()
	if mtu > 0 && a.MTU != mtu {
		if err := l.h.LinkSetMTU(lk, mtu); err != nil {
			return fmt.Errorf("set mtu %d on %s: %w", mtu, a.Name, err)
		}
	}
	if a.Alias != l.mark {
		if err := l.h.LinkSetAlias(lk, l.mark); err != nil {
			return fmt.Errorf("tag %s: %w", a.Name, err)
		}
	}
	if a.Flags&net.FlagUp == 0 {
		if err := l.h.LinkSetUp(lk); err != nil {
			return fmt.Errorf("set %s up: %w", a.Name, err)
		}
	}
	return nil
}

// create adds a link and reads it back.
func (l *Linux) create(lk netlink.Link) (netlink.Link, error) {
	name := lk.Attrs().Name
	if err := l.h.LinkAdd(lk); err != nil {
		return nil, fmt.Errorf("create %s %s: %w", lk.Type(), name, err)
	}
	return l.link(name)
}

func (l *Linux) EnsureBridge(_ context.Context, name string, mtu int) error {
	lk, err := l.h.LinkByName(name)
	switch {
	case notFound(err):
		// Not created with its MTU: a bridge's MTU given at creation is not
		// "set by the user", and the kernel moves it to its ports' lowest
		// (and back to 1500 when the last port leaves). Set after, it stays.
		if lk, err = l.create(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("link %s: %w", name, err)
	case l.claim(lk) != nil:
		return l.claim(lk)
	case lk.Type() != "bridge":
		return fmt.Errorf("%s exists and is a %s, not a bridge", name, lk.Type())
	}
	return l.settle(lk, mtu)
}

func (l *Linux) EnsureVXLAN(_ context.Context, v VXLAN) error {
	if v.Port == 0 {
		v.Port = VXLANPort
	}
	local := net.ParseIP(v.Local)
	if local == nil {
		return fmt.Errorf("vxlan %s: bad local address %q", v.Name, v.Local)
	}
	lk, err := l.h.LinkByName(v.Name)
	if err != nil && !notFound(err) {
		return fmt.Errorf("link %s: %w", v.Name, err)
	}
	if err == nil {
		if err := l.claim(lk); err != nil {
			return err
		}
		x, ok := lk.(*netlink.Vxlan)
		if ok && x.VxlanId == v.VNI && x.SrcAddr.Equal(local) && x.Port == v.Port && x.Learning == v.Learning && x.Proxy == v.Proxy {
			return l.settle(lk, v.MTU)
		}
		// Another identity under our name (a changed tunnel address, say):
		// make it again.
		if err := l.h.LinkDel(lk); err != nil {
			return fmt.Errorf("remake %s: %w", v.Name, err)
		}
	}
	// Created without a lower device, a VXLAN device starts at MTU 1500
	// whatever it asks for on some kernels: settle sets it after.
	lk, err = l.create(&netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: v.Name, MTU: v.MTU},
		VxlanId:   v.VNI, SrcAddr: local, Port: v.Port, Learning: v.Learning, Proxy: v.Proxy,
	})
	if err != nil {
		return err
	}
	return l.settle(lk, v.MTU)
}

func (l *Linux) EnsureVLAN(_ context.Context, name, parent string, id, mtu int) error {
	p, err := l.link(parent)
	if err != nil {
		return err
	}
	lk, err := l.h.LinkByName(name)
	if err != nil && !notFound(err) {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err == nil {
		if err := l.claim(lk); err != nil {
			return err
		}
		if x, ok := lk.(*netlink.Vlan); ok && x.VlanId == id && x.ParentIndex == p.Attrs().Index {
			return l.settle(lk, mtu)
		}
		if err := l.h.LinkDel(lk); err != nil {
			return fmt.Errorf("remake %s: %w", name, err)
		}
	}
	lk, err = l.create(&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: p.Attrs().Index, MTU: mtu}, VlanId: id})
	if err != nil {
		return err
	}
	return l.settle(lk, mtu)
}

func (l *Linux) DeleteLink(_ context.Context, name string) error {
	lk, err := l.h.LinkByName(name)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if a := lk.Attrs(); a.Alias != l.mark {
		return &ForeignError{Name: name, Alias: a.Alias}
	}
	if err := l.h.LinkDel(lk); err != nil && !notFound(err) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

func (l *Linux) SetMaster(_ context.Context, name, bridge string) error {
	lk, err := l.link(name)
	if err != nil {
		return err
	}
	if bridge == "" {
		if lk.Attrs().MasterIndex == 0 {
			return nil
		}
		if err := l.h.LinkSetNoMaster(lk); err != nil {
			return fmt.Errorf("detach %s: %w", name, err)
		}
		return nil
	}
	b, err := l.link(bridge)
	if err != nil {
		return err
	}
	if lk.Attrs().MasterIndex == b.Attrs().Index {
		return nil
	}
	if err := l.h.LinkSetMasterByIndex(lk, b.Attrs().Index); err != nil {
		return fmt.Errorf("attach %s to %s: %w", name, bridge, err)
	}
	return nil
}

func (l *Linux) SetUp(_ context.Context, name string, up bool) error {
	lk, err := l.link(name)
	if err != nil {
		return err
	}
	if (lk.Attrs().Flags&net.FlagUp != 0) == up {
		return nil
	}
	if up {
		err = l.h.LinkSetUp(lk)
	} else {
		err = l.h.LinkSetDown(lk)
	}
	if err != nil {
		return fmt.Errorf("set %s up=%v: %w", name, up, err)
	}
	return nil
}

func (l *Linux) SetMTU(_ context.Context, name string, mtu int) error {
	lk, err := l.link(name)
	if err != nil {
		return err
	}
	if lk.Attrs().MTU == mtu {
		return nil
	}
	if err := l.h.LinkSetMTU(lk, mtu); err != nil {
		return fmt.Errorf("set mtu %d on %s: %w", mtu, name, err)
	}
	return nil
}

func (l *Linux) neighs(dev string, family int) (netlink.Link, []netlink.Neigh, error) {
	lk, err := l.link(dev)
	if err != nil {
		return nil, nil, err
	}
	var ns []netlink.Neigh
	for range 5 {
		if ns, err = l.h.NeighList(lk.Attrs().Index, family); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list neighbours of %s: %w", dev, err)
	}
	return lk, ns, nil
}

// fdbOf dumps the bridge-family entries of one device. The request
// carries an ifinfomsg with the device's index, which the kernel takes as
// the bridge port to dump; an ndmsg (what netlink.NeighList sends) makes
// it dump every bridge's whole table, for each device asked about: with a
// thousand networks, 15 ms a device.
func (l *Linux) fdbOf(index int) ([]netlink.Neigh, error) {
	if l.fdbSock == nil {
		s, err := nl.GetNetlinkSocketAt(l.ns, netns.None(), unix.NETLINK_ROUTE)
		if err != nil {
			return nil, err
		}
		l.fdbSock = s
	}
	var msgs [][]byte
	var err error
	for range 5 {
		req := nl.NewNetlinkRequest(unix.RTM_GETNEIGH, unix.NLM_F_DUMP)
		m := nl.NewIfInfomsg(unix.AF_BRIDGE)
		m.Index = int32(index)
		req.AddData(m)
		req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: l.fdbSock}}
		if msgs, err = req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWNEIGH); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	out := make([]netlink.Neigh, 0, len(msgs))
	for _, m := range msgs {
		n, err := netlink.NeighDeserialize(m)
		if err != nil {
			continue
		}
		if n.LinkIndex == index {
			out = append(out, *n)
		}
	}
	return out, nil
}

func (l *Linux) FDB(_ context.Context, dev string) ([]FDB, error) {
	lk, err := l.link(dev)
	if err != nil {
		return nil, err
	}
	ns, err := l.fdbOf(lk.Attrs().Index)
	if err != nil {
		return nil, fmt.Errorf("list the FDB of %s: %w", dev, err)
	}
	var out []FDB
	for _, n := range ns {
		// The device's own entries with a remote; not the bridge's
		// (NTF_MASTER) learnt ones, nor other devices'.
		if n.LinkIndex != lk.Attrs().Index || len(n.IP) == 0 || n.Flags&unix.NTF_MASTER != 0 {
			continue
		}
		out = append(out, FDB{MAC: n.HardwareAddr.String(), Dst: n.IP.String()})
	}
	return out, nil
}

func fdbNeigh(lk netlink.Link, e FDB) (*netlink.Neigh, error) {
	mac, err := net.ParseMAC(e.MAC)
	if err != nil {
		return nil, fmt.Errorf("fdb entry: %w", err)
	}
	dst := net.ParseIP(e.Dst)
	if dst == nil {
		return nil, fmt.Errorf("fdb entry: bad destination %q", e.Dst)
	}
	return &netlink.Neigh{LinkIndex: lk.Attrs().Index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
		Flags: netlink.NTF_SELF, IP: dst, HardwareAddr: mac}, nil
}

func (l *Linux) AddFDB(_ context.Context, dev string, e FDB) error {
	lk, err := l.link(dev)
	if err != nil {
		return err
	}
	n, err := fdbNeigh(lk, e)
	if err != nil {
		return err
	}
	if err := l.h.NeighAppend(n); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("fdb append %s dst %s dev %s: %w", e.MAC, e.Dst, dev, err)
	}
	return nil
}

func (l *Linux) DelFDB(_ context.Context, dev string, e FDB) error {
	lk, err := l.h.LinkByName(dev)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("link %s: %w", dev, err)
	}
	n, err := fdbNeigh(lk, e)
	if err != nil {
		return err
	}
	if err := l.h.NeighDel(n); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("fdb del %s dst %s dev %s: %w", e.MAC, e.Dst, dev, err)
	}
	return nil
}

func (l *Linux) Neighs(_ context.Context, dev string) ([]Neigh, error) {
	lk, ns, err := l.neighs(dev, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	var out []Neigh
	for _, n := range ns {
		if n.LinkIndex != lk.Attrs().Index || n.State&netlink.NUD_PERMANENT == 0 ||
			(n.Family != unix.AF_INET && n.Family != unix.AF_INET6) || len(n.IP) == 0 {
			continue
		}
		out = append(out, Neigh{IP: n.IP.String(), MAC: n.HardwareAddr.String()})
	}
	return out, nil
}

func ipNeigh(lk netlink.Link, n Neigh) (*netlink.Neigh, error) {
	ip := net.ParseIP(n.IP)
	if ip == nil {
		return nil, fmt.Errorf("neighbour: bad address %q", n.IP)
	}
	fam := unix.AF_INET6
	if ip.To4() != nil {
		fam = unix.AF_INET
	}
	x := &netlink.Neigh{LinkIndex: lk.Attrs().Index, Family: fam, State: netlink.NUD_PERMANENT, IP: ip}
	if n.MAC != "" {
		mac, err := net.ParseMAC(n.MAC)
		if err != nil {
			return nil, fmt.Errorf("neighbour: %w", err)
		}
		x.HardwareAddr = mac
	}
	return x, nil
}

func (l *Linux) AddNeigh(_ context.Context, dev string, n Neigh) error {
	lk, err := l.link(dev)
	if err != nil {
		return err
	}
	x, err := ipNeigh(lk, n)
	if err != nil {
		return err
	}
	if err := l.h.NeighSet(x); err != nil {
		return fmt.Errorf("neigh replace %s lladdr %s dev %s: %w", n.IP, n.MAC, dev, err)
	}
	return nil
}

func (l *Linux) DelNeigh(_ context.Context, dev string, n Neigh) error {
	lk, err := l.h.LinkByName(dev)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("link %s: %w", dev, err)
	}
	x, err := ipNeigh(lk, Neigh{IP: n.IP})
	if err != nil {
		return err
	}
	if err := l.h.NeighDel(x); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("neigh del %s dev %s: %w", n.IP, dev, err)
	}
	return nil
}

func (l *Linux) Watch(ctx context.Context) (<-chan struct{}, error) {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	ns := l.ns
	failed := make(chan struct{}, 1)
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		Namespace: &ns,
		ErrorCallback: func(error) {
			select {
			case failed <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to link updates: %w", err)
	}
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-failed:
				return
			case _, ok := <-updates:
				if !ok {
					return
				}
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out, nil
}

// Capabilities probes once, in a throwaway namespace, which device kinds
// this kernel can create (it loads no modules: what is not built in or
// loaded is missing).
func (l *Linux) Capabilities(context.Context) Capabilities {
	l.once.Do(func() { l.caps = Probe() })
	return l.caps
}

// Probe creates one device of each kind in a new, unnamed network
// namespace and reports what worked.
func Probe() Capabilities {
	c := Capabilities{Missing: map[string]string{}}
	kinds := []string{"bridge", "vxlan", "vlan", "geneve", "gre"}
	ns, err := knetns.New()
	if err != nil {
		for _, k := range kinds {
			c.Missing[k] = "cannot probe: " + err.Error()
		}
		return c
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		for _, k := range kinds {
			c.Missing[k] = "cannot probe: " + err.Error()
		}
		return c
	}
	defer h.Close()
	try := func(kind string, lk netlink.Link) bool {
		if err := h.LinkAdd(lk); err != nil {
			c.Missing[kind] = err.Error()
			return false
		}
		h.LinkDel(lk)
		return true
	}
	parent := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}, PeerName: "probe1"}
	parentIdx := 0
	if err := h.LinkAdd(parent); err == nil {
		if p, err := h.LinkByName("probe0"); err == nil {
			parentIdx = p.Attrs().Index
		}
	}
	c.Bridge = try("bridge", &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "probe-br"}})
	c.VXLAN = try("vxlan", &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "probe-vx"}, VxlanId: 1, Port: VXLANPort, SrcAddr: net.IPv4(192, 0, 2, 1)})
	if parentIdx != 0 {
		c.VLAN = try("vlan", &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: "probe-vl", ParentIndex: parentIdx}, VlanId: 10})
	} else {
		c.Missing["vlan"] = "no veth to put a vlan on"
	}
	c.Geneve = try("geneve", &netlink.Geneve{LinkAttrs: netlink.LinkAttrs{Name: "probe-gn"}, ID: 1, Remote: net.IPv4(192, 0, 2, 2)})
	c.GRE = try("gre", &netlink.Gretap{LinkAttrs: netlink.LinkAttrs{Name: "probe-gre"}, Local: net.IPv4(192, 0, 2, 1), Remote: net.IPv4(192, 0, 2, 2)})
	return c
}

// Host is the Kernel of the calling thread's network namespace and the
// function that releases it.
func Host(owner string) (Kernel, func(), error) {
	k, err := Open(owner)
	if err != nil {
		return nil, nil, err
	}
	return k, func() { k.Close() }, nil
}
