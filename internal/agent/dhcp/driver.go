// Package dhcp is the agent's driver of section "dhcp": one DHCP, DNS and
// metadata service for every network the scheduler gave this host (no
// dnsmasq, no process or configuration file per network). For each
// network it keeps a namespace qdhcp-<network> holding the namespace side
// of the network's DHCP port (the host side is wired into the network's
// bridge by the l2 driver), opens the services' sockets inside it and
// serves them from one table (internal/agent/dhcp/service) that deltas of
// the channel update in place: a port's lease is servable as soon as its
// delta is applied, and the server is told so (the port's DHCP
// provisioning block).
package dhcp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"muon/internal/agent"
	"muon/internal/agent/dhcp/service"
	"muon/internal/agentapi"
	"muon/internal/kernel"
)

func init() { agent.RegisterDriver(agentapi.DHCPSection, NewDriver) }

// routerOwners are the device owners of router interfaces: a subnet with
// one is routed (its instances reach metadata through the router).
var routerOwners = []string{"network:router_interface", "network:router_interface_distributed", "network:ha_router_replicated_interface"}

// driver serves the host's section "dhcp".
type driver struct {
	s   agent.Settings
	k   Kernel
	log *slog.Logger
	t   *service.Table

	nets  map[string]agentapi.DHCPNetwork
	ports map[string]agentapi.DHCPPort
	// routed are the subnets with a router interface, from the ports.
	routed map[string]bool

	// serving is each network's running services; ensured the DHCP
	// port as the last Sync made it.
	serving map[string]*serving
	ensured map[string]string
	meta    *http.Server

	// reported are the ports the server was told are served.
	reported map[string]bool
	// swept tells that the kernel was looked through since the last
	// full state, for namespaces that serve nothing.
	swept bool
	// took is how long the last Sync took.
	took time.Duration
}

type serving struct {
	cancel context.CancelFunc
	socks  *Sockets
	v6     bool
	wg     sync.WaitGroup
}

// NewDriver is the dhcp driver of an agent. Over the fake L2 kernel of
// tests it takes a fake of its own.
func NewDriver(s agent.Settings, hk kernel.Kernel, log *slog.Logger) agent.Driver {
	var k Kernel
	if _, fake := hk.(*kernel.Fake); fake {
		k = NewFake()
	} else {
		k = NewKernel(s.NamespacePrefix, hk.Mark)
	}
	return New(s, k, log)
}

// New is a dhcp driver over k.
func New(s agent.Settings, k Kernel, log *slog.Logger) agent.Driver {
	d := &driver{s: s, k: k, log: log,
		t: service.NewTable(service.Config{LeaseTime: s.DHCP.LeaseTime, Upstreams: s.DHCP.DNSServers,
			MetadataURL: s.DHCP.MetadataURL, SharedSecret: s.DHCP.MetadataSecret}, log),
		nets: map[string]agentapi.DHCPNetwork{}, ports: map[string]agentapi.DHCPPort{}, routed: map[string]bool{},
		serving: map[string]*serving{}, ensured: map[string]string{}, reported: map[string]bool{}}
	// One metadata server for the host; each namespace's listener tells
	// it which network a request came from.
	d.meta = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			netID, _ := r.Context().Value(netKey{}).(string)
			d.t.Metadata(netID).ServeHTTP(w, r)
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if nc, ok := c.(netConn); ok {
				return context.WithValue(ctx, netKey{}, nc.netID)
			}
			return ctx
		},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return d
}

type netKey struct{}

// netListener tags its connections with their network.
type netListener struct {
	net.Listener
	netID string
}

type netConn struct {
	net.Conn
	netID string
}

func (l netListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return netConn{Conn: c, netID: l.netID}, nil
}

func decode(raw json.RawMessage) (agentapi.DHCP, error) {
	var v agentapi.DHCP
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, err
	}
	for _, n := range v.Networks {
		if n.ID == "" {
			return v, errors.New("a network without an id")
		}
	}
	for _, p := range v.Ports {
		if p.ID == "" || p.NetworkID == "" {
			return v, errors.New("a port without an id or network")
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
	d.t.Reset()
	d.swept = false
	clear(d.nets)
	clear(d.ports)
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

// merge puts a section or delta into the table. A port that is, or was,
// a router's interface changes which subnets are routed.
func (d *driver) merge(v agentapi.DHCP) {
	touched := map[string]bool{}
	for _, id := range v.RemovedNetworks {
		delete(d.nets, id)
		d.t.RemoveNetwork(id)
		for pid, p := range d.ports {
			if p.NetworkID == id {
				delete(d.ports, pid)
			}
		}
	}
	for _, id := range v.RemovedPorts {
		if p, ok := d.ports[id]; ok {
			if slices.Contains(routerOwners, p.DeviceOwner) {
				touched[p.NetworkID] = true
			}
			delete(d.ports, id)
			d.t.RemovePort(id)
			delete(d.reported, id)
		}
	}
	for _, n := range v.Networks {
		d.nets[n.ID] = n
		touched[n.ID] = true
	}
	for _, p := range v.Ports {
		old, had := d.ports[p.ID]
		if slices.Contains(routerOwners, p.DeviceOwner) || had && slices.Contains(routerOwners, old.DeviceOwner) {
			touched[p.NetworkID] = true
		}
		if had && (old.MAC != p.MAC || !slices.Equal(old.FixedIPs, p.FixedIPs)) {
			delete(d.reported, p.ID) // served anew
		}
		d.ports[p.ID] = p
		d.t.SetPort(p)
	}
	if len(touched) == 0 {
		return
	}
	clear(d.routed)
	for _, p := range d.ports {
		if slices.Contains(routerOwners, p.DeviceOwner) {
			for _, f := range p.FixedIPs {
				d.routed[f.SubnetID] = true
			}
		}
	}
	for id := range touched {
		n, ok := d.nets[id]
		if !ok {
			continue
		}
		n.Subnets = slices.Clone(n.Subnets)
		for i := range n.Subnets {
			n.Subnets[i].Routed = d.routed[n.Subnets[i].ID]
		}
		d.nets[id] = n
		d.t.SetNetwork(n)
	}
}

// port is a network's DHCP port as the kernel makes it; false while the
// server has not made it yet.
func port(n agentapi.DHCPNetwork) (Port, bool) {
	if n.Port.ID == "" || n.Port.MAC == "" {
		return Port{}, false
	}
	cidrs := map[string]string{}
	for _, s := range n.Subnets {
		cidrs[s.ID] = s.CIDR
	}
	p := Port{NetworkID: n.ID, Tap: cmp.Or(n.Port.Device, agentapi.TapName(n.Port.ID)), Dev: agentapi.NSDeviceName(n.Port.ID),
		MAC: n.Port.MAC, MTU: n.MTU}
	for _, f := range n.Port.FixedIPs {
		pf, err := netip.ParsePrefix(cidrs[f.SubnetID])
		a, err2 := netip.ParseAddr(f.IPAddress)
		if err != nil || err2 != nil {
			continue
		}
		p.Addrs = append(p.Addrs, netip.PrefixFrom(a, pf.Bits()).String())
	}
	slices.Sort(p.Addrs)
	return p, true
}

func hasV6(n agentapi.DHCPNetwork) bool {
	return slices.ContainsFunc(n.Subnets, func(s agentapi.DHCPSubnet) bool { return s.IPVersion == 6 })
}

// Sync makes a namespace and services for every network with its DHCP
// port, and removes those of networks no longer served.
func (d *driver) Sync(ctx context.Context) error {
	began := time.Now()
	defer func() { d.took = time.Since(began) }()
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(d.nets)) {
		n := d.nets[id]
		p, ok := port(n)
		if !ok {
			continue
		}
		key := fmt.Sprint(p)
		if d.ensured[id] != key {
			if err := d.k.EnsurePort(ctx, p); err != nil {
				errs = append(errs, fmt.Errorf("network %s: %w", id, err))
				delete(d.ensured, id)
				continue
			}
			d.ensured[id] = key
		}
		if sv := d.serving[id]; sv != nil && sv.v6 == hasV6(n) {
			continue
		}
		d.stop(id)
		if err := d.serve(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", id, err))
		}
	}
	gone := map[string]bool{}
	if !d.swept {
		// Once after a full state: namespaces of ours from before (a
		// restart) that serve nothing now.
		present, err := d.k.Served(ctx)
		if err != nil {
			errs = append(errs, err)
		} else {
			d.swept = true
		}
		for _, id := range present {
			gone[id] = true
		}
	}
	for id := range d.serving {
		gone[id] = true
	}
	for id := range d.ensured {
		gone[id] = true
	}
	for id := range gone {
		if _, ok := d.nets[id]; ok {
			if _, ready := port(d.nets[id]); ready {
				continue
			}
		}
		d.stop(id)
		delete(d.ensured, id)
		if err := d.k.Remove(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// serve opens a network's sockets and serves them until stopped.
func (d *driver) serve(ctx context.Context, n agentapi.DHCPNetwork) error {
	v6 := hasV6(n)
	socks, err := d.k.Listen(ctx, n.ID, v6)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	sv := &serving{cancel: cancel, socks: socks, v6: v6}
	log := d.log.With("network", n.ID)
	run := func(what string, fn func() error) {
		sv.wg.Go(func() {
			if err := fn(); err != nil && sctx.Err() == nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
				log.WarnContext(sctx, "service stopped", "service", what, "err", err)
			}
		})
	}
	if socks.DHCPv4 != nil {
		run("dhcpv4", func() error { return d.t.ServeDHCPv4(sctx, n.ID, socks.DHCPv4) })
	}
	if socks.DHCPv6 != nil {
		run("dhcpv6", func() error { return d.t.ServeDHCPv6(sctx, n.ID, socks.DHCPv6) })
	}
	if socks.RA != nil {
		run("ra", func() error { return d.t.ServeRA(sctx, n.ID, socks.RA, socks.MAC) })
	}
	if socks.DNSUDP != nil || socks.DNSTCP != nil {
		run("dns", func() error { return d.t.ServeDNS(sctx, n.ID, socks.DNSUDP, socks.DNSTCP) })
	}
	if socks.Metadata != nil {
		run("metadata", func() error { return d.meta.Serve(netListener{Listener: socks.Metadata, netID: n.ID}) })
	}
	d.serving[n.ID] = sv
	log.DebugContext(ctx, "serving", "v6", v6)
	return nil
}

// stop ends a network's services.
func (d *driver) stop(id string) {
	sv := d.serving[id]
	if sv == nil {
		return
	}
	sv.cancel()
	sv.socks.Close()
	sv.wg.Wait()
	delete(d.serving, id)
}

// Drifted tells whether a namespace of a served network went (its name
// is looked for, not inside it).
func (d *driver) Drifted(ctx context.Context) bool {
	present, err := d.k.Present(ctx)
	if err != nil {
		return true
	}
	have := map[string]bool{}
	for _, id := range present {
		have[id] = true
	}
	for id := range d.ensured {
		if !have[id] {
			return true
		}
	}
	return false
}

// Report names the ports newly servable: on a network this host serves,
// with their lease in the table.
func (d *driver) Report() (any, func()) {
	var ready []string
	for id, p := range d.ports {
		if d.reported[id] || d.serving[p.NetworkID] == nil || !d.t.Servable(id) {
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
	return agentapi.DHCPStatus{Ready: ready}, func() {
		for _, id := range ready {
			d.reported[id] = true
		}
	}
}

// Forget makes the next Report name every servable port again.
func (d *driver) Forget() { clear(d.reported) }

// Heartbeat shows the driver as Neutron's DHCP agent.
func (d *driver) Heartbeat(ctx context.Context) agentapi.Heartbeat {
	subnets := 0
	for _, n := range d.nets {
		subnets += len(n.Subnets)
	}
	lease := d.s.DHCP.LeaseTime
	if lease == 0 {
		lease = service.DefaultLeaseTime
	}
	return agentapi.Heartbeat{AgentType: "DHCP agent", Binary: "muon-dhcp-agent", Topic: "dhcp_agent",
		Configurations: map[string]any{
			"networks": len(d.nets), "ports": len(d.ports), "subnets": subnets,
			"dhcp_driver": "muon", "dhcp_lease_duration": int(lease / time.Second),
			"log_agent_heartbeats": false, "notifies_port_ready": true,
		}}
}

// LogAttrs are what the agent logs when in sync.
func (d *driver) LogAttrs() []any {
	return []any{"dhcp_networks", len(d.serving), "dhcp_ports", len(d.ports), "dhcp_sync", d.took.Round(time.Millisecond)}
}
