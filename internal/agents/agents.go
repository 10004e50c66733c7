// Package agents is the server side of the host agents: their records
// (/v2.0/agents, kept alive by heartbeats), port binding as ML2's Linux
// bridge mechanism driver does it (a host binds a port only if its agent
// is alive, enabled and reaches the network's segment), the "l2" section
// of each host's desired state on the agent channel (internal/channel)
// with its deltas, and the agents' device status reports.
package agents

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"github.com/google/uuid"

	"muon/internal/agentapi"
	"muon/internal/fault"
	"muon/internal/ml2"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/store"
)

// LinuxBridge is the agent type that binds ports here.
const LinuxBridge = "Linux bridge agent"

// DHCP is the agent type that serves DHCP, DNS and metadata
// (internal/dhcp schedules networks on agents of this type).
const DHCP = "DHCP agent"

// L3 is the agent type that builds routers (internal/l3 schedules
// routers on agents of this type).
const L3 = "L3 agent"

// Config tunes the agents, in seconds, named as Neutron's [DEFAULT]
// options in the configuration file.
type Config struct {
	// ReportInterval is how often agents heartbeat (Neutron's
	// report_interval, 30).
	ReportInterval int `toml:"agent_report_interval"`
	// DownTime is how long without a heartbeat an agent stays alive
	// (Neutron's agent_down_time, 75).
	DownTime int `toml:"agent_down_time"`
}

// DefaultConfig is Neutron's.
func DefaultConfig() Config {
	return Config{ReportInterval: 30, DownTime: 75}
}

// hostTx is a transaction of a store that keeps port bindings and
// heartbeats (store.SQL's).
type hostTx interface {
	store.Tx
	SetPortBinding(ctx context.Context, b store.PortBinding) error
	PortBindings(ctx context.Context, f store.PortBinding, portIDs ...string) ([]store.PortBinding, error)
	SetHeartbeat(ctx context.Context, agentID string, atMS int64) error
	Heartbeats(ctx context.Context, agentIDs ...string) (map[string]int64, error)
}

func hostTxOf(tx store.Tx) (hostTx, error) {
	h, ok := tx.(hostTx)
	if !ok {
		return nil, errors.New("agents: the store keeps no port bindings")
	}
	return h, nil
}

// Plugin keeps the agents.
type Plugin struct {
	st   store.Store
	core *ml2.Plugin
	log  *slog.Logger
	cfg  Config
	// downTime is cfg.DownTime as a duration.
	downTime time.Duration
	now      func() time.Time
	// started is when this server began to hear heartbeats.
	started time.Time
}

// New builds the agents plugin.
func New(cfg Config, st store.Store, core *ml2.Plugin, log *slog.Logger) (*Plugin, error) {
	d := DefaultConfig()
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = d.ReportInterval
	}
	if cfg.DownTime <= 0 {
		cfg.DownTime = d.DownTime
	}
	if cfg.DownTime < cfg.ReportInterval {
		return nil, fmt.Errorf("agents: agent_down_time %d s is shorter than the report interval %d s", cfg.DownTime, cfg.ReportInterval)
	}
	return &Plugin{st: st, core: core, log: log, cfg: cfg, downTime: time.Duration(cfg.DownTime) * time.Second, now: time.Now, started: time.Now()}, nil
}

// timeFormat is how Neutron shows agents' times.
const timeFormat = "2006-01-02 15:04:05"

func agentNotFound(id string) *fault.Error {
	return fault.NotFound("AgentNotFound", "Agent %s could not be found.", id)
}

// Resource is the agent attribute map (Neutron's agent extension).
func Resource() *resource.Resource {
	return &resource.Resource{Name: "agent", Collection: "agents", Attrs: []resource.Attr{
		{Name: "id", Type: resource.UUID},
		{Name: "agent_type", Type: resource.String(255)},
		{Name: "binary", Type: resource.String(255)},
		{Name: "topic", Type: resource.String(255)},
		{Name: "host", Type: resource.String(255)},
		{Name: "admin_state_up", Type: resource.Bool, Put: true},
		{Name: "created_at", Type: resource.String(0)},
		{Name: "started_at", Type: resource.String(0)},
		{Name: "heartbeat_timestamp", Type: resource.String(0)},
		{Name: "alive", Type: resource.Bool},
		{Name: "configurations", Type: resource.Dict, NoFilter: true, NoSort: true},
		{Name: "description", Type: resource.String(255), Put: true, Nullable: true},
		{Name: "availability_zone", Type: resource.String(255), Nullable: true},
		{Name: "resources_synced", Type: resource.Bool, Nullable: true},
	}}
}

// Agents serves /v2.0/agents: list, show, update and delete (agents
// register themselves by heartbeat).
type Agents struct{ *Plugin }

// Create is refused: agents register by heartbeat.
func (a Agents) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	return nil, fault.New(405, "HTTPMethodNotAllowed", "The method POST is not allowed for this resource.")
}

// Get shows one agent.
func (a Agents) Get(ctx context.Context, id string) (resource.Doc, error) {
	var d resource.Doc
	err := a.st.View(ctx, func(tx store.Tx) error {
		ds, err := a.read(ctx, tx, store.Filter{Kind: "agent", IDs: []string{id}})
		if err != nil {
			return err
		}
		if len(ds) == 0 {
			return agentNotFound(id)
		}
		d = ds[0]
		return nil
	})
	return d, err
}

// List returns every agent (policy makes this admin only).
func (a Agents) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	var out []resource.Doc
	err := a.st.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = a.read(ctx, tx, store.Filter{Kind: "agent", IDs: q.Filters["id"]})
		return err
	})
	return out, err
}

// read lists agents with their heartbeat and liveness.
func (p *Plugin) read(ctx context.Context, tx store.Tx, f store.Filter) ([]resource.Doc, error) {
	h, err := hostTxOf(tx)
	if err != nil {
		return nil, err
	}
	recs, err := tx.List(ctx, f)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(recs))
	for i := range recs {
		ids[i] = recs[i].ID
	}
	beats := map[string]int64{}
	if len(ids) > 0 && len(ids) <= 500 {
		beats, err = h.Heartbeats(ctx, ids...)
	} else if len(ids) > 0 {
		beats, err = h.Heartbeats(ctx)
	}
	if err != nil {
		return nil, err
	}
	out := make([]resource.Doc, 0, len(recs))
	for i := range recs {
		d, err := record.Decode(&recs[i])
		if err != nil {
			return nil, err
		}
		p.withBeat(d, beats[recs[i].ID])
		out = append(out, d)
	}
	return out, nil
}

// withBeat adds the computed attributes: the last heartbeat and alive.
func (p *Plugin) withBeat(d resource.Doc, atMS int64) {
	d["heartbeat_timestamp"] = nil
	d["alive"] = false
	if atMS > 0 {
		at := time.UnixMilli(atMS)
		d["heartbeat_timestamp"] = at.UTC().Format(timeFormat)
		d["alive"] = p.alive(atMS)
	}
}

func (p *Plugin) alive(atMS int64) bool {
	return atMS > 0 && p.now().Sub(time.UnixMilli(atMS)) <= p.downTime
}

// Update changes an agent's admin_state_up or description. Enabling it
// binds the ports that failed to bind on its host.
func (a Agents) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	var out resource.Doc
	err := a.st.Update(ctx, func(tx store.Tx) error {
		h, err := hostTxOf(tx)
		if err != nil {
			return err
		}
		rec, err := tx.Lock(ctx, "agent", id)
		if errors.Is(err, store.ErrNotFound) {
			return agentNotFound(id)
		}
		if err != nil {
			return err
		}
		d, err := record.Decode(rec)
		if err != nil {
			return err
		}
		wasUp := d["admin_state_up"] != false
		changed := false
		for k, v := range patch {
			if !reflect.DeepEqual(d[k], v) {
				d[k] = v
				changed = true
			}
		}
		if changed {
			if rec.Doc, err = json.Marshal(d); err != nil {
				return err
			}
			if err := tx.Update(ctx, rec); err != nil {
				return err
			}
		}
		beats, err := h.Heartbeats(ctx, id)
		if err != nil {
			return err
		}
		if !wasUp && d["admin_state_up"] != false && resource.Str(d["agent_type"]) == LinuxBridge {
			if err := a.rebindHost(ctx, h, resource.Str(d["host"])); err != nil {
				return err
			}
		}
		a.withBeat(d, beats[id])
		out = d
		return nil
	})
	return out, err
}

// Delete removes an agent; its heartbeat and name go with it. Its host's
// ports stay bound, as Neutron's do.
func (a Agents) Delete(ctx context.Context, id string, ifRev int64) error {
	return a.st.Update(ctx, func(tx store.Tx) error {
		err := tx.Delete(ctx, "agent", id)
		if errors.Is(err, store.ErrNotFound) {
			return agentNotFound(id)
		}
		return err
	})
}

// Heartbeat registers an agent or keeps it alive. The heartbeat time is
// kept apart from the agent's record: only a new agent, a revived one or
// changed configurations are changes of the feed. A Linux bridge agent
// that comes (back) binds the ports that failed to bind on its host.
func (p *Plugin) Heartbeat(ctx context.Context, hb agentapi.Heartbeat) (agentapi.HeartbeatReply, error) {
	if err := checkHeartbeat(&hb); err != nil {
		return agentapi.HeartbeatReply{}, err
	}
	var reply agentapi.HeartbeatReply
	err := p.st.Update(ctx, func(tx store.Tx) error {
		h, err := hostTxOf(tx)
		if err != nil {
			return err
		}
		now := p.now()
		id, err := tx.NameID(ctx, "agent", hb.AgentType, hb.Host)
		var d resource.Doc
		rebind := false
		switch {
		case errors.Is(err, store.ErrNotFound):
			id = uuid.NewString()
			d = resource.Doc{
				"id": id, "agent_type": hb.AgentType, "host": hb.Host,
				"admin_state_up": true, "created_at": now.UTC().Format(timeFormat),
				"description": nil, "resources_synced": nil,
			}
			hbFields(d, hb)
			b, err := json.Marshal(d)
			if err != nil {
				return err
			}
			if err := tx.Insert(ctx, &store.Record{Kind: "agent", ID: id, Doc: b}); err != nil {
				return err
			}
			// The name claim holds one agent of a type per host.
			ok, err := tx.ClaimName(ctx, "agent", hb.AgentType, hb.Host, id)
			if err != nil {
				return err
			}
			if !ok {
				return fault.Conflict("AgentConflict", "Agent %s on host %s is registering concurrently; retry.", hb.AgentType, hb.Host)
			}
			rebind = true
		case err != nil:
			return err
		default:
			rec, err := tx.Lock(ctx, "agent", id)
			if err != nil {
				return err
			}
			if d, err = record.Decode(rec); err != nil {
				return err
			}
			beats, err := h.Heartbeats(ctx, id)
			if err != nil {
				return err
			}
			old := maps.Clone(d)
			hbFields(d, hb)
			revived := !p.alive(beats[id])
			if revived || !equalJSON(withoutDevices(old), withoutDevices(d)) {
				if rec.Doc, err = json.Marshal(d); err != nil {
					return err
				}
				if err := tx.Update(ctx, rec); err != nil {
					return err
				}
				rebind = true
			}
		}
		if err := h.SetHeartbeat(ctx, id, now.UnixMilli()); err != nil {
			return err
		}
		up := d["admin_state_up"] != false
		if rebind && up && hb.AgentType == LinuxBridge {
			if err := p.rebindHost(ctx, h, hb.Host); err != nil {
				return err
			}
		}
		dep, err := deployment(ctx, tx)
		if err != nil {
			return err
		}
		reply = agentapi.HeartbeatReply{ID: id, AdminStateUp: up, ReportInterval: p.cfg.ReportInterval, Deployment: dep}
		return nil
	})
	return reply, err
}

// deployment is the cloud's id, made by the first heartbeat it sees: a
// short random name kept in the database.
func deployment(ctx context.Context, tx store.Tx) (string, error) {
	r, err := tx.Get(ctx, "deployment", "deployment")
	if errors.Is(err, store.ErrNotFound) {
		b, _ := json.Marshal(map[string]string{"id": uuid.NewString()[:8]})
		if err := tx.Ensure(ctx, &store.Record{Kind: "deployment", ID: "deployment", Doc: b}); err != nil {
			return "", err
		}
		r, err = tx.Get(ctx, "deployment", "deployment")
	}
	if err != nil {
		return "", err
	}
	var d struct{ ID string }
	if err := json.Unmarshal(r.Doc, &d); err != nil || d.ID == "" {
		return "", fmt.Errorf("deployment record: %q %v", r.Doc, err)
	}
	return d.ID, nil
}

// hbFields copies what a heartbeat reports into the agent's document.
func hbFields(d resource.Doc, hb agentapi.Heartbeat) {
	d["binary"] = hb.Binary
	d["topic"] = hb.Topic
	d["availability_zone"] = nil
	if hb.AvailabilityZone != "" {
		d["availability_zone"] = hb.AvailabilityZone
	}
	d["started_at"] = nil
	if t, err := time.Parse(time.RFC3339Nano, hb.StartedAt); err == nil {
		d["started_at"] = t.UTC().Format(timeFormat)
	}
	conf := hb.Configurations
	if conf == nil {
		conf = map[string]any{}
	}
	d["configurations"] = conf
}

func checkHeartbeat(hb *agentapi.Heartbeat) error {
	for _, f := range []struct{ name, v string }{{"host", hb.Host}, {"agent_type", hb.AgentType}} {
		if f.v == "" {
			return fault.BadRequest("Invalid input for %s. Reason: it is required.", f.name)
		}
	}
	for _, f := range []struct{ name, v string }{{"host", hb.Host}, {"agent_type", hb.AgentType}, {"binary", hb.Binary}, {"topic", hb.Topic}, {"availability_zone", hb.AvailabilityZone}} {
		if len(f.v) > 255 {
			return fault.BadRequest("Invalid input for %s. Reason: longer than 255 characters.", f.name)
		}
	}
	if hb.StartedAt != "" {
		if _, err := time.Parse(time.RFC3339Nano, hb.StartedAt); err != nil {
			return fault.BadRequest("Invalid input for started_at. Reason: '%s' is not an RFC 3339 time.", hb.StartedAt)
		}
	}
	if ip, ok := hb.Configurations["tunneling_ip"]; ok {
		s, _ := ip.(string)
		if _, err := netip.ParseAddr(s); err != nil && s != "" {
			return fault.BadRequest("Invalid input for configurations. Reason: tunneling_ip '%v' is not an IP address.", ip)
		}
	}
	return nil
}

// counters are the configurations that count what an agent serves
// (devices wired, a DHCP agent's networks, ports and subnets, an L3
// agent's routers, floating IPs, interfaces and gateways): they move
// with every port, and alone are not worth a change (a change of an
// agent makes every host's l2 section look at its networks again).
var counters = []string{"devices", "networks", "ports", "subnets", "routers", "floating_ips", "interfaces", "ex_gw_ports"}

// withoutDevices is an agent's document without its counters.
func withoutDevices(d resource.Doc) resource.Doc {
	c := maps.Clone(d)
	if conf, ok := c["configurations"].(map[string]any); ok {
		conf = maps.Clone(conf)
		for _, k := range counters {
			delete(conf, k)
		}
		c["configurations"] = conf
	}
	return c
}

// equalJSON compares two documents as their JSON.
func equalJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// Info is an agent as the features that schedule on agents read it.
type Info struct {
	ID, Type, Host   string
	AdminStateUp     bool
	Alive            bool
	AvailabilityZone string
}

// ReadAgents reads the agents of a type with their liveness, in host
// order; agentType "" reads all.
func (p *Plugin) ReadAgents(ctx context.Context, tx store.Tx, agentType string) ([]Info, error) {
	ds, err := p.read(ctx, tx, store.Filter{Kind: "agent"})
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(ds))
	for _, d := range ds {
		if agentType != "" && d["agent_type"] != agentType {
			continue
		}
		out = append(out, Info{ID: resource.Str(d["id"]), Type: resource.Str(d["agent_type"]), Host: resource.Str(d["host"]),
			AdminStateUp: d["admin_state_up"] != false, Alive: d["alive"] == true, AvailabilityZone: resource.Str(d["availability_zone"])})
	}
	slices.SortFunc(out, func(a, b Info) int { return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

// ReadAgent reads one agent; false when there is none.
func (p *Plugin) ReadAgent(ctx context.Context, tx store.Tx, id string) (Info, bool, error) {
	ds, err := p.read(ctx, tx, store.Filter{Kind: "agent", IDs: []string{id}})
	if err != nil || len(ds) == 0 {
		return Info{}, false, err
	}
	d := ds[0]
	return Info{ID: id, Type: resource.Str(d["agent_type"]), Host: resource.Str(d["host"]),
		AdminStateUp: d["admin_state_up"] != false, Alive: d["alive"] == true, AvailabilityZone: resource.Str(d["availability_zone"])}, true, nil
}

// DownTime is how long an agent stays alive without a heartbeat.
func (p *Plugin) DownTime() time.Duration { return p.downTime }

// Settled tells whether this server has run long enough (twice
// agent_down_time, as Neutron's wait_down_agents) for an agent that
// reads dead to be dead: just after a restart of the server, every agent
// reads dead until its next heartbeat, and nothing should move for it.
func (p *Plugin) Settled() bool { return p.now().Sub(p.started) >= 2*p.downTime }
