package l3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/ti-mo/conntrack"

	"muon/internal/agentapi"

	"muon/internal/kernel/netns"
	"muon/internal/kernel/netns/netnstest"
)

// nsLab is a few named namespaces for a router test: the agent's host,
// an outside host on the external bridge, instances on the tenant one.
type nsLab struct {
	t      testing.TB
	prefix string
}

func newNSLab(t testing.TB) *nsLab {
	netnstest.NeedRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command")
	}
	b := make([]byte, 3)
	rand.Read(b)
	l := &nsLab{t: t, prefix: "mt" + hex.EncodeToString(b)}
	t.Cleanup(func() {
		out, _ := exec.Command("ip", "netns", "list").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], l.prefix) {
				exec.Command("ip", "netns", "del", f[0]).Run()
			}
		}
	})
	return l
}

func (l *nsLab) ns(name string) string { return l.prefix + "-" + name }

func (l *nsLab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (l *nsLab) addNS(name string) string {
	l.t.Helper()
	n := l.ns(name)
	l.ip("netns", "add", n)
	l.ip("-n", n, "link", "set", "lo", "up")
	return n
}

// attach makes a namespace (name) with eth0 at addr (via gw) plugged into
// the host's bridge br.
func (l *nsLab) attach(host, br, name, addr, gw string) string {
	l.t.Helper()
	n := l.addNS(name)
	peer := "v" + name
	l.ip("link", "add", "eth0", "netns", n, "type", "veth", "peer", "name", peer, "netns", host)
	l.ip("-n", host, "link", "set", peer, "master", br, "up")
	l.ip("-n", n, "addr", "add", addr, "dev", "eth0")
	l.ip("-n", n, "link", "set", "eth0", "up")
	if gw != "" {
		l.ip("-n", n, "route", "add", "default", "via", gw)
	}
	return n
}

// TestRouterKernel builds one router for real: SNAT, a floating IP both
// ways, port forwardings (one port, and a range mapped by offset), an
// extra route; then changes and removes them, looking at what a
// connection through another mapping sees (nothing), and what an Ensure
// by a restarted agent changes in the table (nothing).
func TestRouterKernel(t *testing.T) {
	l := newNSLab(t)
	ctx := context.Background()
	host := l.addNS("h")
	for _, br := range []string{"brE", "brI"} {
		l.ip("-n", host, "link", "add", br, "type", "bridge")
		l.ip("-n", host, "link", "set", br, "up")
	}
	out := l.attach(host, "brE", "o", "203.0.113.1/24", "")
	vm1 := l.attach(host, "brI", "i1", "10.0.0.5/24", "10.0.0.1")
	vm2 := l.attach(host, "brI", "i2", "10.0.0.6/24", "10.0.0.1")
	netnstest.PeerServer(t, out, "203.0.113.1:80")
	netnstest.PeerServer(t, out, "203.0.113.1:21")
	netnstest.PeerServer(t, vm1, ":8080")
	netnstest.PeerServer(t, vm1, ":22")
	netnstest.PeerServer(t, vm1, ":4001")

	k := NewKernel(l.prefix+"-", func() string { return "muon:test" })
	ensure := func(k Kernel, s Spec) {
		t.Helper()
		if err := netns.DoNamed(host, func() error { return k.Ensure(ctx, s) }); err != nil {
			t.Fatal(err)
		}
	}
	spec := Spec{RouterID: "r1",
		Ports: []Pair{
			{Tap: "tapgw", Dev: "qg-gw", MAC: "fa:16:3e:00:00:01", MTU: 1500, Addrs: []string{"203.0.113.10/24"}},
			{Tap: "tapif", Dev: "qr-if", MAC: "fa:16:3e:00:00:02", MTU: 1500, Addrs: []string{"10.0.0.1/24"}},
		},
		Gateway: "qg-gw", GatewayIP: "203.0.113.10", NextHops: []string{"203.0.113.1"}, SNAT: true,
		Routes:      []Route{{Destination: "10.99.0.0/16", Nexthop: "10.0.0.6"}},
		FloatingIPs: map[string]string{"203.0.113.20": "10.0.0.5", "203.0.113.21": ""},
		Helpers:     []agentapi.ConntrackHelper{{Protocol: "tcp", Port: 21, Helper: "ftp"}},
		Forwards: []Forward{
			{FloatingIP: "203.0.113.21", Protocol: "tcp", ExternalPort: 2222, ExternalEnd: 2222, InternalIP: "10.0.0.5", InternalPort: 22, InternalEnd: 22},
			{FloatingIP: "203.0.113.21", Protocol: "tcp", ExternalPort: 3000, ExternalEnd: 3002, InternalIP: "10.0.0.5", InternalPort: 4000, InternalEnd: 4002},
		},
	}
	ensure(k, spec)
	// What the l2 driver does: the host sides into the bridges.
	l.ip("-n", host, "link", "set", "tapgw", "master", "brE")
	l.ip("-n", host, "link", "set", "tapif", "master", "brI")

	if got := netnstest.SeenFrom(t, vm2, "203.0.113.1:80"); got != "203.0.113.10" {
		t.Errorf("an instance without a floating IP reaches the outside as %s, want the gateway 203.0.113.10 (SNAT)", got)
	}
	if got := netnstest.SeenFrom(t, vm1, "203.0.113.1:80"); got != "203.0.113.20" {
		t.Errorf("the instance with a floating IP reaches the outside as %s, want 203.0.113.20", got)
	}
	if got := netnstest.SeenFrom(t, out, "203.0.113.20:8080"); got != "203.0.113.1" {
		t.Errorf("the outside reaches the floating IP's instance as %s, want itself", got)
	}
	if got := netnstest.SeenFrom(t, out, "203.0.113.21:2222"); got != "203.0.113.1" {
		t.Errorf("through the port forwarding the instance sees %s", got)
	}
	if got := netnstest.SeenFrom(t, out, "203.0.113.21:3001"); got != "203.0.113.1" {
		t.Errorf("through the ranged port forwarding the instance sees %s", got)
	}
	if got := netnstest.SeenFrom(t, vm2, "203.0.113.20:8080"); got != "203.0.113.10" {
		t.Errorf("an instance reaching another's floating IP is seen as %s, want the gateway (hairpin)", got)
	}
	// The conntrack helper: a connection to port 21 through the router
	// is the ftp helper's, one to port 80 nobody's.
	ftp, err := netnstest.Dial(vm2, "203.0.113.1:21")
	if err != nil {
		t.Fatal(err)
	}
	defer ftp.Close()
	if _, err := netnstest.Ask(ftp); err != nil {
		t.Fatal(err)
	}
	helpers := map[uint16]string{}
	netns.DoNamed(l.ns("qrouter-r1"), func() error {
		c, err := conntrack.Dial(nil)
		if err != nil {
			return err
		}
		defer c.Close()
		flows, err := c.Dump(nil)
		for _, f := range flows {
			if f.TupleOrig.IP.DestinationAddress.String() == "203.0.113.1" {
				helpers[f.TupleOrig.Proto.DestinationPort] = f.Helper.Name
			}
		}
		return err
	})
	if helpers[21] != "ftp" || helpers[80] != "" {
		t.Errorf("conntrack helpers by port: %v, want ftp on 21 alone", helpers)
	}
	routes, _ := exec.Command("ip", "-n", l.ns("qrouter-r1"), "route").Output()
	for _, want := range []string{"default via 203.0.113.1 dev qg-gw", "10.99.0.0/16 via 10.0.0.6 dev qr-if"} {
		if !strings.Contains(string(routes), want) {
			t.Errorf("routes lack %q:\n%s", want, routes)
		}
	}

	// A connection through the port forwarding, kept open across what
	// follows.
	kept, err := netnstest.Dial(out, "203.0.113.21:2222")
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	if _, err := netnstest.Ask(kept); err != nil {
		t.Fatal(err)
	}
	handles := func() string {
		var b strings.Builder
		netns.DoNamed(l.ns("qrouter-r1"), func() error {
			c, err := nftables.New()
			if err != nil {
				return err
			}
			tb := &nftables.Table{Name: tableName, Family: nftables.TableFamilyIPv4}
			for _, ch := range []string{"prerouting", "postrouting"} {
				rs, _ := c.GetRules(tb, &nftables.Chain{Name: ch, Table: tb})
				for _, r := range rs {
					fmt.Fprintf(&b, "%s:%d ", ch, r.Handle)
				}
			}
			return nil
		})
		return b.String()
	}
	before := handles()
	// A restarted agent (no memory) ensuring the same router changes
	// no rule.
	ensure(NewKernel(l.prefix+"-", func() string { return "muon:test" }), spec)
	if after := handles(); after != before || before == "" {
		t.Errorf("a restarted agent's Ensure replaced rules: %s -> %s", before, after)
	}

	// The floating IP goes: the outside no longer reaches it, the
	// instance leaves by SNAT, the port forwarding's connection lives.
	two := spec
	two.FloatingIPs = map[string]string{"203.0.113.21": ""}
	ensure(k, two)
	netnstest.Unreachable(t, out, "203.0.113.20:8080")
	if got := netnstest.SeenFrom(t, vm1, "203.0.113.1:80"); got != "203.0.113.10" {
		t.Errorf("after its floating IP went, the instance reaches the outside as %s", got)
	}
	if _, err := netnstest.Ask(kept); err != nil {
		t.Errorf("a connection through the port forwarding broke when another floating IP went: %v", err)
	}
	if after := handles(); after != before {
		t.Errorf("a floating IP's removal replaced rules: %s -> %s", before, after)
	}
	// SNAT off: the instance without a floating IP stays in.
	three := two
	three.SNAT = false
	ensure(k, three)
	netnstest.Unreachable(t, vm2, "203.0.113.1:80")
	if _, err := netnstest.Ask(kept); err != nil {
		t.Errorf("the port forwarding's connection broke when SNAT went off: %v", err)
	}

	if err := netns.DoNamed(host, func() error { return k.Remove(ctx, "r1") }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + l.ns("qrouter-r1")); err == nil {
		t.Error("the router's namespace is left")
	}
	links, _ := exec.Command("ip", "-n", host, "-o", "link").Output()
	if strings.Contains(string(links), "tapgw") || strings.Contains(string(links), "tapif") {
		t.Errorf("the router's devices are left:\n%s", links)
	}
}
