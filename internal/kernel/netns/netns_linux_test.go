package netns_test

import (
	"net"
	"testing"

	"muon/internal/kernel/netns"
	"muon/internal/kernel/netns/netnstest"
)

// TestDoLeavesTheCallerWhereItWas: a socket made in Do is in the
// namespace (it has only a loopback that is down), and the caller's
// namespace is the same before and after.
func TestDoLeavesTheCallerWhereItWas(t *testing.T) {
	ns := netnstest.New(t)
	before, err := netns.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	var ifaces []net.Interface
	if err := netns.Do(ns, func() error {
		var err error
		ifaces, err = net.Interfaces()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(ifaces) != 1 || ifaces[0].Name != "lo" {
		t.Errorf("inside the new namespace: %v, want only lo", ifaces)
	}
	for range 50 { // over many goroutines and threads
		after, err := netns.Current()
		if err != nil {
			t.Fatal(err)
		}
		if !after.Equal(before) {
			t.Fatal("a thread was left in the test's namespace")
		}
		after.Close()
		netns.Do(ns, func() error { return nil })
	}
}
