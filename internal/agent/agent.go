// Package agent is the host agent process: it registers and heartbeats
// with the server, follows its host's desired state over the agent
// channel (a full state, then deltas by revision with long polls), hands
// each section of it to the driver registered for it (the Linux bridge
// agent's "l2" first), converges the kernel with the drivers whenever the
// state or the host's devices change, and reports what they observed.
// The drivers compiled in are internal/agent/all's.
package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"muon/internal/agentapi"
	"muon/internal/kernel"
)

// Config is the agent's settings.
type Config struct {
	Settings
	// ReportInterval between heartbeats; 0 takes the server's (else 30 s).
	ReportInterval time.Duration
	// Wait is how long one long poll may be held (30 s).
	Wait time.Duration
	// Backoff is the first retry delay after a failure (0.5 s), doubled
	// up to MaxBackoff (15 s).
	Backoff, MaxBackoff time.Duration
	// Poll is how often the drivers look for drift when no link event
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
	log     *slog.Logger
	started time.Time
	names   []string // sections, sorted

	// dmu serialises every call into the drivers: the follower loads and
	// applies, the converge loop syncs and reports, heartbeats ask.
	dmu     sync.Mutex
	drivers map[string]Driver
	dirty   map[string]bool // sections changed since their last Sync
	fullAt  time.Time       // a full state came and is not yet in sync
	rev     int64           // the revision the drivers hold
	wake    chan struct{}
}

// New is an agent talking to the server through c, over kernel k, with
// every registered driver.
func New(cfg Config, c *Client, k kernel.Kernel, log *slog.Logger) *Agent {
	cfg.defaults()
	a := &Agent{cfg: cfg, c: c, k: k, log: log, started: time.Now().UTC(),
		drivers: map[string]Driver{}, dirty: map[string]bool{}, wake: make(chan struct{}, 1)}
	for _, name := range Drivers() {
		if d := driverFor(name)(cfg.Settings, k, log.With("section", name)); d != nil {
			a.names = append(a.names, name)
			a.drivers[name] = d
		}
	}
	return a
}

// Run works until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if len(a.drivers) == 0 {
		return errors.New("agent: no drivers compiled in")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	caps := a.k.Capabilities(ctx)
	a.log.InfoContext(ctx, "agent starting", "host", a.cfg.Host, "tunnel_ip", a.cfg.TunnelIP, "server", a.c.Base,
		"sections", a.names, "kernel", caps.String())
	for _, kind := range []string{"vxlan", "vlan", "geneve", "gre"} {
		if !caps.Has(kind) {
			a.log.WarnContext(ctx, caps.Why(kind, a.cfg.Host).Error())
		}
	}
	// Register first: the server names the cloud, and the cloud and
	// host name the devices this agent makes as its own.
	interval, dep, ok := a.register(ctx)
	if !ok {
		return nil
	}
	if dep != "" {
		a.k.Own(a.cfg.Host + "@" + dep)
	}
	a.log.InfoContext(ctx, "registered", "mark", a.k.Mark())
	var wg sync.WaitGroup
	wg.Go(func() { a.heartbeats(ctx, interval) })
	wg.Go(func() { a.follow(ctx) })
	defer wg.Wait()

	events, err := a.k.Watch(ctx)
	if err != nil {
		a.log.WarnContext(ctx, "no link events; polling devices", "err", err)
	}
	poll := time.NewTicker(a.cfg.Poll)
	defer poll.Stop()
	var (
		pending bool // a report is due or failed: send it
		last    time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.wake:
		case _, ok := <-events:
			if !ok {
				events = nil
			}
			// Looked at like a poll: the events our own Sync causes
			// change nothing since it, and cost a look, not a Sync.
		case <-poll.C:
		}
		if a.converge(ctx, time.Since(last) > a.cfg.Resync) {
			last = time.Now()
			pending = true
		}
		if pending {
			pending = !a.report(ctx)
		}
	}
}

// converge Syncs the drivers whose sections changed or whose devices
// drifted, or all of them when every is set; it tells whether it synced
// any. Nothing runs before the first full state.
func (a *Agent) converge(ctx context.Context, every bool) bool {
	a.dmu.Lock()
	defer a.dmu.Unlock()
	if a.rev < 0 {
		return false
	}
	synced := false
	for _, name := range a.names {
		d := a.drivers[name]
		if !every && !a.dirty[name] && !d.Drifted(ctx) {
			continue
		}
		delete(a.dirty, name)
		if err := d.Sync(ctx); err != nil {
			a.log.WarnContext(ctx, "sync incomplete", "section", name, "revision", a.rev, "err", err)
		}
		synced = true
	}
	return synced
}

// report tells the server what the drivers observed that it does not
// know yet, in as many messages as that takes (a driver's report holds
// at most MaxReport entries); it says whether that worked.
func (a *Agent) report(ctx context.Context) bool {
	for range 1000 { // 1,000,000 entries a driver: the rest next time
		sent, ok := a.reportOnce(ctx)
		if !ok {
			return false
		}
		if !sent {
			return true
		}
	}
	return true
}

// MaxReport bounds the entries (port ids) of one driver's report, so
// that a status message stays well under the server's request size
// limit; what is left goes in the next message.
const MaxReport = 1000

// reportOnce sends one status message; sent tells whether there was
// anything to send.
func (a *Agent) reportOnce(ctx context.Context) (sent, ok bool) {
	a.dmu.Lock()
	st := agentapi.Status{Sections: map[string]json.RawMessage{}}
	var dones []func()
	for _, name := range a.names {
		r, done := a.drivers[name].Report()
		if r == nil {
			continue
		}
		b, err := json.Marshal(r)
		if err != nil {
			a.dmu.Unlock()
			a.log.ErrorContext(ctx, "status report unencodable", "section", name, "err", err)
			return false, true
		}
		st.Sections[name] = b
		dones = append(dones, done)
	}
	a.dmu.Unlock()
	if len(st.Sections) > 0 {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := a.c.Status(rctx, a.cfg.Host, st)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				a.log.WarnContext(ctx, "status report failed; will retry", "sections", slices.Sorted(maps.Keys(st.Sections)), "err", err)
			}
			return true, false
		}
	}
	a.dmu.Lock()
	defer a.dmu.Unlock()
	for _, done := range dones {
		done()
	}
	if len(st.Sections) > 0 {
		return true, true
	}
	if !a.fullAt.IsZero() {
		// The whole state is in the kernel and the server knows it.
		attrs := []any{"revision", a.rev}
		for _, name := range a.names {
			if s, ok := a.drivers[name].(interface{ LogAttrs() []any }); ok {
				attrs = append(attrs, s.LogAttrs()...)
			}
		}
		attrs = append(attrs, "since_state", time.Since(a.fullAt).Round(time.Millisecond),
			"since_start", time.Since(a.started).Round(time.Millisecond))
		a.log.InfoContext(ctx, "in sync", attrs...)
		a.fullAt = time.Time{}
	}
	return false, true
}

// register sends every driver's first heartbeat, retrying with backoff
// until the server takes them all; it returns the heartbeat interval and
// the cloud's deployment name, or false when ctx ended first.
func (a *Agent) register(ctx context.Context) (time.Duration, string, bool) {
	retry := a.backoff()
	failing := map[string]bool{}
	for {
		interval, dep, ok := a.beat(ctx, failing)
		if ok {
			return interval, dep, true
		}
		if !retry.wait(ctx) {
			return 0, "", false
		}
	}
}

// backoff is a retry delay: jittered, doubled at each failure up to a
// cap, back to the first after a success.
type backoff struct{ first, max, next time.Duration }

func (a *Agent) backoff() *backoff {
	return &backoff{first: a.cfg.Backoff, max: a.cfg.MaxBackoff, next: a.cfg.Backoff}
}

// wait sleeps the next delay; false when ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	d := b.next/2 + rand.N(b.next/2+1)
	b.next = min(2*b.next, b.max)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (b *backoff) reset() { b.next = b.first }

// heartbeats keeps the drivers' agents alive, every interval.
func (a *Agent) heartbeats(ctx context.Context, interval time.Duration) {
	failing := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		if next, _, ok := a.beat(ctx, failing); ok && a.cfg.ReportInterval == 0 {
			interval = next
		}
	}
}

// beat sends one heartbeat per driver; it tells the interval to keep, the
// deployment the server named, and whether every heartbeat was taken.
func (a *Agent) beat(ctx context.Context, failing map[string]bool) (time.Duration, string, bool) {
	interval := a.cfg.ReportInterval
	dep, all := "", true
	for _, name := range a.names {
		a.dmu.Lock()
		hb := a.drivers[name].Heartbeat(ctx)
		a.dmu.Unlock()
		hb.Host, hb.StartedAt = a.cfg.Host, a.started.Format(time.RFC3339)
		if hb.AvailabilityZone == "" {
			hb.AvailabilityZone = a.cfg.AvailabilityZone
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := a.c.Heartbeat(rctx, hb)
		cancel()
		switch {
		case ctx.Err() != nil:
			return 0, "", false
		case err != nil:
			if !failing[name] {
				a.log.WarnContext(ctx, "heartbeat failed", "agent_type", hb.AgentType, "err", err)
			}
			failing[name] = true
			all = false
		default:
			if failing[name] {
				a.log.InfoContext(ctx, "heartbeat", "agent_type", hb.AgentType, "agent_id", r.ID, "admin_state_up", r.AdminStateUp)
			}
			failing[name] = false
			dep = cmp.Or(dep, r.Deployment)
			if a.cfg.ReportInterval == 0 && r.ReportInterval > 0 {
				interval = time.Duration(r.ReportInterval) * time.Second
			}
		}
	}
	return cmp.Or(interval, 30*time.Second), dep, all
}

// follow keeps the drivers at the latest desired state: a full read, then
// deltas from its revision; on a failure it backs off and resumes from
// the same revision, and reads in full when the server says to or a
// driver cannot take what came.
func (a *Agent) follow(ctx context.Context) {
	a.dmu.Lock()
	a.rev = -1
	a.dmu.Unlock()
	rev := int64(-1)
	retry := a.backoff()
	fail := func(what string, err error) {
		if ctx.Err() != nil {
			return
		}
		a.log.WarnContext(ctx, what, "revision", rev, "retry_in", retry.next.Round(time.Millisecond), "err", err)
		retry.wait(ctx)
	}
	for ctx.Err() == nil {
		if rev < 0 {
			rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			st, err := a.c.State(rctx, a.cfg.Host, -1, 0)
			cancel()
			if err == nil && st.Resync {
				err = errors.New("the server asks to resync a full read")
			}
			if err == nil {
				err = a.load(st)
			}
			if err != nil {
				fail("reading the host's state failed", err)
				continue
			}
			rev = st.Revision
			a.log.InfoContext(ctx, "full state", "revision", rev, "sections", slices.Sorted(maps.Keys(st.Sections)))
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
				if err := a.load(d); err != nil {
					fail("a full state the drivers refused", err)
					rev = -1
					continue
				}
				rev = d.Revision
			default:
				if err := a.apply(d); err != nil {
					a.log.WarnContext(ctx, "a delta the drivers refused: reading the full state", "revision", d.Revision, "err", err)
					rev = -1
					continue
				}
				rev = max(rev, d.Revision)
				if len(d.Sections) > 0 {
					a.log.DebugContext(ctx, "delta", "revision", rev, "sections", slices.Sorted(maps.Keys(d.Sections)))
				}
			}
		}
		retry.reset()
	}
}

// load hands a full state to every driver (a section missing from it is
// empty) and wakes the converge loop.
func (a *Agent) load(st agentapi.State) error {
	a.dmu.Lock()
	defer a.dmu.Unlock()
	var errs []error
	for _, name := range a.names {
		raw := st.Sections[name]
		if raw == nil {
			raw = json.RawMessage("null")
		}
		if err := a.drivers[name].Load(raw); err != nil {
			errs = append(errs, fmt.Errorf("section %s: %w", name, err))
			continue
		}
		a.drivers[name].Forget()
		a.dirty[name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.rev = st.Revision
	a.fullAt = time.Now()
	a.signal()
	return nil
}

// apply hands each section of a delta to its driver; sections no driver
// here builds are not this agent's.
func (a *Agent) apply(d agentapi.State) error {
	a.dmu.Lock()
	defer a.dmu.Unlock()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(d.Sections)) {
		drv, ok := a.drivers[name]
		if !ok {
			continue
		}
		if err := drv.Apply(d.Sections[name]); err != nil {
			errs = append(errs, fmt.Errorf("section %s: %w", name, err))
			continue
		}
		a.dirty[name] = true
	}
	a.rev = max(a.rev, d.Revision)
	if len(d.Sections) > 0 {
		a.signal()
	}
	return errors.Join(errs...)
}

func (a *Agent) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}
