package servertest

import (
	"os"
	"testing"

	"muon/internal/server"
)

// Database is the database the server runs on (a PostgreSQL DSN or a
// SQLite path): a second server started on it shares its state.
func (e *Env) Database() string { return e.cfg.Database }

// StoresWith is Stores with the configuration adjusted by edit.
func StoresWith(t *testing.T, edit func(*server.Config), fn func(t *testing.T, e *Env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, Start(t, "sqlite", edit)) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv("MUON_TEST_POSTGRES") == "" {
			if os.Getenv("MUON_E2E") == "1" {
				t.Fatal("MUON_E2E=1 needs MUON_TEST_POSTGRES (scripts/test sets it up)")
			}
			t.Skip("needs PostgreSQL: set MUON_TEST_POSTGRES (scripts/test does)")
		}
		fn(t, Start(t, "postgres", edit))
	})
}
