package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"muon/internal/agentapi"
	"muon/internal/kernel/netns/netnstest"
)

// routerLab is the book's chapter 10: host1 the network node (L3 agent,
// its ext0 on the external flat network "public"), host2 and host3
// compute hosts, and "out" playing the internet at 203.0.113.1 on the
// external network's wire.
type routerLab struct {
	*lab
	out            string
	extNet, extSub string
}

// newRouterLab builds the lab and starts it; extra is appended to the
// server's configuration.
func newRouterLab(t testing.TB, extra ...string) *routerLab {
	l := &routerLab{lab: newLab(t)}
	for i := 1; i <= 3; i++ {
		l.addHost(i)
	}
	l.out = l.addNS("out")
	h1 := l.ns("h1")
	l.must("ip", "link", "add", "ext0", "netns", h1, "type", "veth", "peer", "name", "eth0", "netns", l.out)
	l.must("ip", "-n", l.out, "addr", "add", "203.0.113.1/24", "dev", "eth0")
	l.must("ip", "-n", l.out, "link", "set", "eth0", "up")
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, h := range []string{"h1", "h2", "h3"} {
			links, _ := l.run("ip", "-n", l.ns(h), "-br", "link")
			t.Logf("==== %s\n%s", h, links)
		}
		names, _ := filepath.Glob("/run/netns/" + l.ns("h1") + "-qrouter-*")
		for _, n := range names {
			ns := filepath.Base(n)
			addrs, _ := l.run("ip", "-n", ns, "-br", "addr")
			routes, _ := l.run("ip", "-n", ns, "route")
			nft, _ := l.run("ip", "netns", "exec", ns, "nft", "list", "ruleset")
			t.Logf("==== %s\n%s%s%s", ns, addrs, routes, nft)
		}
	})
	// The routers' namespaces must be the test's to look into.
	l.nsenter = true
	l.startServer(extra...)
	l.startAgent(1, "--l3-agent-mode", "legacy", "--interface-mappings", "public:ext0")
	l.startAgent(2)
	l.startAgent(3)
	l.eventually("agents alive", 20*time.Second, func() error {
		a := l.mustAPI("GET", "/v2.0/agents?agent_type=L3+agent", nil)["agents"].([]any)
		if alive := l.agentsAlive(); len(a) != 1 || !alive["host1"] || !alive["host2"] || !alive["host3"] {
			return fmt.Errorf("agents %v, L3 agents %v", alive, a)
		}
		return nil
	})
	n := l.mustAPI("POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "public", "router:external": true,
		"provider:network_type": "flat", "provider:physical_network": "public"}})["network"].(map[string]any)
	s := l.mustAPI("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n["id"], "cidr": "203.0.113.0/24",
		"ip_version": 4, "gateway_ip": "203.0.113.1", "enable_dhcp": false,
		"allocation_pools": []any{map[string]any{"start": "203.0.113.10", "end": "203.0.113.99"}}}})["subnet"].(map[string]any)
	l.extNet, l.extSub = n["id"].(string), s["id"].(string)
	return l
}

// routerNS is the router's namespace on host1.
func (l *routerLab) routerNS(id string) string {
	return l.ns("h1") + "-" + agentapi.RouterNamespace(id)
}

func (l *routerLab) seen(from, addr string) string {
	l.t.Helper()
	var got string
	l.eventually(from+" asking "+addr, 20*time.Second, func() error {
		var err error
		got, err = netnstest.Seen(from, addr)
		return err
	})
	return got
}

func (l *routerLab) unseen(from, addr string) {
	l.t.Helper()
	l.eventually(from+" not reaching "+addr, 20*time.Second, func() error {
		if _, err := netnstest.Seen(from, addr); err == nil {
			return fmt.Errorf("%s reaches %s", from, addr)
		}
		return nil
	})
}

func (l *routerLab) fipStatus(id, want string) {
	l.t.Helper()
	l.eventually("floating IP "+id+" "+want, 20*time.Second, func() error {
		f := l.mustAPI("GET", "/v2.0/floatingips/"+id, nil)["floatingip"].(map[string]any)
		if f["status"] != want {
			return fmt.Errorf("status %v", f["status"])
		}
		return nil
	})
}

// TestRouter: the book's topology across hosts. Instances on two tenant
// networks on different hosts reach each other through the router, the
// outside through SNAT (seen as the router's gateway address), and are
// reached from the outside on a floating IP and through a port
// forwarding; an extra route steers; the agent killed with -9 leaves
// flows working and, restarted, converges without disturbing them;
// removing the floating IP, an interface, the gateway and the router cut
// exactly what they carried and leave nothing behind.
func TestRouter(t *testing.T) {
	l := newRouterLab(t)
	nA, sA := l.network("a", "10.1.0.0/24")
	nB, sB := l.network("b", "10.2.0.0/24")
	r := l.mustAPI("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "r1",
		"external_gateway_info": map[string]any{"network_id": l.extNet}}})["router"].(map[string]any)
	rid := r["id"].(string)
	gwIP := r["external_gateway_info"].(map[string]any)["external_fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string)
	ifA := l.mustAPI("PUT", "/v2.0/routers/"+rid+"/add_router_interface", map[string]any{"subnet_id": sA})
	ifB := l.mustAPI("PUT", "/v2.0/routers/"+rid+"/add_router_interface", map[string]any{"subnet_id": sB})
	agents := l.mustAPI("GET", "/v2.0/routers/"+rid+"/l3-agents", nil)["agents"].([]any)
	if len(agents) != 1 || agents[0].(map[string]any)["host"] != "host1" {
		t.Fatalf("the router's L3 agents: %v", agents)
	}
	a1 := l.plug(nA, sA, "10.1.0.5", 2, "a1")
	b1 := l.plug(nB, sB, "10.2.0.5", 3, "b1")
	b2 := l.plug(nB, sB, "10.2.0.6", 3, "b2")
	for _, p := range []inst{a1, b1, b2} {
		l.waitStatus(p.port, "ACTIVE")
	}
	gw := l.mustAPI("GET", "/v2.0/ports?device_owner=network:router_gateway&device_id="+rid, nil)["ports"].([]any)[0].(map[string]any)
	for _, p := range []string{ifA["port_id"].(string), ifB["port_id"].(string), gw["id"].(string)} {
		l.waitStatus(p, "ACTIVE")
	}
	netnstest.PeerServer(t, l.out, "203.0.113.1:80")
	for _, in := range []inst{a1, b1} {
		netnstest.PeerServer(t, in.ns, ":8080")
		netnstest.PeerServer(t, in.ns, ":22")
	}

	step(t, "through-the-router", func() {
		l.reaches(a1.ns, b1.ip)
		l.reaches(b1.ns, a1.ip)
		l.reaches(a1.ns, "10.1.0.1")
		if got := l.seen(a1.ns, b1.ip+":8080"); got != a1.ip {
			t.Errorf("b1 sees a1 as %s, want %s (routed, not NATed)", got, a1.ip)
		}
	})
	var s6 []string
	step(t, "ipv6-router-advertisements", func() {
		// SLAAC subnets on both networks, on the router: the instances
		// take their addresses and default route from its advertisements
		// and reach each other through it.
		for _, n := range []struct{ net, cidr string }{{nA, "2001:db8:a::/64"}, {nB, "2001:db8:b::/64"}} {
			id := l.mustAPI("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n.net, "cidr": n.cidr,
				"ip_version": 6, "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}})["subnet"].(map[string]any)["id"].(string)
			l.mustAPI("PUT", "/v2.0/routers/"+rid+"/add_router_interface", map[string]any{"subnet_id": id})
			s6 = append(s6, id)
		}
		slaac := func(in inst, prefix string) string {
			var addr string
			l.eventually(in.ns+" taking the router's advertisement", 20*time.Second, func() error {
				out, _ := l.run("ip", "-n", in.ns, "-6", "route", "show", "default")
				if !strings.Contains(out, "proto ra") || !strings.Contains(out, "fe80::") {
					return fmt.Errorf("IPv6 default route: %q", out)
				}
				addrs, _ := l.run("ip", "-n", in.ns, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
				for _, f := range strings.Fields(addrs) {
					if strings.HasPrefix(f, prefix) {
						addr, _, _ = strings.Cut(f, "/")
						return nil
					}
				}
				return fmt.Errorf("no SLAAC address: %s", addrs)
			})
			return addr
		}
		slaac(a1, "2001:db8:a:")
		b1v6 := slaac(b1, "2001:db8:b:")
		l.reaches(a1.ns, b1v6)
	})
	step(t, "snat", func() {
		if got := l.seen(a1.ns, "203.0.113.1:80"); got != gwIP {
			t.Errorf("the outside sees a1 as %s, want the router's gateway %s", got, gwIP)
		}
	})
	var fipID, fipIP string
	step(t, "floating-ip", func() {
		f := l.mustAPI("POST", "/v2.0/floatingips", map[string]any{"floatingip": map[string]any{
			"floating_network_id": l.extNet, "port_id": b1.port}})["floatingip"].(map[string]any)
		fipID, fipIP = f["id"].(string), f["floating_ip_address"].(string)
		if got := l.seen(l.out, fipIP+":8080"); got != "203.0.113.1" {
			t.Errorf("b1 sees the outside as %s through its floating IP", got)
		}
		if got := l.seen(b1.ns, "203.0.113.1:80"); got != fipIP {
			t.Errorf("the outside sees b1 as %s, want its floating IP %s", got, fipIP)
		}
		l.fipStatus(fipID, "ACTIVE")
	})
	var pfFIP, pfIP string
	step(t, "port-forwarding", func() {
		f := l.mustAPI("POST", "/v2.0/floatingips", map[string]any{"floatingip": map[string]any{
			"floating_network_id": l.extNet}})["floatingip"].(map[string]any)
		pfFIP, pfIP = f["id"].(string), f["floating_ip_address"].(string)
		l.mustAPI("POST", "/v2.0/floatingips/"+pfFIP+"/port_forwardings", map[string]any{"port_forwarding": map[string]any{
			"protocol": "tcp", "internal_port_id": a1.port, "internal_ip_address": a1.ip, "internal_port": 22, "external_port": 2222}})
		if got := l.seen(l.out, pfIP+":2222"); got != "203.0.113.1" {
			t.Errorf("a1 sees the outside as %s through the port forwarding", got)
		}
		l.unseen(l.out, pfIP+":8080") // only the forwarded port
	})
	step(t, "conntrack-helper", func() {
		l.mustAPI("POST", "/v2.0/routers/"+rid+"/conntrack_helpers", map[string]any{"conntrack_helper": map[string]any{
			"protocol": "tcp", "port": 21, "helper": "ftp"}})
		l.eventually("the router's ftp helper", 20*time.Second, func() error {
			out, _ := l.run("ip", "netns", "exec", l.routerNS(rid), "nft", "list", "table", "ip", "muon")
			if !strings.Contains(out, `type "ftp" protocol tcp`) || !strings.Contains(out, `ct helper set "ftp-tcp"`) {
				return fmt.Errorf("no ftp helper in:\n%s", out)
			}
			return nil
		})
	})
	step(t, "extra-route", func() {
		// b2 carries 10.99.0.1: the router reaches it through b2 only by
		// the extra route.
		l.must("ip", "-n", b2.ns, "addr", "add", "10.99.0.1/32", "dev", "lo")
		l.cutOff(a1.ns, "10.99.0.1")
		l.mustAPI("PUT", "/v2.0/routers/"+rid+"/add_extraroutes", map[string]any{"router": map[string]any{
			"routes": []any{map[string]any{"destination": "10.99.0.0/16", "nexthop": b2.ip}}}})
		l.reaches(a1.ns, "10.99.0.1")
	})

	step(t, "agent-killed", func() {
		kept, err := netnstest.Dial(l.out, fipIP+":8080")
		if err != nil {
			t.Fatal(err)
		}
		defer kept.Close()
		if _, err := netnstest.Ask(kept); err != nil {
			t.Fatal(err)
		}
		l.kill("agent1", syscall.SIGKILL)
		if _, err := netnstest.Ask(kept); err != nil {
			t.Errorf("a flow through the floating IP broke when the agent died: %v", err)
		}
		if err := l.ping(a1.ns, b1.ip); err != nil {
			t.Errorf("routing stopped with the agent: %v", err)
		}
		if got := l.seen(a1.ns, "203.0.113.1:80"); got != gwIP {
			t.Errorf("SNAT stopped with the agent: seen as %s", got)
		}
		l.startAgent(1, "--l3-agent-mode", "legacy", "--interface-mappings", "public:ext0")
		l.eventually("the agent in sync again", 30*time.Second, func() error {
			b, _ := os.ReadFile(filepath.Join(l.dir, "agent1.log"))
			if !strings.Contains(string(b), "in sync") {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		if _, err := netnstest.Ask(kept); err != nil {
			t.Errorf("a flow through the floating IP broke when the agent came back: %v", err)
		}
		if got := l.seen(l.out, pfIP+":2222"); got != "203.0.113.1" {
			t.Errorf("after the restart, the port forwarding: %s", got)
		}
	})

	step(t, "remove-floating-ip", func() {
		l.mustAPI("DELETE", "/v2.0/floatingips/"+fipID, nil)
		l.unseen(l.out, fipIP+":8080")
		if got := l.seen(b1.ns, "203.0.113.1:80"); got != gwIP {
			t.Errorf("without its floating IP, b1 is seen as %s, want the gateway", got)
		}
		if got := l.seen(l.out, pfIP+":2222"); got != "203.0.113.1" {
			t.Errorf("the other floating IP's forwarding went too: %s", got)
		}
	})
	step(t, "remove-interface", func() {
		// The extra route's next hop is on b: it goes first.
		l.mustAPI("PUT", "/v2.0/routers/"+rid, map[string]any{"router": map[string]any{"routes": []any{}}})
		l.cutOff(a1.ns, "10.99.0.1")
		l.mustAPI("PUT", "/v2.0/routers/"+rid+"/remove_router_interface", map[string]any{"subnet_id": sB})
		l.cutOff(a1.ns, b1.ip)
		l.reaches(a1.ns, "10.1.0.1")
	})
	step(t, "remove-gateway", func() {
		l.mustAPI("DELETE", "/v2.0/floatingips/"+pfFIP, nil)
		l.mustAPI("PUT", "/v2.0/routers/"+rid, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{}}})
		l.unseen(a1.ns, "203.0.113.1:80")
		l.eventually("no NAT table left", 20*time.Second, func() error {
			if out, _ := l.run("ip", "netns", "exec", l.routerNS(rid), "nft", "list", "tables"); strings.Contains(out, "muon") {
				return fmt.Errorf("tables: %s", out)
			}
			return nil
		})
	})
	step(t, "remove-router", func() {
		l.mustAPI("PUT", "/v2.0/routers/"+rid+"/remove_router_interface", map[string]any{"subnet_id": sA})
		for _, id := range s6 {
			l.api("PUT", "/v2.0/routers/"+rid+"/remove_router_interface", map[string]any{"subnet_id": id})
		}
		l.mustAPI("DELETE", "/v2.0/routers/"+rid, nil)
		l.eventually("the router's namespace gone", 20*time.Second, func() error {
			if _, err := os.Stat("/run/netns/" + l.routerNS(rid)); err == nil {
				return fmt.Errorf("%s is left", l.routerNS(rid))
			}
			return nil
		})
		for _, p := range []string{ifA["port_id"].(string), ifB["port_id"].(string), gw["id"].(string)} {
			if links := l.links(l.ns("h1")); strings.Contains(links, agentapi.TapName(p)) {
				t.Errorf("the router's %s is left on host1:\n%s", agentapi.TapName(p), links)
			}
		}
	})
}
