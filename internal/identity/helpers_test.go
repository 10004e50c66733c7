package identity

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"golang.org/x/crypto/bcrypt"

	"muon/internal/store"
	"muon/internal/store/postgres"
	"muon/internal/store/sqlite"
)

const (
	adminPW  = "admin-secret"
	demoPW   = "demo-secret"
	readerPW = "reader-secret"
	netURL   = "http://127.0.0.1:9696"
)

func TestMain(m *testing.M) {
	hashCost = bcrypt.MinCost
	os.Exit(m.Run())
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	path string
	st   store.Store
	clk  *clock
	svc  *Service
	srv  *httptest.Server
	res  *BootstrapResult
}

// openStore opens a SQLite file, or a PostgreSQL DSN.
func openStore(t *testing.T, path string) store.Store {
	t.Helper()
	var st store.Store
	var err error
	if strings.HasPrefix(path, "postgres://") {
		st, err = postgres.Open(context.Background(), path)
	} else {
		st, err = sqlite.Open(context.Background(), path, sqlite.Options{Synchronous: "NORMAL"})
	}
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newEnv bootstraps a store and serves the identity API over it.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{path: filepath.Join(t.TempDir(), "muon.db"), clk: &clock{t: time.Now()}}
	if strings.HasPrefix(t.Name(), "TestPostgres/") {
		e.path = freshPostgres(t)
	}
	e.st = openStore(t, e.path)
	t.Cleanup(func() { e.st.Close() })
	var err error
	e.res, err = Bootstrap(context.Background(), e.st, BootstrapOptions{AdminPassword: adminPW, DemoPassword: demoPW, ReaderPassword: readerPW})
	if err != nil {
		t.Fatal(err)
	}
	e.start(t)
	return e
}

// start (re)builds the service and its server over e.st.
func (e *env) start(t *testing.T) {
	t.Helper()
	svc, err := New(Config{NetworkURL: netURL + "/v2.0/", Now: e.clk.Now}, e.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.srv = httptest.NewServer(svc.Handler())
	t.Cleanup(e.srv.Close)
}

func (e *env) opts(user, pw string, scope *gophercloud.AuthScope) gophercloud.AuthOptions {
	return gophercloud.AuthOptions{
		IdentityEndpoint: e.srv.URL + "/v3",
		Username:         user, Password: pw, DomainName: "Default", Scope: scope,
	}
}

func projectScope(name string) *gophercloud.AuthScope {
	return &gophercloud.AuthScope{ProjectName: name, DomainName: "Default"}
}

// client authenticates with gophercloud and returns an identity client.
func (e *env) client(t *testing.T, o gophercloud.AuthOptions) *gophercloud.ServiceClient {
	t.Helper()
	p, err := openstack.AuthenticatedClient(context.Background(), o)
	if err != nil {
		t.Fatalf("authenticate %s: %v", o.Username, err)
	}
	c, err := openstack.NewIdentityV3(p, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) admin(t *testing.T) *gophercloud.ServiceClient {
	return e.client(t, e.opts("admin", adminPW, projectScope("admin")))
}

// do sends a raw request and returns the status, headers and body.
func (e *env) do(t *testing.T, method, path, token, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	if code == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !gophercloud.ResponseCodeIs(err, code) {
		t.Fatalf("want %d, got %v", code, err)
	}
}

// TestPostgres runs the tests that write most against PostgreSQL, when
// MUON_TEST_POSTGRES names a server.
func TestPostgres(t *testing.T) {
	if os.Getenv("MUON_TEST_POSTGRES") == "" {
		if os.Getenv("MUON_E2E") == "1" {
			t.Fatal("MUON_E2E=1 needs MUON_TEST_POSTGRES")
		}
		t.Skip("needs PostgreSQL: set MUON_TEST_POSTGRES")
	}
	for name, fn := range map[string]func(*testing.T){
		"onboarding": TestOnboarding, "crud": TestCRUD, "middleware": TestMiddleware,
		"restart": TestRestartKeepsTokens, "revoke": TestValidateAndRevoke, "password-auth": TestPasswordAuth,
	} {
		t.Run(name, fn)
	}
}

// freshPostgres creates a database for one test and drops it afterwards.
func freshPostgres(t *testing.T) string {
	t.Helper()
	base := os.Getenv("MUON_TEST_POSTGRES")
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	name := "muon_identity_" + newID()[:16]
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
