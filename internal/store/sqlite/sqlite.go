// Package sqlite opens Muon's store on an embedded SQLite database (pure Go,
// WAL mode): one writer connection, serialised in process, and a pool of
// readers that never wait for it.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"muon/internal/store"
)

// Options tune the database.
type Options struct {
	// Synchronous is SQLite's synchronous pragma: "FULL" (an fsync per
	// commit) or "NORMAL" (WAL checkpoints fsync; a power cut may lose the
	// last commits but never half of one). Default FULL.
	Synchronous string
}

// Open opens (creating if needed) the database file at path.
func Open(ctx context.Context, path string, o Options) (*store.SQL, error) {
	if o.Synchronous == "" {
		o.Synchronous = "FULL"
	}
	dsn := func(readOnly bool) string {
		v := url.Values{}
		v.Add("_pragma", "journal_mode(WAL)")
		v.Add("_pragma", "busy_timeout(10000)")
		v.Add("_pragma", "foreign_keys(ON)")
		v.Add("_pragma", "synchronous("+o.Synchronous+")")
		if readOnly {
			v.Add("_pragma", "query_only(ON)")
		} else {
			v.Set("_txlock", "immediate")
		}
		return "file:" + path + "?" + v.Encode()
	}
	w, err := sql.Open("sqlite", dsn(false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", dsn(true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	d := store.Dialect{
		Name:          "sqlite",
		IsUnique:      isUnique,
		IsUnavailable: isUnavailable,
		SerialWrites:  true,
	}
	s, err := store.NewSQL(ctx, d, w, r)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	return s, nil
}

// isUnavailable: the disk is full or failing, the file read-only or gone.
func isUnavailable(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() & 0xff {
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN:
			return true
		}
	}
	return false
}

func isUnique(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
	}
	return false
}
