package netnstest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"muon/internal/kernel/netns"
)

// PeerServer accepts TCP on addr in namespace ns and writes each peer's
// address back.
func PeerServer(t testing.TB, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := netns.DoNamed(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).IP)
				}
			}()
		}
	}()
}

// Dial connects from namespace ns.
func Dial(ns, addr string) (net.Conn, error) {
	var c net.Conn
	err := netns.DoNamed(ns, func() error {
		var err error
		c, err = (&net.Dialer{Timeout: time.Second}).Dial("tcp4", addr)
		return err
	})
	return c, err
}

// Ask sends a line on c and reads the peer address the server saw.
func Ask(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintln(c, "who"); err != nil {
		return "", err
	}
	s, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(s), err
}

// Seen dials addr from ns once and tells the source address the server
// saw.
func Seen(ns, addr string) (string, error) {
	c, err := Dial(ns, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return Ask(c)
}

// SeenFrom is Seen, retried while the path comes up.
func SeenFrom(t *testing.T, ns, addr string) string {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var s string
		if s, err = Seen(ns, addr); err == nil {
			return s
		}
	}
	t.Fatalf("%s -> %s: %v", ns, addr, err)
	return ""
}

// Unreachable fails the test if ns can ask addr.
func Unreachable(t *testing.T, ns, addr string) {
	t.Helper()
	if _, err := Seen(ns, addr); err == nil {
		t.Errorf("%s still reaches %s", ns, addr)
	}
}
