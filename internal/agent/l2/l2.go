// Package l2 is the Linux bridge agent's driver of section "l2": its
// converge step turns one host's section (agentapi.L2) into bridges,
// VXLAN devices, uplinks, tap attachments and l2population entries in the
// kernel, and removes what we own that the state no longer names.
package l2

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"muon/internal/agentapi"
	"muon/internal/kernel"
)

// Config is one host's data plane settings.
type Config struct {
	Host     string
	TunnelIP string // local VXLAN endpoint
	// InterfaceMappings maps physical networks to host interfaces, for
	// flat and VLAN networks (physnet1 -> eth1).
	InterfaceMappings map[string]string
	// ARPResponder sets the VXLAN devices' proxy flag and programs a
	// neighbour entry for every remote address, as Neutron's
	// arp_responder: ARP is answered locally and never crosses the
	// tunnel. Off (the default), ARP floods to the remotes' flood entries,
	// so addresses l2population does not know (allowed address pairs,
	// addresses set inside an instance) still resolve.
	ARPResponder bool
}

// Agent converges the kernel to a host's state. Sync is safe for one
// caller at a time; Status from any goroutine.
type Agent struct {
	cfg Config
	k   kernel.Kernel
	log *slog.Logger

	mu     sync.Mutex
	status map[string]bool // port id -> wired
	expect []kernel.Link

	// wired is each network as the last Sync wired it, and checkedAt
	// when every network was last wired in full (FDB and neighbours
	// read back): a network unchanged since, whose devices are in place,
	// is not wired again until recheck has passed.
	wired     map[string]agentapi.Network
	checkedAt time.Time
	now       func() time.Time
}

// recheck is how often every network is wired in full, unchanged or not.
const recheck = 30 * time.Second

// Expected is the host's links as the last Sync left them, as far as it
// knows (what it listed, with its own changes applied): a listing that
// differs has changed since.
func (a *Agent) Expected() []kernel.Link {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.expect)
}

// New is an agent over kernel k.
func New(cfg Config, k kernel.Kernel, log *slog.Logger) *Agent {
	return &Agent{cfg: cfg, k: k, log: log, status: map[string]bool{}, wired: map[string]agentapi.Network{}, now: time.Now}
}

// Status is which of the last Sync's ports are wired (up) and which not
// (down), sorted.
func (a *Agent) Status() agentapi.L2Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	var s agentapi.L2Status
	for id, up := range a.status {
		if up {
			s.Up = append(s.Up, id)
		} else {
			s.Down = append(s.Down, id)
		}
	}
	slices.Sort(s.Up)
	slices.Sort(s.Down)
	return s
}

// VXLANName is the VXLAN device of a VNI, as Neutron names it.
func VXLANName(vni int64) string { return "vxlan-" + strconv.FormatInt(vni, 10) }

// VLANName is the 802.1Q sub-interface of a physical interface.
func VLANName(dev string, vid int64) string {
	s := "." + strconv.FormatInt(vid, 10)
	if len(dev)+len(s) > 15 {
		dev = dev[:15-len(s)]
	}
	return dev + s
}

// plan is what one Sync wants, gathered as it goes.
type plan struct {
	links    map[string]kernel.Link
	bridges  map[string]bool
	tunnels  map[string]bool   // vxlan devices
	vlans    map[string]bool   // vlan sub-interfaces
	attached map[string]string // device -> bridge it belongs on
	// after is links as the Sync leaves them: the listing with every
	// change that worked applied.
	after map[string]kernel.Link
}

// done records a change that worked in p.after.
func (p *plan) done(name string, f func(*kernel.Link)) {
	l, ok := p.after[name]
	if !ok {
		l = kernel.Link{Name: name}
	}
	f(&l)
	p.after[name] = l
}

// Sync makes the kernel match want: it does all it can and returns every
// failure joined (a network it cannot wire leaves its ports down).
func (a *Agent) Sync(ctx context.Context, want agentapi.L2) error {
	links, err := a.k.Links(ctx)
	if err != nil {
		return err
	}
	p := plan{links: map[string]kernel.Link{}, bridges: map[string]bool{}, tunnels: map[string]bool{},
		vlans: map[string]bool{}, attached: map[string]string{}, after: map[string]kernel.Link{}}
	for _, l := range links {
		p.links[l.Name] = l
		p.after[l.Name] = l
	}
	ports := map[string][]agentapi.Port{}
	for _, pt := range want.Ports {
		ports[pt.NetworkID] = append(ports[pt.NetworkID], pt)
	}
	nets := slices.SortedFunc(slices.Values(want.Networks), func(x, y agentapi.Network) int { return cmp.Compare(x.ID, y.ID) })
	var errs []error
	wired := map[string]agentapi.Network{}
	full := a.now().Sub(a.checkedAt) >= recheck
	for _, n := range nets {
		if len(ports[n.ID]) == 0 {
			continue
		}
		if !full && a.inPlace(&p, n) {
			wired[n.ID] = n
			continue
		}
		if err := a.wire(ctx, &p, n); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", n.ID, err))
			continue
		}
		wired[n.ID] = n
	}
	a.wired = wired
	if full {
		a.checkedAt = a.now()
	}
	status := map[string]bool{}
	for _, pt := range slices.SortedFunc(slices.Values(want.Ports), func(x, y agentapi.Port) int { return cmp.Compare(x.ID, y.ID) }) {
		up, err := a.plug(ctx, &p, pt, wired)
		if err != nil {
			errs = append(errs, fmt.Errorf("port %s: %w", pt.ID, err))
		}
		status[pt.ID] = up
	}
	errs = append(errs, a.prune(ctx, &p)...)
	a.mu.Lock()
	a.status = status
	a.expect = slices.Collect(maps.Values(p.after))
	a.mu.Unlock()
	return errors.Join(errs...)
}

// inPlace tells whether a network is as the last Sync wired it, its
// bridge and uplink there as that left them; it claims them for the plan.
func (a *Agent) inPlace(p *plan, n agentapi.Network) bool {
	last, ok := a.wired[n.ID]
	if !ok || !reflect.DeepEqual(last, n) {
		return false
	}
	br := agentapi.BridgeName(n.ID)
	if l, ok := p.links[br]; !ok || !l.Up || l.MTU != mtu(n) || l.Alias != a.k.Mark() {
		return false
	}
	var up string
	switch n.NetworkType {
	case "vxlan":
		up = VXLANName(n.SegmentationID)
		p.tunnels[up] = true
	case "vlan":
		up = VLANName(a.cfg.InterfaceMappings[n.PhysicalNetwork], n.SegmentationID)
		p.vlans[up] = true
	case "flat":
		up = a.cfg.InterfaceMappings[n.PhysicalNetwork]
	}
	if up != "" {
		if l, ok := p.links[up]; !ok || !l.Up || l.Master != br {
			return false
		}
		p.attached[up] = br
	}
	p.bridges[br] = true
	return true
}

func mtu(n agentapi.Network) int {
	if n.MTU > 0 {
		return n.MTU
	}
	return 1500
}

// wire makes a network's bridge and uplink.
func (a *Agent) wire(ctx context.Context, p *plan, n agentapi.Network) error {
	br := agentapi.BridgeName(n.ID)
	caps := a.k.Capabilities(ctx)
	switch n.NetworkType {
	case "vxlan", "flat", "vlan", "local":
	default:
		if !caps.Has(n.NetworkType) {
			return caps.Why(n.NetworkType, a.cfg.Host)
		}
		return fmt.Errorf("%s networks are not supported by the Linux bridge agent", n.NetworkType)
	}
	if n.NetworkType == "vxlan" && !caps.VXLAN || n.NetworkType == "vlan" && !caps.VLAN {
		return caps.Why(n.NetworkType, a.cfg.Host)
	}
	p.bridges[br] = true
	if err := a.k.EnsureBridge(ctx, br, mtu(n)); err != nil {
		return err
	}
	p.done(br, func(l *kernel.Link) { l.Kind, l.MTU, l.Up = "bridge", mtu(n), true })
	switch n.NetworkType {
	case "vxlan":
		if a.cfg.TunnelIP == "" {
			return errors.New("no tunnel address configured (--tunnel-ip)")
		}
		if n.SegmentationID <= 0 || n.SegmentationID > 1<<24-1 {
			return fmt.Errorf("bad VNI %d", n.SegmentationID)
		}
		vx := VXLANName(n.SegmentationID)
		p.tunnels[vx] = true
		if err := a.k.EnsureVXLAN(ctx, kernel.VXLAN{Name: vx, VNI: int(n.SegmentationID), Local: a.cfg.TunnelIP,
			Port: kernel.VXLANPort, Proxy: a.cfg.ARPResponder, MTU: mtu(n)}); err != nil {
			return err
		}
		p.done(vx, func(l *kernel.Link) { l.Kind, l.MTU, l.Up = "vxlan", mtu(n), true })
		if err := a.attach(ctx, p, vx, br); err != nil {
			return err
		}
		return a.l2pop(ctx, vx, n)
	case "flat", "vlan":
		dev, ok := a.cfg.InterfaceMappings[n.PhysicalNetwork]
		if !ok {
			return fmt.Errorf("physical network %q has no interface mapping on host %s", n.PhysicalNetwork, a.cfg.Host)
		}
		if _, ok := p.links[dev]; !ok {
			return fmt.Errorf("interface %s (physical network %s) does not exist", dev, n.PhysicalNetwork)
		}
		if n.NetworkType == "vlan" {
			sub := VLANName(dev, n.SegmentationID)
			p.vlans[sub] = true
			if err := a.k.EnsureVLAN(ctx, sub, dev, int(n.SegmentationID), mtu(n)); err != nil {
				return err
			}
			p.done(sub, func(l *kernel.Link) { l.Kind, l.MTU, l.Up = "vlan", mtu(n), true })
			dev = sub
		} else if err := a.k.SetUp(ctx, dev, true); err != nil {
			return err
		} else {
			p.done(dev, func(l *kernel.Link) { l.Up = true })
		}
		return a.attach(ctx, p, dev, br)
	}
	return nil // local: the bridge alone
}

func (a *Agent) attach(ctx context.Context, p *plan, dev, br string) error {
	p.attached[dev] = br
	if err := a.k.SetMaster(ctx, dev, br); err != nil {
		return err
	}
	p.done(dev, func(l *kernel.Link) { l.Master = br })
	return nil
}

// l2pop programs a VXLAN device's FDB (a flood entry per remote, an
// entry per remote MAC) and, with the ARP responder, its neighbour
// entries, exactly: what the state does not name goes.
func (a *Agent) l2pop(ctx context.Context, dev string, n agentapi.Network) error {
	fdb := map[kernel.FDB]bool{}
	neigh := map[string]string{} // ip -> mac
	for _, r := range n.Remotes {
		dst := canonIP(r.TunnelIP)
		if dst == "" || dst == canonIP(a.cfg.TunnelIP) {
			continue
		}
		fdb[kernel.FDB{MAC: kernel.FloodMAC, Dst: dst}] = true
		for _, e := range r.Entries {
			mac := canonMAC(e.MAC)
			if mac == "" {
				a.log.WarnContext(ctx, "ignoring a bad MAC from the server", "network", n.ID, "mac", e.MAC)
				continue
			}
			fdb[kernel.FDB{MAC: mac, Dst: dst}] = true
			for _, ip := range e.IPs {
				if ip := canonIP(ip); ip != "" {
					neigh[ip] = mac
				}
			}
		}
	}
	have, err := a.k.FDB(ctx, dev)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range have {
		if !fdb[e] {
			errs = append(errs, a.k.DelFDB(ctx, dev, e))
		}
		delete(fdb, e)
	}
	for _, e := range slices.SortedFunc(maps.Keys(fdb), func(x, y kernel.FDB) int {
		return cmp.Or(cmp.Compare(x.MAC, y.MAC), cmp.Compare(x.Dst, y.Dst))
	}) {
		errs = append(errs, a.k.AddFDB(ctx, dev, e))
	}
	if !a.cfg.ARPResponder {
		clear(neigh)
	}
	haveN, err := a.k.Neighs(ctx, dev)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, x := range haveN {
		if mac, ok := neigh[x.IP]; !ok {
			errs = append(errs, a.k.DelNeigh(ctx, dev, x))
		} else if mac == x.MAC {
			delete(neigh, x.IP)
		}
	}
	for _, ip := range slices.Sorted(maps.Keys(neigh)) {
		errs = append(errs, a.k.AddNeigh(ctx, dev, kernel.Neigh{IP: ip, MAC: neigh[ip]}))
	}
	return errors.Join(errs...)
}

// plug attaches a port's tap to its network's bridge, or cuts it (admin
// down, network not wired). It reports whether the port is wired.
func (a *Agent) plug(ctx context.Context, p *plan, pt agentapi.Port, wired map[string]agentapi.Network) (bool, error) {
	tap := pt.Device
	if tap == "" {
		tap = agentapi.TapName(pt.ID)
	}
	if _, ok := p.links[tap]; !ok {
		return false, nil // not plugged (yet)
	}
	n, ok := wired[pt.NetworkID]
	if !ok || !pt.AdminStateUp {
		// Cut: off its bridge and down, so nothing reaches it.
		if l := p.links[tap]; l.Master == "" && !l.Up {
			return false, nil
		}
		err := errors.Join(a.k.SetMaster(ctx, tap, ""), a.k.SetUp(ctx, tap, false))
		if err == nil {
			p.done(tap, func(l *kernel.Link) { l.Master, l.Up = "", false })
		}
		return false, err
	}
	br := agentapi.BridgeName(n.ID)
	if l := p.links[tap]; l.MTU == mtu(n) && l.Master == br && l.Up {
		// Wired as the Sync's listing shows it: no call to make (a host
		// with many ports converges in one dump, not four calls a port).
		p.attached[tap] = br
		return true, nil
	}
	if err := a.k.SetMTU(ctx, tap, mtu(n)); err != nil {
		return false, err
	}
	p.done(tap, func(l *kernel.Link) { l.MTU = mtu(n) })
	if err := a.attach(ctx, p, tap, br); err != nil {
		return false, err
	}
	if err := a.k.SetUp(ctx, tap, true); err != nil {
		return false, err
	}
	p.done(tap, func(l *kernel.Link) { l.Up = true })
	return true, nil
}

// prune removes the bridges, VXLAN and VLAN devices we own (our mark)
// that the state no longer wants, and takes off our bridges any device
// not planned on them (the tap of a port that is gone). It never deletes
// a device we did not make, nor touches another's bridge.
func (a *Agent) prune(ctx context.Context, p *plan) []error {
	var errs []error
	mark := a.k.Mark()
	names := slices.Sorted(maps.Keys(p.links))
	gone := map[string]bool{}
	for _, name := range names {
		l := p.links[name]
		if !l.OwnedBy(mark) {
			continue
		}
		stale := false
		switch l.Kind {
		case "bridge":
			stale = !p.bridges[name]
		case "vxlan":
			stale = !p.tunnels[name]
		case "vlan":
			stale = !p.vlans[name]
		}
		if stale {
			a.log.InfoContext(ctx, "removing a stale device", "device", name, "kind", l.Kind)
			gone[name] = true
			if err := a.k.DeleteLink(ctx, name); err != nil {
				errs = append(errs, err)
			} else {
				delete(p.after, name)
				for n, l := range p.after {
					if l.Master == name {
						l.Master = ""
						p.after[n] = l
					}
				}
			}
		}
	}
	for _, name := range names {
		l := p.links[name]
		if gone[name] || l.Master == "" || gone[l.Master] || !(p.bridges[l.Master] || p.links[l.Master].OwnedBy(mark)) {
			continue
		}
		if p.attached[name] == l.Master {
			continue
		}
		a.log.InfoContext(ctx, "detaching a device the state does not place on its bridge", "device", name, "bridge", l.Master)
		if err := a.k.SetMaster(ctx, name, ""); err != nil {
			errs = append(errs, err)
		} else {
			p.done(name, func(l *kernel.Link) { l.Master = "" })
		}
	}
	return errs
}

func canonIP(s string) string {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return ""
	}
	return ip.String()
}

func canonMAC(s string) string {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return ""
	}
	return m.String()
}
