package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
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
	cfg, err := loadConfig(*dir, *file, "")
	if err != nil {
		return err
	}
	ttl, err := cfg.TokenLifetime()
	if err != nil {
		return err
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

// bootstrapCmd is `muon bootstrap`: the built-in identity service's
// domain, roles and users on a server's database, as `muon up` makes them
// on its own, so a `muon server` deployment (PostgreSQL) has an admin.
// Passwords it makes are printed once; existing users keep theirs unless
// one is given.
func bootstrapCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	file := fs.String("config", "", "the server's TOML configuration file (its database)")
	db := fs.String("database", "", "PostgreSQL DSN or SQLite path (overrides the file)")
	admin := fs.String("admin-password", os.Getenv("MUON_ADMIN_PASSWORD"), "the admin user's password (default $MUON_ADMIN_PASSWORD, else generated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(defaultDataDir(), *file, *db)
	if err != nil {
		return err
	}
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := identity.Bootstrap(ctx, st, identity.BootstrapOptions{AdminPassword: *admin})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "identity bootstrapped: domain %s, project admin %s, user admin %s\n", res.DomainName, res.AdminProjectID, res.AdminUserID)
	for _, u := range []struct{ name, pw string }{{"admin", res.AdminPassword}, {"demo", res.DemoPassword}, {"reader", res.ReaderPassword}} {
		if u.pw != "" {
			fmt.Fprintf(stdout, "password of %s: %s\n", u.name, u.pw)
		} else {
			fmt.Fprintf(stdout, "user %s existed: its password is unchanged\n", u.name)
		}
	}
	return nil
}
