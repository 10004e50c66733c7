package server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"muon/internal/server"
)

// TestListenerBounds: a client that sends its body slowly, or holds a
// connection idle, is cut off; no more connections than allowed are
// served at once; bad settings are refused.
func TestListenerBounds(t *testing.T) {
	cfg := server.DefaultConfig(t.TempDir())
	cfg.HTTP = server.HTTPConfig{ReadHeaderTimeout: "200ms", ReadTimeout: "300ms", WriteTimeout: "61s", IdleTimeout: "300ms", MaxConnections: 2}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs, ln, err := cfg.Serve(raw, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	addr := raw.Addr().String()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	closedWithin := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, c)
		return err == nil // EOF: the server closed it
	}

	t.Run("slow-body", func(t *testing.T) {
		c := dial()
		io.WriteString(c, "POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"auth\":")
		if !closedWithin(c, 3*time.Second) {
			t.Error("a request body trickling in was held past read_timeout")
		}
	})
	t.Run("idle", func(t *testing.T) {
		c := dial()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request: %v %v", resp, err)
		}
		if !closedWithin(c, 3*time.Second) {
			t.Error("an idle kept-alive connection was held past idle_timeout")
		}
	})
	t.Run("no-headers", func(t *testing.T) {
		c := dial()
		io.WriteString(c, "GET / HTTP/1.1\r\n")
		if !closedWithin(c, 3*time.Second) {
			t.Error("a request whose headers never end was held past read_header_timeout")
		}
	})
	t.Run("max-connections", func(t *testing.T) {
		a, b := dial(), dial()
		io.WriteString(a, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		io.WriteString(b, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		for _, c := range []net.Conn{a, b} {
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
				t.Fatalf("request: %v %v", resp, err)
			}
		}
		third := dial()
		io.WriteString(third, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		third.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := third.Read(make([]byte, 1)); err == nil {
			t.Fatal("a third connection was served while two were open (max_connections 2)")
		}
		a.Close()
		third.SetReadDeadline(time.Now().Add(3 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(third), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("the third connection once one closed: %v %v", resp, err)
		}
	})
	for _, bad := range []server.HTTPConfig{{ReadTimeout: "soon"}, {WriteTimeout: "30s"}, {MaxConnections: -1}, {IdleTimeout: "-1s"}} {
		c := server.DefaultConfig(t.TempDir())
		c.HTTP = bad
		if _, _, err := c.Serve(raw, http.NotFoundHandler()); err == nil || !strings.Contains(err.Error(), "http ") {
			t.Errorf("%+v: %v, want a refusal", bad, err)
		}
	}
}
