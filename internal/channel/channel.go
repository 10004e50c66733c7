// Package channel is the server side of the agent channel: each host's
// desired state, whole or as a delta from the revision its agent has,
// held in a long poll while nothing concerns the host, and the agents'
// reports of observed state. It knows no resource kinds: every feature
// that builds part of a host's data plane gives it a feature.Section, and
// a host's state is those sections, each the feature's own JSON
// (agentapi.State).
//
// Revisions are the store's change feed numbers. A delta reads the feed
// after the agent's revision and asks each section what of it concerns
// the host; changes of observed state (op "status") are nobody's desired
// state and are left out, so a port going ACTIVE wakes no host.
package channel

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"muon/internal/agentapi"
	"muon/internal/fault"
	"muon/internal/feature"
	"muon/internal/store"
)

// MaxWait bounds a long poll.
const MaxWait = 60 * time.Second

// deltaLimit is how many changes a delta reads at most; a host further
// behind gets its full state instead.
const deltaLimit = 5000

// Store is what the channel needs of the store: one-snapshot reads and
// the change feed's wake-ups.
type Store interface {
	store.Store
	Snapshot(ctx context.Context, fn func(store.Tx) error) error
	WaitChanges(ctx context.Context, since int64)
}

// feedTx is a transaction of a store that keeps the change feed.
type feedTx interface {
	store.Tx
	ChangesAfter(ctx context.Context, since int64, limit int) ([]store.Change, int64, error)
	Revision(ctx context.Context) (int64, error)
}

// Channel serves hosts' states over the sections it was given.
type Channel struct {
	st       Store
	sections []feature.Section
}

// New is a channel over the features' sections; two with one name, or
// one without a name, is an error.
func New(st Store, sections []feature.Section) (*Channel, error) {
	c := &Channel{st: st, sections: slices.Clone(sections)}
	slices.SortFunc(c.sections, func(a, b feature.Section) int { return cmp.Compare(a.Name(), b.Name()) })
	for i, s := range c.sections {
		if s.Name() == "" || i > 0 && c.sections[i-1].Name() == s.Name() {
			return nil, fmt.Errorf("channel: section %q defined twice or without a name", s.Name())
		}
	}
	return c, nil
}

func checkHost(host string) error {
	if host == "" || len(host) > 255 {
		return fault.BadRequest("Invalid host '%s'.", host)
	}
	return nil
}

// State answers a host's agent: its full desired state at the feed's
// current revision when delta is false; else only what changed after
// since, held up to wait while nothing relevant to the host changes. A
// since the feed no longer reaches back to, or one from the future (a
// restored database), answers Resync.
func (c *Channel) State(ctx context.Context, host string, since int64, delta bool, wait time.Duration) (agentapi.State, error) {
	if err := checkHost(host); err != nil {
		return agentapi.State{}, err
	}
	if !delta {
		var out agentapi.State
		err := c.st.Snapshot(ctx, func(tx store.Tx) error {
			ft, err := feedTxOf(tx)
			if err != nil {
				return err
			}
			out, err = c.full(ctx, ft, host)
			return err
		})
		return out, err
	}
	if since < 0 {
		return agentapi.State{}, fault.BadRequest("since must be a non-negative integer.")
	}
	deadline := time.Now().Add(min(max(wait, 0), MaxWait))
	cursor := since
	for {
		var out agentapi.State
		var found bool
		err := c.st.Snapshot(ctx, func(tx store.Tx) error {
			ft, err := feedTxOf(tx)
			if err != nil {
				return err
			}
			out, found, err = c.delta(ctx, ft, host, since, cursor)
			return err
		})
		if err != nil {
			return agentapi.State{}, err
		}
		if found || !time.Now().Before(deadline) || ctx.Err() != nil {
			return out, nil
		}
		// Nothing after cursor concerns the host: a delta from since is
		// a delta from the revision just read.
		cursor = out.Revision
		wctx, cancel := context.WithDeadline(ctx, deadline)
		c.st.WaitChanges(wctx, cursor)
		cancel()
	}
}

func feedTxOf(tx store.Tx) (feedTx, error) {
	f, ok := tx.(feedTx)
	if !ok {
		return nil, errors.New("channel: the store keeps no change feed")
	}
	return f, nil
}

// full is a host's whole desired state, read in one snapshot.
func (c *Channel) full(ctx context.Context, tx feedTx, host string) (agentapi.State, error) {
	rev, err := tx.Revision(ctx)
	if err != nil {
		return agentapi.State{}, err
	}
	out := agentapi.State{Host: host, Revision: rev, Sections: map[string]json.RawMessage{}}
	for _, s := range c.sections {
		v, err := s.Full(ctx, tx, host)
		if err != nil {
			return agentapi.State{}, fmt.Errorf("section %s: %w", s.Name(), err)
		}
		if out.Sections[s.Name()], err = json.Marshal(v); err != nil {
			return agentapi.State{}, fmt.Errorf("section %s: %w", s.Name(), err)
		}
	}
	return out, nil
}

// delta is what changed for a host after cursor (the agent has since;
// nothing between since and cursor concerned it), and whether anything
// did.
func (c *Channel) delta(ctx context.Context, tx feedTx, host string, since, cursor int64) (agentapi.State, bool, error) {
	changes, rev, err := tx.ChangesAfter(ctx, cursor, deltaLimit)
	if err != nil {
		return agentapi.State{}, false, err
	}
	resync := agentapi.State{Host: host, Revision: rev, Resync: true, Sections: map[string]json.RawMessage{}}
	switch {
	case since > rev:
		// A revision from the future: the database was restored.
		return resync, true, nil
	case cursor == rev:
		return agentapi.State{Host: host, Revision: rev, Delta: true, Sections: map[string]json.RawMessage{}}, false, nil
	case len(changes) == 0 || changes[0].Seq != cursor+1:
		// The feed was pruned past the agent's revision.
		return resync, true, nil
	case changes[len(changes)-1].Seq < rev:
		// Too far behind for a delta: the full state.
		full, err := c.full(ctx, tx, host)
		return full, true, err
	}
	desired := changes[:0:0]
	for _, ch := range changes {
		if ch.Op != "status" {
			desired = append(desired, ch)
		}
	}
	out := agentapi.State{Host: host, Revision: rev, Delta: true, Sections: map[string]json.RawMessage{}}
	if len(desired) == 0 {
		return out, false, nil
	}
	for _, s := range c.sections {
		v, ok, err := s.Delta(ctx, tx, host, desired)
		if err != nil {
			return agentapi.State{}, false, fmt.Errorf("section %s: %w", s.Name(), err)
		}
		if !ok {
			continue
		}
		if out.Sections[s.Name()], err = json.Marshal(v); err != nil {
			return agentapi.State{}, false, fmt.Errorf("section %s: %w", s.Name(), err)
		}
	}
	return out, len(out.Sections) > 0, nil
}

// Report hands each section's observed state to its feature; a section
// that takes none is a 400 and nothing is written.
func (c *Channel) Report(ctx context.Context, host string, st agentapi.Status) error {
	if err := checkHost(host); err != nil {
		return err
	}
	obs := map[string]feature.Observer{}
	for name := range st.Sections {
		i := slices.IndexFunc(c.sections, func(s feature.Section) bool { return s.Name() == name })
		var o feature.Observer
		if i >= 0 {
			o, _ = c.sections[i].(feature.Observer)
		}
		if o == nil {
			return fault.BadRequest("Unknown status section '%s'.", name)
		}
		obs[name] = o
	}
	for _, name := range slices.Sorted(maps.Keys(obs)) {
		if err := obs[name].Observe(ctx, host, st.Sections[name]); err != nil {
			return err
		}
	}
	return nil
}

// Routes serve the channel (internal/agentapi), under the core's rules
// get_host_state and update_host_status (admin).
func (c *Channel) Routes() []feature.Route {
	return []feature.Route{
		{Pattern: "GET /muon/v1/hosts/{host}/state", Policy: "get_host_state", Do: c.stateRoute},
		{Pattern: "POST /muon/v1/hosts/{host}/status", Policy: "update_host_status", Do: func(ctx context.Context, r feature.Request) (int, any, error) {
			var st agentapi.Status
			if err := feature.DecodeJSON(r.Body, &st); err != nil {
				return 0, nil, err
			}
			if err := c.Report(ctx, r.Path("host"), st); err != nil {
				return 0, nil, err
			}
			return http.StatusNoContent, nil, nil
		}},
	}
}

// stateRoute answers GET /muon/v1/hosts/{host}/state[?since=R&wait=S].
func (c *Channel) stateRoute(ctx context.Context, r feature.Request) (int, any, error) {
	q := r.Query
	for k := range q {
		if k != "since" && k != "wait" {
			return 0, nil, fault.BadRequest("Unknown query parameter '%s'.", k)
		}
	}
	num := func(name string) (int64, bool, error) {
		v, ok := q[name]
		if !ok {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v[len(v)-1], 10, 64)
		if err != nil || n < 0 {
			return 0, false, fault.BadRequest("%s must be a non-negative integer, not '%s'", name, v[len(v)-1])
		}
		return n, true, nil
	}
	since, delta, err := num("since")
	if err != nil {
		return 0, nil, err
	}
	wait, _, err := num("wait")
	if err != nil {
		return 0, nil, err
	}
	wait = min(wait, int64(MaxWait/time.Second))
	st, err := c.State(ctx, r.Path("host"), since, delta, time.Duration(wait)*time.Second)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, st, nil
}
