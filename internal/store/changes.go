package store

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Change is one entry of the change feed: a resource was created, updated
// or deleted. Agents watch the feed and read what changed.
type Change struct {
	Seq       int64  `json:"seq"`
	Kind      string `json:"kind"`
	ID        string `json:"id"`
	ProjectID string `json:"project_id"`
	// ParentID is the record's parent (a port's network), so that a
	// watcher can place a deleted record.
	ParentID string `json:"parent_id,omitempty"`
	// Op is "create", "update", "delete", or "status" for a change of
	// observed state only (Tx.Observe).
	Op string `json:"op"`
	At string `json:"at"`
}

// feedKeep is how many changes the feed keeps; older ones are pruned, and
// a watcher that fell further behind resyncs from a full read.
const feedKeep = 100000

// noted records a change of the transaction, written at commit. A
// resource changed several times in one transaction is one change: made
// and changed is "create", made and removed is nothing.
func (t *sqlTx) noted(kind, id, project, parent, op string) {
	for i := range t.changes {
		c := &t.changes[i]
		if c.ID != id || c.Kind != kind {
			continue
		}
		switch {
		case c.Op == "create" && op == "delete":
			t.changes = append(t.changes[:i], t.changes[i+1:]...)
		case c.Op == "create", op == "status":
			// Made here, or changed for real here: observing it too
			// changes nothing of that.
		default:
			c.Op = op
		}
		if project != "" {
			c.ProjectID = project
		}
		if parent != "" {
			c.ParentID = parent
		}
		return
	}
	t.changes = append(t.changes, Change{Kind: kind, ID: id, ProjectID: project, ParentID: parent, Op: op})
}

// writeChanges numbers and stores the transaction's changes just before
// it commits. The counter row's update serialises committing writers, so
// sequence numbers are handed out in commit order: a watcher that has read
// up to N never later finds a change below N.
func (t *sqlTx) writeChanges(ctx context.Context) (int64, error) {
	if len(t.changes) == 0 {
		return 0, nil
	}
	var last int64
	if err := t.queryRow(ctx, qNextSeq, len(t.changes)).Scan(&last); err != nil {
		return 0, fmt.Errorf("change feed: %w", err)
	}
	at := time.Now().UTC().Format(time.RFC3339Nano)
	first := last - int64(len(t.changes)) + 1
	for i, c := range t.changes {
		if _, err := t.exec(ctx, qChange, first+int64(i), c.Kind, c.ID, c.ProjectID, c.ParentID, c.Op, at); err != nil {
			return 0, fmt.Errorf("change feed: %w", err)
		}
	}
	if t.s.d.Notify != "" {
		if _, err := t.tx.ExecContext(ctx, t.s.q(t.s.d.Notify), strconv.FormatInt(last, 10)); err != nil {
			return 0, fmt.Errorf("change feed: notify: %w", err)
		}
	}
	if last%1000 < int64(len(t.changes)) && last > feedKeep {
		if _, err := t.exec(ctx, `DELETE FROM changes WHERE seq <= ?`, last-feedKeep); err != nil {
			return 0, fmt.Errorf("change feed: %w", err)
		}
	}
	return last, nil
}

const qNextSeq = `UPDATE change_seq SET seq = seq + ? WHERE id = 1 RETURNING seq`

const qChange = `INSERT INTO changes (seq, kind, id, project_id, parent_id, op, at) VALUES (?, ?, ?, ?, ?, ?, ?)`

// Changes returns up to limit changes after since, oldest first, and the
// feed's last sequence number.
func (s *SQL) Changes(ctx context.Context, since int64, limit int) ([]Change, int64, error) {
	var out []Change
	var last int64
	err := s.View(ctx, func(tx Tx) error {
		var err error
		out, last, err = tx.(*sqlTx).ChangesAfter(ctx, since, limit)
		return err
	})
	return out, last, err
}

// ChangesAfter reads the feed inside a transaction: up to limit changes
// after since, oldest first, and the feed's last sequence number as this
// transaction sees it.
func (t *sqlTx) ChangesAfter(ctx context.Context, since int64, limit int) ([]Change, int64, error) {
	last, err := t.Revision(ctx)
	if err != nil {
		return nil, 0, err
	}
	if since >= last || limit <= 0 {
		return nil, last, nil
	}
	rows, err := t.query(ctx, `SELECT seq, kind, id, project_id, parent_id, op, at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, since, limit)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var c Change
		if err := rows.Scan(&c.Seq, &c.Kind, &c.ID, &c.ProjectID, &c.ParentID, &c.Op, &c.At); err != nil {
			return nil, 0, err
		}
		out = append(out, c)
	}
	return out, last, rows.Err()
}

// Revision is the feed's last sequence number as the transaction sees it:
// the state it reads reflects every change up to it.
func (t *sqlTx) Revision(ctx context.Context) (int64, error) {
	var last int64
	err := t.queryRow(ctx, `SELECT seq FROM change_seq WHERE id = 1`).Scan(&last)
	return last, err
}

// WaitChanges blocks until the feed passes since, ctx ends, or a poll
// interval passes (for changes another server wrote to a shared
// database); it then returns, and the caller reads the feed.
func (s *SQL) WaitChanges(ctx context.Context, since int64) {
	s.feedMu.Lock()
	if s.feedLast > since {
		s.feedMu.Unlock()
		return
	}
	ch := s.feedWake
	s.feedMu.Unlock()
	// Without notifications from the database, poll for changes another
	// server wrote; with them, the poll is only a safety net.
	poll := time.Second
	if s.d.Notify != "" {
		poll = 10 * time.Second
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	select {
	case <-ch:
	case <-ctx.Done():
	case <-t.C:
	}
}

// Committed wakes the feed's watchers: a transaction committed changes
// up to last (here, or on another server sharing the database).
func (s *SQL) Committed(last int64) { s.committed(last) }

// committed wakes the feed's watchers.
func (s *SQL) committed(last int64) {
	s.feedMu.Lock()
	if last > s.feedLast {
		s.feedLast = last
	}
	close(s.feedWake)
	s.feedWake = make(chan struct{})
	s.feedMu.Unlock()
}
