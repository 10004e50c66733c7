// Package cli is the muon command: its subcommands and flags.
package cli

import (
	"context"
	"encoding/json"
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
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"muon/internal/agent"
	"muon/internal/identity"
	"muon/internal/server"
	"muon/internal/statefile"
	"muon/internal/store"
)

const usage = `muon: OpenStack Networking, in Go.

Usage:
  muon up      [--data-dir DIR] [--host ADDR] [--port PORT] [--auth noauth|keystone] [--agent=false]
               [--interface-mappings physnet1:eth1]
               run everything on this host, state in DIR (SQLite), with its agent when root
               (L2, DHCP and L3: this host is the network node)
  muon server  [--config FILE] [--host ADDR] [--port PORT] [--database DSN]
               run the API server from a configuration file
  muon agent   --server URL [--host NAME] --tunnel-ip IP [--interface-mappings physnet1:eth1] [--report-interval S]
               [--l3-agent-mode legacy]
               run this host's agent (root): bridges, VXLAN, taps, DHCP; routers with --l3-agent-mode
  muon port    plug PORT_ID --netns NAME [--url URL] [--auth noauth] [--host NAME] | unplug PORT_ID [--netns NAME]
               make (remove) an instance for a port: a namespace with eth0, tap<id> on this host, bound here
  muon bench   [--url URL] [-n N] [-c C]
               create N ports with C concurrent clients and print ports/s and latency
  muon bootstrap [--config FILE] [--database DSN] [--admin-password PW]
               the built-in identity's admin, demo and reader users on a server's database
  muon keys    rotate [--data-dir DIR | --config FILE]
               a new token signing key; tokens signed before stay valid until they expire
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
	case "agent":
		err = agentCmd(ctx, args[2:], stdout)
	case "port":
		err = portCmd(ctx, args[2:], stdout)
	case "keys":
		err = keysCmd(ctx, args[2:], stdout)
	case "bootstrap":
		err = bootstrapCmd(ctx, args[2:], stdout)
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
	idPort := fs.Int("identity-port", 5000, "identity (Keystone v3) port")
	authn := fs.String("auth", "keystone", "keystone (built-in identity service) or noauth")
	adminPass := fs.String("admin-password", "", "the admin user's password (default: generated once, kept in DATA-DIR/admin-password)")
	policyFile := fs.String("policy-file", "", "an operator's policy.yaml over Neutron's default rules")
	verbose := fs.Bool("v", false, "log every request")
	withAgent := fs.Bool("agent", true, "run this host's L2 agent too (needs root; else the data plane is off)")
	tunnel := fs.String("tunnel-ip", "", "the agent's VXLAN tunnel address (default: the address of the default route)")
	nsPrefix := fs.String("netns-prefix", "", "put this before the names of the namespaces the agent makes (qdhcp-NETWORK)")
	ifmaps := fs.String("interface-mappings", "", "the agent's physical networks' interfaces, physnet1:eth1,... (an external flat network on eth1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := mappings(*ifmaps)
	if err != nil {
		return err
	}
	agentLog := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := server.DefaultConfig(*dir)
	cfg.Host, cfg.Port, cfg.IdentityPort, cfg.Auth, cfg.PolicyFile = *host, *port, *idPort, *authn, *policyFile
	if cfg.Auth == "noauth" {
		cfg.IdentityPort = 0
	}
	return run(ctx, cfg, stdout, *verbose, func(ctx context.Context, st store.Store, srv *server.Servers) (func(apiAddr, idAddr string), error) {
		if srv.Identity == nil {
			return func(addr, _ string) {
				if *withAgent {
					startAgent(ctx, addr, nil, *tunnel, *nsPrefix, m, agentLog)
				}
				fmt.Fprintf(stdout, `muon is up: Networking API v2.0 at http://%[1]s/v2.0 (state in %[2]s, auth noauth)

Point the openstack CLI at it:
  export OS_AUTH_TYPE=none OS_ENDPOINT=http://%[1]s
  openstack network create demo
Or drive the API directly (X-Project-Id names the project, X-Roles: admin makes an admin):
  curl -s -H 'X-Project-Id: demo' -H 'X-Roles: member' http://%[1]s/v2.0/networks

`, addr, *dir)
			}, nil
		}
		clouds, err := bootstrap(ctx, st, *dir, *adminPass, cfg.IdentityURL())
		if err != nil {
			return nil, err
		}
		return func(addr, idAddr string) {
			if *withAgent {
				pw, err := os.ReadFile(filepath.Join(*dir, "admin-password"))
				if err != nil {
					agentLog.Warn("the data plane is off: no admin password for the agent", "err", err)
				} else {
					startAgent(ctx, addr, agent.PasswordAuth(gophercloud.AuthOptions{
						IdentityEndpoint: "http://" + idAddr + "/v3", Username: "admin", Password: strings.TrimSpace(string(pw)),
						DomainName: "Default", Scope: &gophercloud.AuthScope{ProjectName: "admin", DomainName: "Default"},
					}), *tunnel, *nsPrefix, m, agentLog)
				}
			}
			fmt.Fprintf(stdout, `muon is up: Networking API v2.0 at http://%[1]s/v2.0, identity (Keystone v3) at http://%[2]s/v3
State in %[3]s; the admin password is in %[3]s/admin-password.

Point the openstack CLI at it:
  export OS_CLIENT_CONFIG_FILE=%[4]s OS_CLOUD=muon-admin   # or muon-demo, muon-reader
  openstack network create demo
  openstack subnet create --network demo --subnet-range 10.0.0.0/24 demo-subnet
  openstack port create --network demo demo-port

`, addr, idAddr, *dir, clouds)
		}, nil
	})
}

// bootstrap makes the identity service's admin, demo and reader users
// (once) and writes clouds.yaml for them into dir.
func bootstrap(ctx context.Context, st store.Store, dir, adminPass, identityURL string) (string, error) {
	if err := statefile.PrivateDir(dir); err != nil {
		return "", err
	}
	secrets := filepath.Join(dir, "passwords.json")
	var pw struct{ Admin, Demo, Reader string }
	if b, err := os.ReadFile(secrets); err == nil {
		if err := json.Unmarshal(b, &pw); err != nil {
			return "", fmt.Errorf("%s: %w", secrets, err)
		}
	}
	if adminPass != "" {
		pw.Admin = adminPass
	}
	res, err := identity.Bootstrap(ctx, st, identity.BootstrapOptions{AdminPassword: pw.Admin, DemoPassword: pw.Demo, ReaderPassword: pw.Reader})
	if err != nil {
		return "", err
	}
	// Bootstrap reports the passwords it set; keep what it reports.
	for _, p := range []struct {
		got  string
		keep *string
	}{{res.AdminPassword, &pw.Admin}, {res.DemoPassword, &pw.Demo}, {res.ReaderPassword, &pw.Reader}} {
		if p.got != "" {
			*p.keep = p.got
		}
	}
	res.AdminPassword, res.DemoPassword, res.ReaderPassword = pw.Admin, pw.Demo, pw.Reader
	b, _ := json.MarshalIndent(pw, "", "  ")
	if err := statefile.Write(secrets, b); err != nil {
		return "", err
	}
	if err := statefile.Write(filepath.Join(dir, "admin-password"), []byte(pw.Admin+"\n")); err != nil {
		return "", err
	}
	clouds := filepath.Join(dir, "clouds.yaml")
	if err := statefile.Write(clouds, []byte(identity.CloudsYAML(identityURL, res))); err != nil {
		return "", fmt.Errorf("clouds.yaml: %w", err)
	}
	return clouds, nil
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
	cfg, err := loadConfig(defaultDataDir(), *file, *db)
	if err != nil {
		return err
	}
	if *host != "" {
		cfg.Host = *host
	}
	if *port != 0 {
		cfg.Port = *port
	}
	return run(ctx, cfg, stdout, *verbose, func(context.Context, store.Store, *server.Servers) (func(string, string), error) {
		return func(addr, idAddr string) {
			fmt.Fprintf(stdout, "muon server: Networking API on http://%s\n", addr)
			if idAddr != "" {
				fmt.Fprintf(stdout, "muon server: identity on http://%s\n", idAddr)
			}
		}, nil
	})
}

// loadConfig is the configuration of a data directory, read over by a
// file when one is named, its database overridden when db is set.
func loadConfig(dir, file, db string) (server.Config, error) {
	cfg := server.DefaultConfig(dir)
	if file != "" {
		if err := server.LoadFile(file, &cfg); err != nil {
			return cfg, err
		}
	}
	if db != "" {
		cfg.Database = db
	}
	return cfg, nil
}

// starter runs once the servers are built and before they listen; the
// function it returns is told the addresses they listen on.
type starter func(ctx context.Context, st store.Store, srv *server.Servers) (func(apiAddr, identityAddr string), error)

// run serves the API (and the identity service, when built in) until ctx
// ends.
func run(ctx context.Context, cfg server.Config, stdout io.Writer, verbose bool, start starter) error {
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
	srv, err := server.New(cfg, st, log)
	if err != nil {
		return err
	}
	ready, err := start(ctx, st, srv)
	if err != nil {
		return err
	}
	handlers := []http.Handler{srv.API}
	ports := []int{cfg.Port}
	if srv.Identity != nil {
		handlers = append(handlers, srv.Identity.Handler())
		ports = append(ports, cfg.IdentityPort)
	}
	var lns []net.Listener
	for _, p := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(p)))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return err
		}
		lns = append(lns, ln)
	}
	errs := make(chan error, len(lns))
	var servers []*http.Server
	for i, raw := range lns {
		hs, ln, err := cfg.Serve(raw, handlers[i])
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return err
		}
		servers = append(servers, hs)
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}
	idAddr := ""
	if len(lns) > 1 {
		idAddr = lns[1].Addr().String()
	}
	rctx, stopRuns := context.WithCancel(ctx)
	runsDone := make(chan struct{})
	go func() { srv.Run(rctx); close(runsDone) }()
	defer func() { stopRuns(); <-runsDone }()
	ready(lns[0].Addr().String(), idAddr)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errs:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, hs := range servers {
		hs.Shutdown(sctx)
	}
	return serveErr
}
