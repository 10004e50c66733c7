// Package netnstest makes network namespaces for tests.
package netnstest

import (
	"os"
	"strconv"
	"testing"

	vnetns "github.com/vishvananda/netns"

	"muon/internal/kernel/netns"
)

// New makes a network namespace for one test; closing its last handle at
// cleanup removes it and every link in it. Without root it skips, or
// fails under MUON_E2E=1.
func New(t testing.TB) netns.Handle {
	t.Helper()
	NeedRoot(t)
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// NeedRoot skips a test that needs root, or fails it under MUON_E2E=1.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("MUON_E2E") == "1" {
			t.Fatal("MUON_E2E=1 needs root")
		}
		t.Skip("needs root: creates network namespaces")
	}
}

// Dup is a second handle to ns, for a taker that closes it
// (kernel.OpenAt takes the handle it is given).
func Dup(t testing.TB, ns netns.Handle) netns.Handle {
	t.Helper()
	d, err := vnetns.GetFromPath("/proc/self/fd/" + strconv.Itoa(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}
