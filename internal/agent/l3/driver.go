// Package l3 is the agent's driver of section "l3": Neutron's L3 agent
// in legacy mode. Each router the scheduler gave this host is a
// namespace qrouter-<router> holding the router's side of its ports'
// veth pairs ("qr-" on tenant networks, "qg-" on the external one; the
// host sides are wired into the networks' bridges by the l2 driver), its
// routes, and its NAT in one nftables table: SNAT, floating IPs as maps
// (one element each) and port forwardings as a map of (address,
// protocol, port). A change touches only what it changes: one floating
// IP is two map elements and an address, in one transaction, and no
// other flow notices.
package l3

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"

	"muon/internal/agent"
	"muon/internal/agent/dhcp/service"
	"muon/internal/agentapi"
	"muon/internal/kernel"
)

func init() { agent.RegisterDriver(agentapi.L3Section, NewDriver) }

// driver builds the host's section "l3".
type driver struct {
	s   agent.Settings
	k   Kernel
	log *slog.Logger

	routers map[string]agentapi.Router
	fips    map[string]agentapi.FloatingIP
	pfs     map[string]agentapi.PortForwarding

	// dirty are the routers to Sync; ensured those the last Sync left in
	// place, with the floating IPs in each.
	dirty   map[string]bool
	ensured map[string]map[string]bool
	// reported are the floating IPs the server was told are ACTIVE.
	reported map[string]bool
	swept    bool
	took     time.Duration

	// ras are the interfaces' router advertisers.
	ras     map[raKey]*advertiser
	raStats service.Counters
}

// NewDriver is the l3 driver of an agent whose L3 role is on (an agent
// mode set), nil otherwise. Over the fake L2 kernel of tests it takes a
// fake of its own.
func NewDriver(s agent.Settings, hk kernel.Kernel, log *slog.Logger) agent.Driver {
	if s.L3AgentMode == "" {
		return nil
	}
	var k Kernel
	if _, fake := hk.(*kernel.Fake); fake {
		k = NewFake()
	} else {
		k = NewKernel(s.NamespacePrefix, hk.Mark)
	}
	return New(s, k, log)
}

// New is an l3 driver over k.
func New(s agent.Settings, k Kernel, log *slog.Logger) agent.Driver {
	return &driver{s: s, k: k, log: log,
		routers: map[string]agentapi.Router{}, fips: map[string]agentapi.FloatingIP{}, pfs: map[string]agentapi.PortForwarding{},
		dirty: map[string]bool{}, ensured: map[string]map[string]bool{}, reported: map[string]bool{},
		ras: map[raKey]*advertiser{}}
}

func decode(raw json.RawMessage) (agentapi.L3, error) {
	var v agentapi.L3
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, err
	}
	for _, r := range v.Routers {
		if r.ID == "" {
			return v, errors.New("a router without an id")
		}
	}
	for _, f := range v.FloatingIPs {
		if f.ID == "" || f.RouterID == "" {
			return v, errors.New("a floating IP without an id or router")
		}
	}
	for _, p := range v.PortForwardings {
		if p.ID == "" || p.RouterID == "" {
			return v, errors.New("a port forwarding without an id or router")
		}
	}
	return v, nil
}

// Load takes the whole section.
func (d *driver) Load(raw json.RawMessage) error {
	v, err := decode(raw)
	if err != nil {
		return err
	}
	for id := range d.routers {
		d.dirty[id] = true // to go, unless it comes again
	}
	clear(d.routers)
	clear(d.fips)
	clear(d.pfs)
	d.swept = false
	d.merge(v)
	return nil
}

// Apply merges a delta.
func (d *driver) Apply(raw json.RawMessage) error {
	v, err := decode(raw)
	if err != nil {
		return err
	}
	d.merge(v)
	return nil
}

func (d *driver) merge(v agentapi.L3) {
	for _, id := range v.RemovedRouters {
		delete(d.routers, id)
		d.dirty[id] = true
		for fid, f := range d.fips {
			if f.RouterID == id {
				delete(d.fips, fid)
			}
		}
		for pid, p := range d.pfs {
			if p.RouterID == id {
				delete(d.pfs, pid)
			}
		}
	}
	for _, id := range v.RemovedFloatingIPs {
		if f, ok := d.fips[id]; ok {
			delete(d.fips, id)
			delete(d.reported, id)
			d.dirty[f.RouterID] = true
		}
	}
	for _, id := range v.RemovedPortForwardings {
		if p, ok := d.pfs[id]; ok {
			delete(d.pfs, id)
			d.dirty[p.RouterID] = true
		}
	}
	for _, r := range v.Routers {
		d.routers[r.ID] = r
		d.dirty[r.ID] = true
	}
	for _, f := range v.FloatingIPs {
		if old, ok := d.fips[f.ID]; ok {
			d.dirty[old.RouterID] = true
			if old != f {
				delete(d.reported, f.ID)
			}
		}
		d.fips[f.ID] = f
		d.dirty[f.RouterID] = true
	}
	for _, p := range v.PortForwardings {
		if old, ok := d.pfs[p.ID]; ok {
			d.dirty[old.RouterID] = true
		}
		d.pfs[p.ID] = p
		d.dirty[p.RouterID] = true
	}
}

// spec is a router as the kernel makes it, with the floating IPs and
// port forwardings that are its.
func (d *driver) spec(r agentapi.Router, fips []agentapi.FloatingIP, pfs []agentapi.PortForwarding) Spec {
	s := Spec{RouterID: r.ID, FloatingIPs: map[string]string{}}
	pair := func(p agentapi.RouterPort, dev string) Pair {
		out := Pair{Tap: agentapi.TapName(p.ID), Dev: dev, MAC: p.MAC, MTU: p.MTU}
		for _, a := range p.Addrs {
			if ip, err := netip.ParseAddr(a.IP); err == nil && a.PrefixLen > 0 {
				out.Addrs = append(out.Addrs, netip.PrefixFrom(ip, a.PrefixLen).String())
			}
		}
		slices.Sort(out.Addrs)
		return out
	}
	if g := r.Gateway; g != nil {
		s.Gateway = agentapi.GatewayName(g.ID)
		s.Ports = append(s.Ports, pair(*g, s.Gateway))
		s.SNAT = r.EnableSNAT
		v4, v6 := false, false
		for _, a := range g.Addrs {
			ip, err := netip.ParseAddr(a.IP)
			if err != nil {
				continue
			}
			if ip.Is4() && s.GatewayIP == "" {
				s.GatewayIP = a.IP
			}
			if gw, err := netip.ParseAddr(a.Gateway); err == nil && (gw.Is4() && !v4 || gw.Is6() && !v6) {
				s.NextHops = append(s.NextHops, a.Gateway)
				v4, v6 = v4 || gw.Is4(), v6 || gw.Is6()
			}
		}
	}
	for _, in := range r.Interfaces {
		s.Ports = append(s.Ports, pair(in, agentapi.InterfaceName(in.ID)))
	}
	for _, rt := range r.Routes {
		s.Routes = append(s.Routes, Route{Destination: rt.Destination, Nexthop: rt.Nexthop})
	}
	if s.Gateway == "" || !r.AdminStateUp {
		// No way out: no floating IP, no forwarding, no NAT to help.
		return s
	}
	s.Helpers = r.ConntrackHelpers
	for _, f := range fips {
		if _, ok := s.FloatingIPs[f.FloatingIP]; !ok || f.FixedIP != "" {
			s.FloatingIPs[f.FloatingIP] = f.FixedIP
		}
	}
	for _, p := range pfs {
		if p.ExternalPortEnd < p.ExternalPort {
			p.ExternalPortEnd = p.ExternalPort
		}
		if p.InternalPortEnd < p.InternalPort {
			p.InternalPortEnd = p.InternalPort
		}
		if _, ok := s.FloatingIPs[p.FloatingIP]; !ok {
			s.FloatingIPs[p.FloatingIP] = ""
		}
		s.Forwards = append(s.Forwards, Forward{FloatingIP: p.FloatingIP, Protocol: p.Protocol, ExternalPort: p.ExternalPort,
			ExternalEnd: p.ExternalPortEnd, InternalIP: p.InternalIP, InternalPort: p.InternalPort, InternalEnd: p.InternalPortEnd})
	}
	slices.SortFunc(s.Forwards, func(a, b Forward) int { return cmp.Compare(a.String(), b.String()) })
	return s
}

// Sync makes every changed router, and removes those no longer hosted.
func (d *driver) Sync(ctx context.Context) error {
	began := time.Now()
	defer func() { d.took = time.Since(began) }()
	var errs []error
	if !d.swept {
		// Once after a full state: namespaces of ours from before (a
		// restart) that host nothing now.
		present, err := d.k.Routers(ctx)
		if err != nil {
			errs = append(errs, err)
		} else {
			d.swept = true
		}
		for _, id := range present {
			if _, ok := d.routers[id]; !ok {
				d.dirty[id] = true
			}
		}
	}
	if len(d.dirty) == 0 {
		return errors.Join(errs...)
	}
	byRouter := map[string][]agentapi.FloatingIP{}
	for _, f := range d.fips {
		if d.dirty[f.RouterID] {
			byRouter[f.RouterID] = append(byRouter[f.RouterID], f)
		}
	}
	pfsBy := map[string][]agentapi.PortForwarding{}
	for _, p := range d.pfs {
		if d.dirty[p.RouterID] {
			pfsBy[p.RouterID] = append(pfsBy[p.RouterID], p)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(d.dirty)) {
		r, ok := d.routers[id]
		if !ok {
			d.advertise(ctx, id, nil)
			if err := d.k.Remove(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("router %s: %w", id, err))
				continue
			}
			delete(d.ensured, id)
			delete(d.dirty, id)
			continue
		}
		spec := d.spec(r, byRouter[id], pfsBy[id])
		if err := d.k.Ensure(ctx, spec); err != nil {
			errs = append(errs, fmt.Errorf("router %s: %w", id, err))
			delete(d.ensured, id)
			continue
		}
		in := map[string]bool{}
		for fip := range spec.FloatingIPs {
			in[fip] = true
		}
		d.ensured[id] = in
		if err := d.advertise(ctx, id, &r); err != nil {
			errs = append(errs, fmt.Errorf("router %s: advertisements: %w", id, err))
			continue // again next Sync
		}
		delete(d.dirty, id)
	}
	return errors.Join(errs...)
}

// Drifted tells whether a hosted router's namespace went.
func (d *driver) Drifted(ctx context.Context) bool {
	present, err := d.k.Present(ctx)
	if err != nil {
		return true
	}
	have := map[string]bool{}
	for _, id := range present {
		have[id] = true
	}
	drift := false
	for id := range d.ensured {
		if !have[id] {
			d.dirty[id] = true
			drift = true
		}
	}
	return drift
}

// Report names the floating IPs newly in place.
func (d *driver) Report() (any, func()) {
	var ready []string
	for id, f := range d.fips {
		if d.reported[id] || !d.ensured[f.RouterID][f.FloatingIP] || d.dirty[f.RouterID] {
			continue
		}
		if ready = append(ready, id); len(ready) == agent.MaxReport {
			break
		}
	}
	if len(ready) == 0 {
		return nil, func() {}
	}
	slices.Sort(ready)
	return agentapi.L3Status{Active: ready}, func() {
		for _, id := range ready {
			d.reported[id] = true
		}
	}
}

// Forget makes the next Report name every floating IP in place again.
func (d *driver) Forget() { clear(d.reported) }

// Heartbeat shows the driver as Neutron's L3 agent.
func (d *driver) Heartbeat(ctx context.Context) agentapi.Heartbeat {
	ifaces, gws := 0, 0
	for _, r := range d.routers {
		ifaces += len(r.Interfaces)
		if r.Gateway != nil {
			gws++
		}
	}
	return agentapi.Heartbeat{AgentType: "L3 agent", Binary: "muon-l3-agent", Topic: "l3_agent",
		Configurations: map[string]any{
			"agent_mode": d.s.L3AgentMode, "routers": len(d.routers), "floating_ips": len(d.fips),
			"interfaces": ifaces, "ex_gw_ports": gws, "interface_driver": "muon",
			"handle_internal_only_routers": true, "log_agent_heartbeats": false,
		}}
}

// LogAttrs are what the agent logs when in sync.
func (d *driver) LogAttrs() []any {
	return []any{"l3_routers", len(d.ensured), "l3_floating_ips", len(d.fips), "l3_sync", d.took.Round(time.Millisecond)}
}
