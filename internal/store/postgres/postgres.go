// Package postgres opens Muon's store on PostgreSQL through pgx. Writers that
// depend on one row (IP allocation on a subnet, segments of a type) lock it
// with SELECT ... FOR UPDATE; uniqueness is left to the keys.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"muon/internal/store"
)

// Open connects to the database named by dsn (postgres://...).
func Open(ctx context.Context, dsn string) (*store.SQL, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	d := store.Dialect{
		Name:      "postgres",
		Numbered:  true,
		ForUpdate: " FOR UPDATE",
		ForShare:  " FOR SHARE",
		IsUnique:  func(err error) bool { return code(err) == "23505" },
		IsRetry: func(err error) bool {
			c := code(err)
			// A foreign-key violation is a write that raced the delete of
			// what it points at: run again, it meets the delete and
			// answers as the plugin does (404, 409), not a 500.
			return c == "40001" || c == "40P01" || c == "23503"
		},
		Notify:        notifySQL,
		SnapshotReads: true,
	}
	s, err := store.NewSQL(ctx, d, db, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		listen(lctx, dsn, s, slog.Default())
	}()
	s.OnClose(func() {
		stop()
		<-done
	})
	return s, nil
}

func code(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
