// Package cli is the muon command: its subcommands and flags.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"muon/internal/server"
)

const usage = `muon: OpenStack Networking, in Go.

Usage:
  muon up      [--data-dir DIR] [--host ADDR] [--port PORT] [--auth noauth|keystone]
               run everything on this host, state in DIR (SQLite)
  muon server  [--config FILE] [--host ADDR] [--port PORT] [--database DSN]
               run the API server from a configuration file
  muon bench   [--url URL] [-n N] [-c C]
               create N ports with C concurrent clients and print ports/s and latency
`

// Main runs the command line and returns the exit status.
func Main(ctx context.Context, args []string, stdout io.Writer) int {
	if len(args) < 2 {
		fmt.Fprint(stdout, usage)
		return 2
	}
	var err error
	switch args[1] {
	case "up":
		err = up(ctx, args[2:], stdout)
	case "server":
		err = serve(ctx, args[2:], stdout)
	case "bench":
		err = bench(ctx, args[2:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "muon: unknown command %q\n\n%s", args[1], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "muon %s: %v\n", args[1], err)
		return 1
	}
	return 0
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "muon")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "muon")
	}
	return "muon-data"
}

func up(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	dir := fs.String("data-dir", defaultDataDir(), "directory for the database and state")
	host := fs.String("host", "127.0.0.1", "address to listen on")
	port := fs.Int("port", 9696, "Networking API port")
	authn := fs.String("auth", "noauth", "noauth or keystone")
	verbose := fs.Bool("v", false, "log every request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := server.DefaultConfig(*dir)
	cfg.Host, cfg.Port, cfg.Auth = *host, *port, *authn
	return run(ctx, cfg, stdout, *verbose, func(addr string) {
		fmt.Fprintf(stdout, `muon is up: Networking API v2.0 at http://%[1]s/v2.0 (state in %[2]s)

Point the openstack CLI at it (auth %[3]s):
  export OS_AUTH_TYPE=none OS_ENDPOINT=http://%[1]s
  openstack network create demo
  openstack subnet create --network demo --subnet-range 10.0.0.0/24 demo-subnet
  openstack port create --network demo demo-port
Or drive the API directly:
  curl -s -H 'X-Project-Id: demo' http://%[1]s/v2.0/networks

`, addr, *dir, *authn)
	})
}

func serve(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	file := fs.String("config", "", "TOML configuration file")
	host := fs.String("host", "", "address to listen on (overrides the file)")
	port := fs.Int("port", 0, "port (overrides the file)")
	db := fs.String("database", "", "PostgreSQL DSN or SQLite path (overrides the file)")
	verbose := fs.Bool("v", false, "log every request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := server.DefaultConfig(defaultDataDir())
	if *file != "" {
		if err := server.LoadFile(*file, &cfg); err != nil {
			return err
		}
	}
	if *host != "" {
		cfg.Host = *host
	}
	if *port != 0 {
		cfg.Port = *port
	}
	if *db != "" {
		cfg.Database = *db
	}
	return run(ctx, cfg, stdout, *verbose, func(addr string) {
		fmt.Fprintf(stdout, "muon server: listening on http://%s\n", addr)
	})
}

// run serves the API until ctx ends.
func run(ctx context.Context, cfg server.Config, stdout io.Writer, verbose bool, ready func(addr string)) error {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	h, err := server.New(cfg, st, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	ready(ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
