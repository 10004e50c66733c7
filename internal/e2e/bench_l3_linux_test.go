package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"muon/internal/kernel/netns"
)

// BenchmarkRouter measures routers with real processes in namespaces, as
// TestRouter builds them (host1 the network node, "out" the internet on
// the external flat network):
//
//   - throughput: TCP (iperf3, one stream, 5 s, median of 3) from an
//     instance through the router to an instance on another network,
//     through SNAT to the outside, and from the outside through a
//     floating IP; each next to the same path built by hand (bridges,
//     veth pairs, a router namespace and its nft NAT rules, no Muon).
//     Instances and router are on host1, so no VXLAN is in either path.
//   - associate-to-reachable: from the PUT that associates a floating IP
//     to the first UDP echo the outside gets through it (probing every
//     millisecond, its neighbour cache flushed first: the router's
//     gratuitous ARP is what it waits for), 30 samples.
//   - restart/routers-1000: the L3 agent killed (-9) and started again
//     on a host with 1,000 routers (a gateway and an interface each):
//     from its start to its "in sync" log line, while the outside sends
//     UDP echoes every 2 ms through a floating IP of a router that did
//     not change: none may be lost.
//
// The time to program 10,000 floating IPs on one router is
// BenchmarkFloatingIPs (internal/agent/l3), without a server.
//
// Run as root, once: go test -run X -bench Router -benchtime 1x ./internal/e2e/
func BenchmarkRouter(b *testing.B) {
	l := newRouterLab(b, "[quotas]\nport = -1\nnetwork = -1\nsubnet = -1\nrouter = -1\nfloatingip = -1\n")
	// A second external subnet: room for 1,000 gateways.
	wide := l.mustAPI("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": l.extNet, "cidr": "100.64.0.0/20",
		"ip_version": 4, "gateway_ip": "100.64.0.1", "enable_dhcp": false}})["subnet"].(map[string]any)["id"].(string)
	nA, sA := l.plainNet("a", "10.1.0.0/24")
	nB, sB := l.plainNet("b", "10.2.0.0/24")
	r := l.mustAPI("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "r1",
		"external_gateway_info": map[string]any{"network_id": l.extNet,
			"external_fixed_ips": []any{map[string]any{"subnet_id": l.extSub}}}}})["router"].(map[string]any)
	rid := r["id"].(string)
	l.mustAPI("PUT", "/v2.0/routers/"+rid+"/add_router_interface", map[string]any{"subnet_id": sA})
	l.mustAPI("PUT", "/v2.0/routers/"+rid+"/add_router_interface", map[string]any{"subnet_id": sB})
	a1 := l.plug(nA, sA, "10.1.0.5", 1, "a1")
	b1 := l.plug(nB, sB, "10.2.0.5", 1, "b1")
	for _, p := range []inst{a1, b1} {
		l.waitStatus(p.port, "ACTIVE")
	}
	fip := l.mustAPI("POST", "/v2.0/floatingips", map[string]any{"floatingip": map[string]any{
		"floating_network_id": l.extNet, "subnet_id": l.extSub, "port_id": b1.port}})["floatingip"].(map[string]any)
	fipIP := fip["floating_ip_address"].(string)
	l.fipStatus(fip["id"].(string), "ACTIVE")

	b.Run("throughput", func(b *testing.B) {
		defer l.use(b)()
		hb := l.handBuilt()
		paths := []struct {
			name                 string
			srv, cli, addr       string
			hbSrv, hbCli, hbAddr string
		}{
			{"router", b1.ns, a1.ns, b1.ip, hb.b, hb.a, "10.202.0.5"},
			{"snat", l.out, a1.ns, "203.0.113.1", hb.out, hb.a, "198.51.100.1"},
			{"floating-ip", b1.ns, l.out, fipIP, hb.b, hb.out, "198.51.100.20"},
		}
		for _, p := range paths {
			// The iperf3 server binds the instance's own address; the
			// client dials the floating IP.
			bind, hbBind := p.addr, p.hbAddr
			if p.name == "floating-ip" {
				bind, hbBind = b1.ip, "10.202.0.5"
			}
			var mu, hand []float64
			for range 3 * b.N {
				mu = append(mu, l.iperfVia(p.srv, p.cli, bind, p.addr))
				hand = append(hand, l.iperfVia(p.hbSrv, p.hbCli, hbBind, p.hbAddr))
			}
			m, h := median(mu), median(hand)
			b.ReportMetric(m/1e9, p.name+"-Gbit/s")
			b.ReportMetric(h/1e9, p.name+"-hand-Gbit/s")
			b.ReportMetric(100*m/h, p.name+"-%-of-hand")
			b.Logf("TCP %s: Muon %.2f Gbit/s, hand-built %.2f Gbit/s: %.0f%%", p.name, m/1e9, h/1e9, 100*m/h)
		}
		b.ReportMetric(0, "ns/op")
	})

	b.Run("associate-to-reachable", func(b *testing.B) {
		defer l.use(b)()
		b2 := l.plug(nB, sB, "10.2.0.6", 1, "b2")
		l.waitStatus(b2.port, "ACTIVE")
		l.udpEcho(b2.ns, ":7")
		f := l.mustAPI("POST", "/v2.0/floatingips", map[string]any{"floatingip": map[string]any{
			"floating_network_id": l.extNet, "subnet_id": l.extSub}})["floatingip"].(map[string]any)
		id, addr := f["id"].(string), f["floating_ip_address"].(string)
		p := l.newEchoProbe(l.out, addr+":7", time.Millisecond)
		defer p.stop()
		var lat []time.Duration
		for range 30 * b.N {
			l.must("ip", "-n", l.out, "neigh", "flush", "all")
			p.reset()
			began := time.Now()
			l.mustAPI("PUT", "/v2.0/floatingips/"+id, map[string]any{"floatingip": map[string]any{"port_id": b2.port}})
			at, ok := p.first(5 * time.Second)
			if !ok {
				rns := l.routerNS(rid)
				nft, _ := l.run("ip", "netns", "exec", rns, "nft", "list", "ruleset")
				routes, _ := l.run("ip", "-n", rns, "route", "show", "table", "all")
				neigh, _ := l.run("ip", "-n", l.out, "neigh")
				sent, got := p.counts()
				b.Fatalf("%s never answered after its association (%d probes, %d echoes)\n%s%s%s", addr, sent, got, nft, routes, neigh)
			}
			lat = append(lat, at.Sub(began))
			l.mustAPI("PUT", "/v2.0/floatingips/"+id, map[string]any{"floatingip": map[string]any{"port_id": nil}})
			if !p.silent(100*time.Millisecond, 5*time.Second) {
				b.Fatalf("%s still answers after its disassociation", addr)
			}
		}
		report(b, "floating IP associate -> reachable from outside (gratuitous ARP included)", lat)
	})

	b.Run("restart/routers-1000", func(b *testing.B) {
		defer l.use(b)()
		const n = 1000
		parallel(8, n, func(i int) {
			_, sub := l.plainNet(fmt.Sprintf("r%d", i), fmt.Sprintf("10.%d.%d.0/24", 100+i/250, i%250))
			rt := l.mustAPI("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": fmt.Sprintf("r%d", i),
				"external_gateway_info": map[string]any{"network_id": l.extNet,
					"external_fixed_ips": []any{map[string]any{"subnet_id": wide}}}}})
			l.mustAPI("PUT", "/v2.0/routers/"+rt["router"].(map[string]any)["id"].(string)+"/add_router_interface", map[string]any{"subnet_id": sub})
		})
		l.eventually("1,001 routers in place", 10*time.Minute, func() error {
			r, err := l.api("GET", "/v2.0/ports?fields=id&status=ACTIVE&device_owner=network:router_interface", nil)
			if err != nil {
				return err
			}
			if c := len(r["ports"].([]any)); c < n+2 {
				return fmt.Errorf("%d router interfaces ACTIVE", c)
			}
			return nil
		})
		probe := l.newEchoProbe(l.out, fipIP+":8", 2*time.Millisecond)
		l.udpEcho(b1.ns, ":8")
		defer probe.stop()
		if _, ok := probe.first(5 * time.Second); !ok {
			b.Fatal("the probe's floating IP does not answer")
		}
		var took, own []time.Duration
		var lost, sent int64
		for range b.N {
			l.kill("agent1", syscall.SIGKILL)
			time.Sleep(200 * time.Millisecond)
			s0, r0 := probe.counts()
			began := time.Now()
			l.startAgent(1, "--l3-agent-mode", "legacy", "--interface-mappings", "public:ext0")
			line := l.waitLog("agent1", 2*time.Minute, regexp.MustCompile(`msg="in sync".* l3_routers=1001 `))
			took = append(took, time.Since(began))
			if m := regexp.MustCompile(`since_start=(\S+)`).FindStringSubmatch(line); m != nil {
				d, _ := time.ParseDuration(m[1])
				own = append(own, d)
			}
			time.Sleep(500 * time.Millisecond)
			s1, r1 := probe.counts()
			// Echoes in flight at either end are not lost: allow the
			// last few to come back.
			lost += max(0, (s1-s0)-(r1-r0)-2)
			sent += s1 - s0
			b.Logf("agent: %s", strings.TrimSpace(line))
		}
		p50, _ := percentiles(took)
		b.ReportMetric(ms(p50), "in-sync-ms")
		if len(own) > 0 {
			o, _ := percentiles(own)
			b.ReportMetric(ms(o), "in-agent-ms")
		}
		b.ReportMetric(float64(lost), "echoes-lost")
		b.ReportMetric(0, "ns/op")
		b.Logf("L3 agent restart with 1,001 routers -> in sync: %s; UDP echoes through an unchanged router's floating IP: %d sent, %d lost",
			p50.Round(time.Millisecond), sent, lost)
	})
}

// plainNet is a network with a subnet without DHCP.
func (l *routerLab) plainNet(name, cidr string) (string, string) {
	n := l.mustAPI("POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": name}})["network"].(map[string]any)
	s := l.mustAPI("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n["id"], "cidr": cidr,
		"ip_version": 4, "enable_dhcp": false}})["subnet"].(map[string]any)
	return n["id"].(string), s["id"].(string)
}

// handBuilt is BenchmarkRouter's path without Muon, as an operator would
// build it: a host namespace with three bridges, instances a (10.201.0.5)
// and b (10.202.0.5) on two of them, a router namespace on all three
// with forwarding and nft NAT (SNAT to 198.51.100.10, 198.51.100.20 1:1
// to b), the outside (198.51.100.1) on the third. Tenant side MTU 1450,
// as Muon's VXLAN networks have it.
type handBuilt struct{ a, b, out string }

func (l *routerLab) handBuilt() handBuilt {
	host, rtr := l.addNS("hb-host"), l.addNS("hb-r")
	hb := handBuilt{a: l.addNS("hb-a"), b: l.addNS("hb-b"), out: l.addNS("hb-o")}
	var cmds strings.Builder
	for _, br := range []string{"bra", "brb", "bre"} {
		fmt.Fprintf(&cmds, "link add %s type bridge\nlink set %s up\n", br, br)
	}
	l.batch(host, cmds.String())
	pair := func(ns, dev, br, hostDev string, mtu int, addr string) {
		l.must("ip", "link", "add", dev, "netns", ns, "mtu", fmt.Sprint(mtu), "type", "veth", "peer", "name", hostDev, "netns", host, "mtu", fmt.Sprint(mtu))
		l.must("ip", "-n", host, "link", "set", hostDev, "master", br, "up")
		l.must("ip", "-n", ns, "addr", "add", addr, "dev", dev)
		l.must("ip", "-n", ns, "link", "set", dev, "up")
	}
	pair(hb.a, "eth0", "bra", "ta", 1450, "10.201.0.5/24")
	pair(hb.b, "eth0", "brb", "tb", 1450, "10.202.0.5/24")
	pair(hb.out, "eth0", "bre", "to", 1500, "198.51.100.1/24")
	pair(rtr, "qr-a", "bra", "tra", 1450, "10.201.0.1/24")
	pair(rtr, "qr-b", "brb", "trb", 1450, "10.202.0.1/24")
	pair(rtr, "qg", "bre", "trg", 1500, "198.51.100.10/24")
	l.must("ip", "-n", rtr, "addr", "add", "198.51.100.20/32", "dev", "qg")
	l.must("ip", "-n", hb.a, "route", "add", "default", "via", "10.201.0.1")
	l.must("ip", "-n", hb.b, "route", "add", "default", "via", "10.202.0.1")
	l.must("ip", "netns", "exec", rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	nft := `table ip nat {
	chain pre { type nat hook prerouting priority dstnat; ip daddr 198.51.100.20 dnat to 10.202.0.5; }
	chain post { type nat hook postrouting priority srcnat; oifname "qg" ip saddr 10.202.0.5 snat to 198.51.100.20; oifname "qg" snat to 198.51.100.10; }
}
`
	cmd := fmt.Sprintf("echo '%s' | nft -f -", nft)
	l.must("ip", "netns", "exec", rtr, "sh", "-c", cmd)
	l.reaches(hb.a, "198.51.100.1")
	l.reaches(hb.out, "198.51.100.20")
	return hb
}

// udpEcho answers UDP datagrams on addr in namespace ns.
func (l *routerLab) udpEcho(ns, addr string) {
	l.t.Helper()
	var c net.PacketConn
	if err := netns.DoNamed(ns, func() error {
		var err error
		c, err = net.ListenPacket("udp4", addr)
		return err
	}); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(buf[:n], from)
		}
	}()
}

// echoProbe sends a numbered UDP datagram to an echo server every
// period and notes the replies.
type echoProbe struct {
	c          net.PacketConn
	to         net.Addr
	sent, got  atomic.Int64
	firstAt    atomic.Int64 // unix ns of the first reply since reset
	lastAt     atomic.Int64 // unix ns of the newest reply
	done       chan struct{}
	stopSender func()
}

func (l *routerLab) newEchoProbe(ns, addr string, period time.Duration) *echoProbe {
	l.t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		l.t.Fatal(err)
	}
	p := &echoProbe{to: net.UDPAddrFromAddrPort(ap), done: make(chan struct{})}
	if err := netns.DoNamed(ns, func() error {
		var err error
		p.c, err = net.ListenPacket("udp4", ":0")
		return err
	}); err != nil {
		l.t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := p.c.ReadFrom(buf); err != nil {
				return
			}
			now := time.Now().UnixNano()
			p.got.Add(1)
			p.firstAt.CompareAndSwap(0, now)
			p.lastAt.Store(now)
		}
	}()
	t := time.NewTicker(period)
	go func() {
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.sent.Add(1)
				p.c.WriteTo([]byte("probe"), p.to)
			}
		}
	}()
	p.stopSender = func() { close(p.done) }
	return p
}

func (p *echoProbe) stop() { p.stopSender(); p.c.Close() }

func (p *echoProbe) reset() { p.firstAt.Store(0) }

func (p *echoProbe) counts() (sent, got int64) { return p.sent.Load(), p.got.Load() }

// first waits for the first reply since reset.
func (p *echoProbe) first(limit time.Duration) (time.Time, bool) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
		if at := p.firstAt.Load(); at != 0 {
			return time.Unix(0, at), true
		}
	}
	return time.Time{}, false
}

// silent waits until no reply came for quiet.
func (p *echoProbe) silent(quiet, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if time.Since(time.Unix(0, p.lastAt.Load())) > quiet {
			return true
		}
	}
	return false
}
