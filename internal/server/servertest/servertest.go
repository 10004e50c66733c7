// Package servertest runs a Networking API server for tests, over a fresh
// SQLite file and, when MUON_TEST_POSTGRES names a server, a fresh
// PostgreSQL database, and hands out gophercloud clients for it.
package servertest

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	_ "github.com/jackc/pgx/v5/stdlib"

	"muon/internal/identity"
	"muon/internal/server"
	"muon/internal/store"
)

// Env is one running server.
type Env struct {
	Store string // "sqlite" or "postgres"
	URL   string
	cfg   server.Config
}

// Stores runs fn once per store backend available, as subtests named
// after the store. PostgreSQL runs when MUON_TEST_POSTGRES is set; under
// MUON_E2E=1 its absence fails the test.
func Stores(t *testing.T, fn func(t *testing.T, e *Env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, Start(t, "sqlite", nil)) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv("MUON_TEST_POSTGRES") == "" {
			if os.Getenv("MUON_E2E") == "1" {
				t.Fatal("MUON_E2E=1 needs MUON_TEST_POSTGRES (scripts/test sets it up)")
			}
			t.Skip("needs PostgreSQL: set MUON_TEST_POSTGRES (scripts/test does)")
		}
		fn(t, Start(t, "postgres", nil))
	})
}

// Start runs a server on a fresh database of the given store; edit, if
// not nil, adjusts the configuration first.
func Start(t testing.TB, kind string, edit func(*server.Config)) *Env {
	t.Helper()
	cfg := server.DefaultConfig(t.TempDir())
	cfg.SQLiteSynchronous = "NORMAL"
	cfg.Auth = "noauth"
	st, h := build(t, kind, &cfg, edit)
	srv := httptest.NewServer(h.API)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
		st.Close()
	})
	return &Env{Store: kind, URL: srv.URL, cfg: cfg}
}

// build opens a fresh database of the store kind and the servers over it.
func build(t testing.TB, kind string, cfg *server.Config, edit func(*server.Config)) (store.Store, *server.Servers) {
	t.Helper()
	if kind == "postgres" {
		cfg.Database = FreshPostgres(t)
	} else {
		cfg.Database = filepath.Join(t.TempDir(), "muon.db")
	}
	if edit != nil {
		edit(cfg)
	}
	st, err := server.OpenStore(context.Background(), *cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	h, err := server.New(*cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		st.Close()
		t.Fatalf("server: %v", err)
	}
	return st, h
}

// FreshPostgres creates a database for one test and drops it afterwards.
func FreshPostgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv("MUON_TEST_POSTGRES")
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	name := "muon_test_" + strings.ReplaceAll(uuid.NewString()[:18], "-", "")
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("postgres: create database: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE " + name + " WITH (FORCE)")
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("MUON_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Client is a gophercloud networking client acting for a project; admin
// adds the admin role. (The server runs with auth noauth.)
func (e *Env) Client(project string, admin bool) *gophercloud.ServiceClient {
	h := map[string]string{"X-Project-Id": project}
	if admin {
		h["X-Roles"] = "admin"
	} else {
		h["X-Roles"] = "member"
	}
	pc := &gophercloud.ProviderClient{HTTPClient: http.Client{}}
	return &gophercloud.ServiceClient{
		ProviderClient: pc,
		Endpoint:       e.URL + "/",
		ResourceBase:   e.URL + "/v2.0/",
		Type:           "network",
		MoreHeaders:    h,
	}
}

// Admin is a client with the admin role in project "admin".
func (e *Env) Admin() *gophercloud.ServiceClient { return e.Client("admin", true) }

// Do sends a raw request (for malformed bodies and headers gophercloud
// will not send) and returns the status and body.
func (e *Env) Do(t testing.TB, method, path, project string, admin bool, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Project-Id", project)
	if admin {
		req.Header.Set("X-Roles", "admin")
	} else {
		req.Header.Set("X-Roles", "member")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Cloud is a server with the built-in identity service, bootstrapped:
// clients authenticate with Keystone tokens as real clients do.
type Cloud struct {
	Env
	IdentityURL string // without /v3
	Boot        *identity.BootstrapResult
}

// StartCloud runs the Networking API with auth keystone and the built-in
// identity service on a fresh database; edit adjusts the configuration.
func StartCloud(t testing.TB, kind string, edit func(*server.Config)) *Cloud {
	t.Helper()
	apiSrv := httptest.NewUnstartedServer(nil)
	idSrv := httptest.NewUnstartedServer(nil)
	cfg := server.DefaultConfig(t.TempDir())
	cfg.SQLiteSynchronous = "NORMAL"
	cfg.Auth = "keystone"
	cfg.PublicURL = "http://" + apiSrv.Listener.Addr().String()
	cfg.IdentityPublicURL = "http://" + idSrv.Listener.Addr().String()
	st, h := build(t, kind, &cfg, edit)
	boot, err := identity.Bootstrap(context.Background(), st, identity.BootstrapOptions{AdminPassword: "admin-pw", DemoPassword: "demo-pw", ReaderPassword: "reader-pw"})
	if err != nil {
		st.Close()
		t.Fatalf("bootstrap: %v", err)
	}
	apiSrv.Config.Handler = h.API
	idSrv.Config.Handler = h.Identity.Handler()
	apiSrv.Start()
	idSrv.Start()
	t.Cleanup(func() {
		apiSrv.Close()
		idSrv.Close()
		st.Close()
	})
	return &Cloud{Env: Env{Store: kind, URL: apiSrv.URL, cfg: cfg}, IdentityURL: idSrv.URL, Boot: boot}
}

// Login authenticates a bootstrap user (admin, demo or reader) with its
// password, scoped to its project, and returns a networking client found
// through the token's catalog.
func (c *Cloud) Login(t testing.TB, user string) *gophercloud.ServiceClient {
	t.Helper()
	project := map[string]string{"admin": "admin", "demo": "demo", "reader": "demo"}[user]
	provider, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: c.IdentityURL + "/v3",
		Username:         user, Password: user + "-pw", DomainName: "Default",
		Scope: &gophercloud.AuthScope{ProjectName: project, DomainName: "Default"},
	})
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	nc, err := openstack.NewNetworkV2(provider, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatalf("network endpoint: %v", err)
	}
	return nc
}

// String names the env in failures.
func (e *Env) String() string { return fmt.Sprintf("%s server at %s", e.Store, e.URL) }
