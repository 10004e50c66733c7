package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"muon/internal/identity"
	"muon/internal/server"
)

// keysCmd is `muon keys rotate`: a new token signing key for the built-in
// identity service; tokens signed before stay valid until they expire.
func keysCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) < 1 || args[0] != "rotate" {
		return errors.New("usage: muon keys rotate [--data-dir DIR | --config FILE]")
	}
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	dir := fs.String("data-dir", defaultDataDir(), "muon up's state directory")
	file := fs.String("config", "", "a server's TOML configuration file (its database and token_ttl)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg := server.DefaultConfig(*dir)
	cfg.Database = filepath.Join(*dir, "muon.db")
	if *file != "" {
		if err := server.LoadFile(*file, &cfg); err != nil {
			return err
		}
	}
	ttl := identity.DefaultTokenTTL
	if cfg.TokenTTL != "" {
		d, err := time.ParseDuration(cfg.TokenTTL)
		if err != nil {
			return fmt.Errorf("token_ttl: %w", err)
		}
		ttl = d
	}
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	id, n, err := identity.RotateKeys(ctx, st, ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new signing key %s; %d key(s) verify tokens (older ones go when their tokens have expired); servers sign with it within a minute\n", id, n)
	return nil
}
