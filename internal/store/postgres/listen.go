package postgres

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"muon/internal/store"
)

// channel is the notification channel every server's commits announce
// their last change number on.
const channel = "muon_changes"

// notifySQL runs in each transaction that writes changes: the
// notification is delivered when, and only if, it commits.
const notifySQL = `SELECT pg_notify('` + channel + `', ?)`

// listen keeps a dedicated connection LISTENing on the channel and wakes
// the store's watchers on each notification, so that a change committed
// through another server wakes long polls here. It reconnects until ctx
// ends; each (re)connection wakes the watchers too, as changes may have
// been missed while it was down.
func listen(ctx context.Context, dsn string, s *store.SQL, log *slog.Logger) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := listenOnce(ctx, dsn, s)
		if ctx.Err() != nil {
			return
		}
		log.WarnContext(ctx, "postgres: change notifications lost, reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func listenOnce(ctx context.Context, dsn string, s *store.SQL) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	s.Committed(0)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		last, _ := strconv.ParseInt(n.Payload, 10, 64)
		s.Committed(last)
	}
}
