package l2

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"muon/internal/agentapi"
	"muon/internal/kernel"
	"muon/internal/kernel/netns/netnstest"
)

// TestSyncLeavesOthersAlone, in a real namespace: a second agent (host h2)
// on the same machine and a hand-made brq-foreign bridge survive the
// first agent's Syncs untouched, the first wiring a network and then
// being told it has nothing.
func TestSyncLeavesOthersAlone(t *testing.T) {
	ctx := context.Background()
	ns := netnstest.New(t)
	open := func(owner string) *kernel.Linux {
		k, err := kernel.OpenAt(netnstest.Dup(t, ns), owner)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { k.Close() })
		return k
	}
	k1, k2 := open("h1"), open("h2")
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "brq-foreign"}}))
	for _, id := range []string{p1, p2, p3} {
		must(h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: agentapi.TapName(id)}, PeerName: "i" + id[:8]}))
	}
	foreign, err := h.LinkByName("brq-foreign")
	must(err)
	tap3, err := h.LinkByName(agentapi.TapName(p3))
	must(err)
	must(h.LinkSetMaster(tap3, foreign))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a1 := New(Config{Host: "h1", TunnelIP: "192.168.100.1"}, k1, log)
	a2 := New(Config{Host: "h2", TunnelIP: "192.168.100.2"}, k2, log)

	must(a2.Sync(ctx, agentapi.L2{Networks: []agentapi.Network{vxnet(netB, 1002, h3)}, Ports: []agentapi.Port{port(p2, netB, true)}}))
	others := func(l kernel.Link) bool { return !l.OwnedBy(k1.Mark()) && l.Name != agentapi.TapName(p1) }
	before, err := kernel.Dump(ctx, k1, others)
	must(err)
	for _, want := range []string{"link brq-foreign bridge", "link brqbbbbbbbb-00 bridge mtu 1450 up", "master brqbbbbbbbb-00",
		"link tap33333333-33 veth mtu 1500 down master brq-foreign", "fdb vxlan-1002 00:00:00:00:00:00 dst 192.168.100.3"} {
		if !strings.Contains(before, want) {
			t.Fatalf("setup: no %q in\n%s", want, before)
		}
	}

	must(a1.Sync(ctx, agentapi.L2{Networks: []agentapi.Network{vxnet(netA, 1001, h2)}, Ports: []agentapi.Port{port(p1, netA, true)}}))
	mid, err := kernel.Dump(ctx, k1, nil)
	must(err)
	if !strings.Contains(mid, "link tap11111111-11 veth mtu 1450 up master brqaaaaaaaa-00") {
		t.Fatalf("h1 did not wire its port:\n%s", mid)
	}
	must(a1.Sync(ctx, agentapi.L2{}))
	after, err := kernel.Dump(ctx, k1, others)
	must(err)
	if after != before {
		t.Errorf("h1's Syncs changed what is not its own:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	links, err := k1.Links(ctx)
	must(err)
	for _, l := range links {
		if l.OwnedBy(k1.Mark()) {
			t.Errorf("h1 left its %s behind", l.Name)
		}
		if (l.Name == "brqbbbbbbbb-00" || l.Name == "vxlan-1002") && !l.OwnedBy(kernel.Mark("h2")) {
			t.Errorf("%s lost h2's mark: %q", l.Name, l.Alias)
		}
	}
}
