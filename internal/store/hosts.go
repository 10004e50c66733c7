package store

import (
	"context"
	"slices"
	"strings"
)

// The tables behind the host agents: which host each port is bound to
// (an index over ports' binding:host_id that the binder keeps), and the
// agents' last heartbeats, kept apart from their documents so that a
// heartbeat is not a change of the feed.

// PortBinding is where one port is bound: its host, network and vif_type
// ("bridge" when bound, "binding_failed"); PrevHost is the host it was
// bound to before, so that a watcher of that host learns it left.
type PortBinding struct {
	PortID    string
	Host      string
	NetworkID string
	VIFType   string
	PrevHost  string
}

// SetPortBinding records a port's binding (an empty Host for an unbound
// port); a host change keeps the old host as PrevHost.
func (t *sqlTx) SetPortBinding(ctx context.Context, b PortBinding) error {
	_, err := t.exec(ctx, qSetBinding,
		b.PortID, b.Host, b.NetworkID, b.VIFType)
	return err
}

// PortBindings lists the bindings matching f (empty fields do not
// filter; name a host, a network or ports), sorted by port.
func (t *sqlTx) PortBindings(ctx context.Context, f PortBinding, portIDs ...string) ([]PortBinding, error) {
	if len(portIDs) > 500 {
		var out []PortBinding
		for ids := range slices.Chunk(portIDs, 500) {
			part, err := t.PortBindings(ctx, f, ids...)
			if err != nil {
				return nil, err
			}
			out = append(out, part...)
		}
		slices.SortFunc(out, func(a, b PortBinding) int { return strings.Compare(a.PortID, b.PortID) })
		return out, nil
	}
	var conds []string
	var args []any
	for _, c := range []struct{ col, v string }{{"host", f.Host}, {"network_id", f.NetworkID}, {"vif_type", f.VIFType}} {
		if c.v != "" {
			conds = append(conds, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if len(portIDs) > 0 {
		conds = append(conds, "port_id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(portIDs)), ",")+")")
		for _, id := range portIDs {
			args = append(args, id)
		}
	}
	q := `SELECT port_id, host, network_id, vif_type, prev_host FROM port_bindings`
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, " AND ")
	}
	rows, err := t.query(ctx, q+` ORDER BY port_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PortBinding
	for rows.Next() {
		var b PortBinding
		if err := rows.Scan(&b.PortID, &b.Host, &b.NetworkID, &b.VIFType, &b.PrevHost); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// SetHeartbeat records an agent's last heartbeat (Unix milliseconds).
func (t *sqlTx) SetHeartbeat(ctx context.Context, agentID string, atMS int64) error {
	_, err := t.exec(ctx, `INSERT INTO agent_heartbeats (agent_id, at_ms) VALUES (?, ?)
ON CONFLICT (agent_id) DO UPDATE SET at_ms = excluded.at_ms`, agentID, atMS)
	return err
}

// Heartbeats returns the agents' last heartbeats (Unix milliseconds) by
// id; all of them when no id is given.
func (t *sqlTx) Heartbeats(ctx context.Context, agentIDs ...string) (map[string]int64, error) {
	q := `SELECT agent_id, at_ms FROM agent_heartbeats`
	args := make([]any, len(agentIDs))
	for i, id := range agentIDs {
		args[i] = id
	}
	if len(agentIDs) > 0 {
		q += ` WHERE agent_id IN (` + strings.TrimSuffix(strings.Repeat("?,", len(agentIDs)), ",") + `)`
	}
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		out[id] = at
	}
	return out, rows.Err()
}
