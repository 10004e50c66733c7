package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"muon/internal/agents"
	"muon/internal/l3"
	"muon/internal/server"
)

// TestLoadFile: one file holds the server's keys and each feature's; a
// key nobody knows is an error that names it.
func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "muon.toml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := server.DefaultConfig(dir)
	if err := server.LoadFile(write("port = 9797\nmax_routes = 7\nagent_down_time = 90\n[quotas]\nrouter = 3\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 9797 || cfg.Quotas["router"] != 3 {
		t.Errorf("server keys: port %d quotas %v", cfg.Port, cfg.Quotas)
	}
	if got := cfg.Features["l3"].(*l3.Config).MaxRoutes; got != 7 {
		t.Errorf("l3 max_routes %d, want 7", got)
	}
	if o := cfg.Features["agents"].(*agents.Config); o.DownTime != 90 || o.ReportInterval != 30 {
		t.Errorf("agents %+v, want down time 90 and the default report interval", o)
	}
	cfg = server.DefaultConfig(dir)
	err := server.LoadFile(write("max_routes = 7\nmax_rotes = 8\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), "max_rotes") || strings.Contains(err.Error(), "max_routes") {
		t.Errorf("a misspelt key: %v", err)
	}
}
