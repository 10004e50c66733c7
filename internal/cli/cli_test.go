package cli

import (
	"bytes"
	"context"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"

	"io"
	"muon/internal/server"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestUp runs `muon up` as a user would: it authenticates with the
// bootstrap admin's password through the built-in identity service (the
// client's real auth path, endpoint from the catalog), creates a network,
// and after a restart over the same data directory the token still works
// and the network is still there.
func TestUp(t *testing.T) {
	dir := t.TempDir()
	port, idPort := freePort(t), freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	start := func() (context.CancelFunc, chan int, *syncBuffer) {
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan int, 1)
		go func() {
			done <- Main(ctx, []string{"muon", "up", "--data-dir", dir, "--port", strconv.Itoa(port), "--identity-port", strconv.Itoa(idPort), "--agent=false"}, out)
		}()
		for range 250 {
			if strings.Contains(out.String(), "muon is up") {
				return cancel, done, out
			}
			select {
			case code := <-done:
				t.Fatalf("muon up exited %d: %s", code, out.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		cancel()
		t.Fatalf("muon up did not come up; printed %q", out.String())
		return nil, nil, nil
	}
	stop := func(cancel context.CancelFunc, done chan int) {
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("muon up exited %d", code)
		}
	}
	cancel, done, out := start()
	if !strings.Contains(out.String(), "OS_CLOUD=muon-admin") {
		t.Errorf("muon up does not say how to point the openstack CLI at it:\n%s", out.String())
	}
	clouds, err := os.ReadFile(filepath.Join(dir, "clouds.yaml"))
	if err != nil || !strings.Contains(string(clouds), "127.0.0.1:"+strconv.Itoa(idPort)) {
		t.Fatalf("clouds.yaml: %v\n%s", err, clouds)
	}
	pw, err := os.ReadFile(filepath.Join(dir, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: "http://127.0.0.1:" + strconv.Itoa(idPort) + "/v3",
		Username:         "admin", Password: strings.TrimSpace(string(pw)), DomainName: "Default",
		Scope: &gophercloud.AuthScope{ProjectName: "admin", DomainName: "Default"},
	})
	if err != nil {
		t.Fatalf("authenticate as admin: %v", err)
	}
	nc, err := openstack.NewNetworkV2(provider, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatalf("network endpoint from the catalog: %v", err)
	}
	if _, err := networks.Create(ctx, nc, networks.CreateOpts{Name: "kept"}).Extract(); err != nil {
		t.Fatalf("create network: %v", err)
	}
	token := provider.Token()
	stop(cancel, done)
	if _, err := os.Stat(filepath.Join(dir, "muon.db")); err != nil {
		t.Fatalf("no database in the data directory: %v", err)
	}

	cancel, done, _ = start()
	defer stop(cancel, done)
	req, _ := http.NewRequest("GET", base+"/v2.0/networks?name=kept", nil)
	req.Header.Set("X-Auth-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"name":"kept"`) {
		t.Errorf("after a restart, with the old token: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(base + "/v2.0/networks")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Keystone uri=") {
		t.Errorf("no token: %d, WWW-Authenticate %q; want 401 and a Keystone challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestUnknownCommand(t *testing.T) {
	if code := Main(context.Background(), []string{"muon", "frobnicate"}, io.Discard); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
}

// TestUpPrivateState: whatever mode the data directory had, muon up
// leaves it 0700 and its secrets 0600 (the database holds the token keys),
// does not rewrite them on a restart, and refuses a database others can
// read.
func TestUpPrivateState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(wantUp bool) string {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &syncBuffer{}
		done := make(chan int, 1)
		go func() {
			done <- Main(ctx, []string{"muon", "up", "--data-dir", dir, "--port", strconv.Itoa(freePort(t)),
				"--identity-port", strconv.Itoa(freePort(t)), "--agent=false"}, out)
		}()
		for range 250 {
			if strings.Contains(out.String(), "muon is up") {
				if !wantUp {
					t.Fatalf("muon up came up: %s", out.String())
				}
				cancel()
				<-done
				return out.String()
			}
			select {
			case code := <-done:
				if wantUp || code == 0 {
					t.Fatalf("muon up exited %d: %s", code, out.String())
				}
				return out.String()
			case <-time.After(20 * time.Millisecond):
			}
		}
		t.Fatalf("muon up neither came up nor failed: %s", out.String())
		return ""
	}
	run(true)
	perm := func(name string) os.FileMode {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if m := perm("."); m != 0o700 {
		t.Errorf("data directory mode %04o, want 0700", m)
	}
	for _, f := range []string{"muon.db", "passwords.json", "admin-password", "clouds.yaml"} {
		if m := perm(f); m != 0o600 {
			t.Errorf("%s mode %04o, want 0600", f, m)
		}
	}
	before, _ := os.Stat(filepath.Join(dir, "passwords.json"))
	run(true)
	if after, _ := os.Stat(filepath.Join(dir, "passwords.json")); !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("passwords.json rewritten on a restart")
	}
	os.Chmod(filepath.Join(dir, "muon.db"), 0o644)
	run(false)
	_, err := server.OpenStore(context.Background(), server.DefaultConfig(dir))
	if err == nil || !strings.Contains(err.Error(), "open to other users") {
		t.Errorf("opening a world-readable database: %v", err)
	}
}

// TestKeysRotate: `muon keys rotate` on a data directory adds a signing
// key and keeps the one before it.
func TestKeysRotate(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	for i, want := range []string{"1 key(s)", "2 key(s)", "3 key(s)"} {
		out.Reset()
		if code := Main(context.Background(), []string{"muon", "keys", "rotate", "--data-dir", dir}, &out); code != 0 {
			t.Fatalf("rotate %d: exit %d: %s", i, code, out.String())
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("rotate %d: %q, want %s", i, out.String(), want)
		}
	}
}

// TestBootstrap: `muon bootstrap` gives a server's database an admin
// whose password works, once; run again it keeps the users' passwords.
func TestBootstrap(t *testing.T) {
	db := filepath.Join(t.TempDir(), "muon.db")
	var out bytes.Buffer
	if code := Main(context.Background(), []string{"muon", "bootstrap", "--database", db, "--admin-password", "s3cret-admin"}, &out); code != 0 {
		t.Fatalf("bootstrap: %d %s", code, out.String())
	}
	if !strings.Contains(out.String(), "password of admin: s3cret-admin") || !strings.Contains(out.String(), "password of demo: ") {
		t.Errorf("bootstrap printed %q", out.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"muon", "bootstrap", "--database", db}, &out); code != 0 {
		t.Fatalf("bootstrap again: %d %s", code, out.String())
	}
	if !strings.Contains(out.String(), "user admin existed") {
		t.Errorf("bootstrap again printed %q", out.String())
	}
}
