package kernel

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"muon/internal/kernel/netns/netnstest"
)

func newNetNS(t *testing.T) netns.NsHandle { return netnstest.New(t) }

func openAt(t *testing.T, ns netns.NsHandle) *Linux {
	t.Helper()
	dup, err := netns.GetFromPath("/proc/self/fd/" + strconv.Itoa(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	k, err := OpenAt(dup, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func TestLinuxProbe(t *testing.T) {
	newNetNS(t)
	c := Probe()
	t.Logf("capabilities: %s %v", c, c.Missing)
	if !c.Bridge || !c.VXLAN {
		t.Fatalf("this project's kernels have bridges and VXLAN: %s %v", c, c.Missing)
	}
	if !c.VLAN {
		if err := c.Why("vlan", "h1"); !strings.Contains(err.Error(), "no 802.1Q support: vlan networks cannot be wired on host h1") {
			t.Errorf("why: %v", err)
		}
	}
}

func TestLinuxBridgeVXLAN(t *testing.T) {
	ctx := context.Background()
	k := openAt(t, newNetNS(t))
	ours := func(l Link) bool { return l.OwnedBy(Mark("test")) || strings.HasPrefix(l.Name, "tap") }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(k.EnsureBridge(ctx, "brq0123456789a", 1450))
	v := VXLAN{Name: "vxlan-1001", VNI: 1001, Local: "192.168.100.1", MTU: 1450}
	must(k.EnsureVXLAN(ctx, v))
	must(k.SetMaster(ctx, "vxlan-1001", "brq0123456789a"))
	must(k.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "tapaaaaaaaa-bb"}, PeerName: "inst0"}))
	must(k.SetMTU(ctx, "tapaaaaaaaa-bb", 1450))
	must(k.SetMaster(ctx, "tapaaaaaaaa-bb", "brq0123456789a"))
	must(k.SetUp(ctx, "tapaaaaaaaa-bb", true))
	for range 2 { // appends are idempotent
		must(k.AddFDB(ctx, "vxlan-1001", FDB{MAC: FloodMAC, Dst: "192.168.100.2"}))
		must(k.AddFDB(ctx, "vxlan-1001", FDB{MAC: FloodMAC, Dst: "192.168.100.3"}))
		must(k.AddFDB(ctx, "vxlan-1001", FDB{MAC: "fa:16:3e:00:00:02", Dst: "192.168.100.2"}))
		must(k.AddNeigh(ctx, "vxlan-1001", Neigh{IP: "10.0.0.2", MAC: "fa:16:3e:00:00:02"}))
		must(k.EnsureVXLAN(ctx, v))
		must(k.EnsureBridge(ctx, "brq0123456789a", 1450))
	}
	got, err := Dump(ctx, k, ours)
	must(err)
	want := `link brq0123456789a bridge mtu 1450 up
link tapaaaaaaaa-bb veth mtu 1450 up master brq0123456789a
link vxlan-1001 vxlan mtu 1450 id 1001 local 192.168.100.1 dstport 4789 nolearning up master brq0123456789a
fdb vxlan-1001 00:00:00:00:00:00 dst 192.168.100.2
fdb vxlan-1001 00:00:00:00:00:00 dst 192.168.100.3
fdb vxlan-1001 fa:16:3e:00:00:02 dst 192.168.100.2
neigh vxlan-1001 10.0.0.2 lladdr fa:16:3e:00:00:02
`
	if got != want {
		t.Fatalf("dump:\n%s\nwant:\n%s", got, want)
	}

	must(k.DelFDB(ctx, "vxlan-1001", FDB{MAC: FloodMAC, Dst: "192.168.100.3"}))
	must(k.DelNeigh(ctx, "vxlan-1001", Neigh{IP: "10.0.0.2"}))
	must(k.DelNeigh(ctx, "vxlan-1001", Neigh{IP: "10.0.0.2"})) // gone already
	must(k.SetMaster(ctx, "tapaaaaaaaa-bb", ""))
	must(k.SetUp(ctx, "tapaaaaaaaa-bb", false))
	// A changed tunnel address remakes the device (and its entries go).
	v.Local, v.Proxy = "192.168.100.9", true
	must(k.EnsureVXLAN(ctx, v))
	got, err = Dump(ctx, k, ours)
	must(err)
	want = `link brq0123456789a bridge mtu 1450 up
link tapaaaaaaaa-bb veth mtu 1450 down
link vxlan-1001 vxlan mtu 1450 id 1001 local 192.168.100.9 dstport 4789 nolearning proxy up
`
	if got != want {
		t.Fatalf("dump:\n%s\nwant:\n%s", got, want)
	}
	links, err := k.Links(ctx)
	must(err)
	for _, l := range links {
		if (l.Kind == "bridge" || l.Kind == "vxlan") && !l.OwnedBy(Mark("test")) {
			t.Errorf("%s not tagged as ours: alias %q", l.Name, l.Alias)
		}
		if l.Name == "tapaaaaaaaa-bb" && l.OwnedBy(Mark("test")) {
			t.Errorf("a tap is not ours")
		}
	}
	must(k.DeleteLink(ctx, "vxlan-1001"))
	must(k.DeleteLink(ctx, "brq0123456789a"))
	must(k.DeleteLink(ctx, "brq0123456789a"))
	got, _ = Dump(ctx, k, func(l Link) bool { return l.OwnedBy(Mark("test")) })
	if got != "" {
		t.Fatalf("left behind:\n%s", got)
	}
}

func TestLinuxWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := openAt(t, newNetNS(t))
	ch, err := k.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.EnsureBridge(ctx, "brqwatch", 1500); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no link event")
	}
	cancel()
	for range ch {
	}
	runtime.Gosched()
}
