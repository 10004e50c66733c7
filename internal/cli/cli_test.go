package cli

import (
	"bytes"
	"context"
	"io"
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

// TestUp runs `muon up` as a user would and talks to it, then stops it
// and starts it again over the same data directory: state persists.
func TestUp(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	start := func() (context.CancelFunc, chan int, *syncBuffer) {
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan int, 1)
		go func() {
			done <- Main(ctx, []string{"muon", "up", "--data-dir", dir, "--port", strconv.Itoa(port)}, out)
		}()
		for range 100 {
			if strings.Contains(out.String(), "muon is up") {
				return cancel, done, out
			}
			time.Sleep(20 * time.Millisecond)
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
	if !strings.Contains(out.String(), "OS_ENDPOINT="+strings.TrimPrefix(base, "")) {
		t.Errorf("muon up does not say how to point the openstack CLI at it:\n%s", out.String())
	}
	resp, err := http.Post(base+"/v2.0/networks", "application/json", strings.NewReader(`{"network": {"name": "kept"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create network: %d", resp.StatusCode)
	}
	stop(cancel, done)
	if _, err := os.Stat(filepath.Join(dir, "muon.db")); err != nil {
		t.Fatalf("no database in the data directory: %v", err)
	}

	cancel, done, _ = start()
	defer stop(cancel, done)
	resp, err = http.Get(base + "/v2.0/networks?name=kept")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"name":"kept"`) {
		t.Errorf("after a restart the network is gone: %s", body)
	}
}

func TestUnknownCommand(t *testing.T) {
	if code := Main(context.Background(), []string{"muon", "frobnicate"}, io.Discard); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
}
