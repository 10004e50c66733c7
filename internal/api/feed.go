package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/store"
)

// Feed is the change feed agents watch: every create, update and delete
// of a resource, numbered in commit order.
type Feed interface {
	Changes(ctx context.Context, since int64, limit int) ([]store.Change, int64, error)
	WaitChanges(ctx context.Context, since int64)
}

// maxWait bounds a long poll.
const maxWait = 60 * time.Second

// changes answers GET /muon/v1/changes?since=N&limit=M&wait=SECONDS
// (admin only): the changes after N, oldest first, and "last", the feed's
// newest number. With wait, an empty answer is held until a change comes
// or the wait ends. A watcher whose since is older than the feed keeps
// ("truncated": true) must resync from full lists.
func (s *Server) changes(w http.ResponseWriter, r *http.Request) error {
	project := auth.FromContext(r.Context()).ProjectID
	if err := s.authorize(r.Context(), "get_changes", map[string]any{"project_id": project, "tenant_id": project}, nil); err != nil {
		return err
	}
	q := r.URL.Query()
	num := func(name string, def int64) (int64, error) {
		v := q.Get(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fault.BadRequest("%s must be a non-negative integer, not '%s'", name, v)
		}
		return n, nil
	}
	since, err := num("since", 0)
	if err != nil {
		return err
	}
	limit, err := num("limit", 1000)
	if err != nil {
		return err
	}
	wait, err := num("wait", 0)
	if err != nil {
		return err
	}
	limit = min(max(limit, 1), 10000)
	ctx := r.Context()
	deadline := time.Now().Add(min(time.Duration(wait)*time.Second, maxWait))
	for {
		list, last, err := s.feed.Changes(ctx, since, int(limit))
		if err != nil {
			return err
		}
		if len(list) > 0 || !time.Now().Before(deadline) || ctx.Err() != nil {
			if list == nil {
				list = []store.Change{}
			}
			truncated := len(list) > 0 && list[0].Seq > since+1 && since > 0
			writeJSON(w, http.StatusOK, map[string]any{"changes": list, "last": last, "truncated": truncated})
			return nil
		}
		wctx, cancel := context.WithDeadline(ctx, deadline)
		s.feed.WaitChanges(wctx, since)
		cancel()
	}
}
