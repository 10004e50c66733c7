// Package postgres opens Muon's store on PostgreSQL through pgx. Writers that
// depend on one row (IP allocation on a subnet, segments of a type) lock it
// with SELECT ... FOR UPDATE; uniqueness is left to the keys.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

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
		IsUnavailable: isUnavailable,
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

// isUnavailable: the server cannot be reached or is shutting down, its
// disk or memory is full, it is read-only, or the connection broke.
func isUnavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // shutting down, cannot connect now
			pe.Code == "53100", pe.Code == "53200", pe.Code == "53300", // disk full, out of memory, too many connections
			pe.Code == "25006": // read-only transaction (a standby)
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || pgconn.SafeToRetry(err)
}
