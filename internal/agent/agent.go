// Package agent is the Linux bridge agent process: it registers and
// heartbeats with the server, follows its host's desired state over the
// agent channel (a full state, then deltas by revision with long polls),
// converges the kernel with l2.Agent whenever the state or the host's
// devices change, and reports which ports are wired.
package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"muon/internal/agent/l2"
	"muon/internal/agentapi"
	"muon/internal/kernel"
)

// Config is the agent's settings.
type Config struct {
	Host              string
	TunnelIP          string
	InterfaceMappings map[string]string
	ARPResponder      bool
	AvailabilityZone  string
	// ReportInterval between heartbeats; 0 takes the server's (else 30 s).
	ReportInterval time.Duration
	// Wait is how long one long poll may be held (30 s).
	Wait time.Duration
	// Backoff is the first retry delay after a failure (0.5 s), doubled
	// up to MaxBackoff (15 s).
	Backoff, MaxBackoff time.Duration
	// Poll is how often the host's devices are checked when no link event
	// came (1 s); Resync how often the kernel is converged anyway (30 s).
	Poll, Resync time.Duration
}

func (c *Config) defaults() {
	c.Wait = cmp.Or(c.Wait, 30*time.Second)
	c.Backoff = cmp.Or(c.Backoff, 500*time.Millisecond)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, 15*time.Second)
	c.Poll = cmp.Or(c.Poll, time.Second)
	c.Resync = cmp.Or(c.Resync, 30*time.Second)
}

// Agent is one host's agent.
type Agent struct {
	cfg     Config
	c       *Client
	k       kernel.Kernel
	l2      *l2.Agent
	log     *slog.Logger
	started time.Time

	mu      sync.Mutex
	latest  *agentapi.State
	full    bool            // latest came whole: report every port again
	changed map[string]bool // ports upserted since the last take
	wake    chan struct{}
	up      int // ports wired, for heartbeats
}

// New is an agent talking to the server through c, over kernel k.
func New(cfg Config, c *Client, k kernel.Kernel, log *slog.Logger) *Agent {
	cfg.defaults()
	return &Agent{
		cfg: cfg, c: c, k: k, log: log, started: time.Now().UTC(),
		l2: l2.New(l2.Config{Host: cfg.Host, TunnelIP: cfg.TunnelIP, InterfaceMappings: cfg.InterfaceMappings,
			ARPResponder: cfg.ARPResponder}, k, log),
		changed: map[string]bool{}, wake: make(chan struct{}, 1),
	}
}

// Run works until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	caps := a.k.Capabilities(ctx)
	a.log.InfoContext(ctx, "agent starting", "host", a.cfg.Host, "tunnel_ip", a.cfg.TunnelIP, "server", a.c.Base, "kernel", caps.String())
	for _, kind := range []string{"vxlan", "vlan", "geneve", "gre"} {
		if !caps.Has(kind) {
			a.log.WarnContext(ctx, caps.Why(kind, a.cfg.Host).Error())
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { a.heartbeats(ctx) })
	wg.Go(func() { a.follow(ctx) })
	defer wg.Wait()

	events, err := a.k.Watch(ctx)
	if err != nil {
		a.log.WarnContext(ctx, "no link events; polling devices", "err", err)
	}
	poll := time.NewTicker(a.cfg.Poll)
	defer poll.Stop()
	var (
		view     *agentapi.State
		reported = map[string]bool{} // port -> up, as the server was told
		pending  bool                // a report failed: retry
		seen     string              // the devices as last synced
		last     time.Time
		fullAt   time.Time // a full state came and is not yet reported
	)
	for {
		force := false
		select {
		case <-ctx.Done():
			return nil
		case <-a.wake:
			v, full, changed := a.take()
			view, force = v, true
			if full {
				clear(reported)
				fullAt = time.Now()
			}
			for id := range changed {
				delete(reported, id)
			}
		case _, ok := <-events:
			if !ok {
				events = nil
			}
			// Compared like a poll: the events our own Sync causes change
			// nothing since its fingerprint, and cost one listing, not
			// another Sync.
		case <-poll.C:
		}
		if view == nil {
			continue
		}
		if !force {
			fp, err := a.devices(ctx)
			force = err != nil || fp != seen || time.Since(last) > a.cfg.Resync
		}
		if force {
			if err := a.l2.Sync(ctx, *view); err != nil {
				a.log.WarnContext(ctx, "sync incomplete", "revision", view.Revision, "err", err)
			}
			last = time.Now()
			// What the Sync left, not a second listing: a device that came
			// while it ran differs, and is wired at the next look.
			seen = fingerprint(a.l2.Expected())
			pending = true
		}
		if pending {
			pending = !a.report(ctx, reported)
			if !pending && !fullAt.IsZero() {
				// The whole state is in the kernel and the server knows it.
				up := len(a.l2.Status().Up)
				a.log.InfoContext(ctx, "in sync", "revision", view.Revision, "ports", len(view.Ports), "up", up,
					"since_state", time.Since(fullAt).Round(time.Millisecond), "since_start", time.Since(a.started).Round(time.Millisecond))
				fullAt = time.Time{}
			}
		}
	}
}

// devices fingerprints the host's links (name, up, master), so the poll
// notices a tap that came or went.
func (a *Agent) devices(ctx context.Context) (string, error) {
	links, err := a.k.Links(ctx)
	if err != nil {
		return "", err
	}
	return fingerprint(links), nil
}

func fingerprint(links []kernel.Link) string {
	slices.SortFunc(links, func(x, y kernel.Link) int { return cmp.Compare(x.Name, y.Name) })
	var b strings.Builder
	for _, l := range links {
		fmt.Fprintf(&b, "%s/%v/%s/%d;", l.Name, l.Up, l.Master, l.MTU)
	}
	return b.String()
}

// report tells the server about ports whose wiring changed since it was
// last told; it says whether that worked.
func (a *Agent) report(ctx context.Context, reported map[string]bool) bool {
	st := a.l2.Status()
	a.mu.Lock()
	a.up = len(st.Up)
	a.mu.Unlock()
	var s agentapi.Status
	now := map[string]bool{}
	for _, id := range st.Up {
		now[id] = true
		if up, ok := reported[id]; !ok || !up {
			s.Up = append(s.Up, id)
		}
	}
	for _, id := range st.Down {
		now[id] = false
		if up, ok := reported[id]; !ok || up {
			s.Down = append(s.Down, id)
		}
	}
	for id := range reported {
		if _, ok := now[id]; !ok {
			delete(reported, id)
		}
	}
	if len(s.Up)+len(s.Down) == 0 {
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.c.Status(rctx, a.cfg.Host, s); err != nil {
		if ctx.Err() == nil {
			a.log.WarnContext(ctx, "status report failed; will retry", "up", len(s.Up), "down", len(s.Down), "err", err)
		}
		return false
	}
	a.log.InfoContext(ctx, "status reported", "up", len(s.Up), "down", len(s.Down))
	a.log.DebugContext(ctx, "status report", "up", s.Up, "down", s.Down)
	for _, id := range s.Up {
		reported[id] = true
	}
	for _, id := range s.Down {
		reported[id] = false
	}
	return true
}

func (a *Agent) heartbeats(ctx context.Context) {
	interval := a.cfg.ReportInterval
	failing := false
	for {
		a.mu.Lock()
		up := a.up
		a.mu.Unlock()
		conf := map[string]any{
			"tunneling_ip": a.cfg.TunnelIP, "tunnel_types": []string{"vxlan"},
			"interface_mappings": orEmpty(a.cfg.InterfaceMappings), "bridge_mappings": map[string]string{},
			"devices": up, "kernel": a.k.Capabilities(ctx).Map(), "l2_population": true, "arp_responder_enabled": a.cfg.ARPResponder,
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := a.c.Heartbeat(rctx, agentapi.Heartbeat{
			Host: a.cfg.Host, AgentType: "Linux bridge agent", Binary: "muon-linuxbridge-agent", Topic: "N/A",
			AvailabilityZone: a.cfg.AvailabilityZone, StartedAt: a.started.Format(time.RFC3339), Configurations: conf,
		})
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				a.log.WarnContext(ctx, "heartbeat failed", "err", err)
			}
			failing = true
		default:
			if failing || interval == 0 {
				a.log.InfoContext(ctx, "heartbeat", "agent_id", r.ID, "admin_state_up", r.AdminStateUp)
			}
			failing = false
			if a.cfg.ReportInterval == 0 && r.ReportInterval > 0 {
				interval = time.Duration(r.ReportInterval) * time.Second
			}
		}
		if interval == 0 {
			interval = 30 * time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// follow keeps the latest desired state: a full read, then deltas from
// its revision; on a failure it backs off and resumes from the same
// revision, and reads in full only when the server says to.
func (a *Agent) follow(ctx context.Context) {
	var (
		view  agentapi.State
		rev   int64 = -1
		delay       = a.cfg.Backoff
	)
	fail := func(what string, err error) {
		if ctx.Err() != nil {
			return
		}
		a.log.WarnContext(ctx, what, "revision", rev, "retry_in", delay.Round(time.Millisecond), "err", err)
		d := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
		delay = min(2*delay, a.cfg.MaxBackoff)
	}
	for ctx.Err() == nil {
		if rev < 0 {
			rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			st, err := a.c.State(rctx, a.cfg.Host, -1, 0)
			cancel()
			if err == nil && st.Resync {
				err = errors.New("the server asks to resync a full read")
			}
			if err != nil {
				fail("reading the host's state failed", err)
				continue
			}
			view, rev = st, st.Revision
			a.publish(view, true, nil)
			a.log.InfoContext(ctx, "full state", "revision", rev, "networks", len(st.Networks), "ports", len(st.Ports))
		} else {
			rctx, cancel := context.WithTimeout(ctx, a.cfg.Wait+30*time.Second)
			d, err := a.c.State(rctx, a.cfg.Host, rev, a.cfg.Wait)
			cancel()
			if err != nil {
				fail("waiting for changes failed; resuming from the same revision", err)
				continue
			}
			switch {
			case d.Resync:
				a.log.InfoContext(ctx, "the server asks for a full resync", "revision", rev)
				rev = -1
				continue
			case !d.Delta:
				view, rev = d, d.Revision
				a.publish(view, true, nil)
			default:
				changed := merge(&view, d)
				rev = max(rev, d.Revision)
				view.Revision = rev
				if len(d.Networks)+len(d.Ports)+len(d.RemovedPorts)+len(d.RemovedNetworks) > 0 {
					a.log.DebugContext(ctx, "delta", "revision", rev, "ports", len(d.Ports), "networks", len(d.Networks),
						"removed_ports", len(d.RemovedPorts), "removed_networks", len(d.RemovedNetworks))
					a.publish(view, false, changed)
				}
			}
		}
		delay = a.cfg.Backoff
	}
}

// publish hands a copy of the state to the converge loop.
func (a *Agent) publish(view agentapi.State, full bool, changed map[string]bool) {
	c := view
	c.Networks = slices.Clone(view.Networks)
	c.Ports = slices.Clone(view.Ports)
	a.mu.Lock()
	a.latest = &c
	a.full = a.full || full
	for id := range changed {
		a.changed[id] = true
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *Agent) take() (*agentapi.State, bool, map[string]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, full, ch := a.latest, a.full, a.changed
	a.full, a.changed = false, map[string]bool{}
	return v, full, ch
}

// merge applies a delta to view: its networks and ports replace those
// with the same ids, the removed ones go. It returns the ports upserted.
func merge(view *agentapi.State, d agentapi.State) map[string]bool {
	changed := map[string]bool{}
	gone := func(ids []string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	goneN, goneP := gone(d.RemovedNetworks), gone(d.RemovedPorts)
	nets := map[string]agentapi.Network{}
	for _, n := range view.Networks {
		nets[n.ID] = n
	}
	for _, n := range d.Networks {
		nets[n.ID] = n
	}
	ports := map[string]agentapi.Port{}
	for _, p := range view.Ports {
		ports[p.ID] = p
	}
	for _, p := range d.Ports {
		ports[p.ID] = p
		changed[p.ID] = true
	}
	view.Networks, view.Ports = view.Networks[:0:0], view.Ports[:0:0]
	for _, id := range slices.Sorted(maps.Keys(nets)) {
		if !goneN[id] {
			view.Networks = append(view.Networks, nets[id])
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ports)) {
		if !goneP[id] && !goneN[ports[id].NetworkID] {
			view.Ports = append(view.Ports, ports[id])
		}
	}
	return changed
}
