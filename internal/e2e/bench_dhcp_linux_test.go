package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"

	"muon/internal/kernel/netns"
)

// BenchmarkDHCP measures the DHCP agent with real processes in
// namespaces (a server and one host whose agent serves L2 and DHCP), and
// a probe: a namespace on the network's bridge with a port's MAC and
// address that sends real DHCP and HTTP packets.
//
//   - lease-servable: from a port create's reply (its commit) to the
//     first OFFER for its MAC (the probe asks every millisecond).
//   - offer-at-1000/s: DISCOVER -> OFFER latency for known MACs, DISCOVERs
//     paced at 1,000 a second.
//   - metadata-at-1000/s: GET /latest/meta-data/instance-id latency,
//     requests paced at 1,000 a second over keep-alive connections.
//   - restart: the agent killed (-9) on a host serving 1,000 networks with
//     10,000 ports, and started again: from its start to its "in sync"
//     line (full state read, every namespace and socket up, every port
//     reported), and to the first OFFER on a served network. The agent
//     runs under nsenter here, so its namespaces outlive it as they do
//     on a host.
//
// Run as root, once: go test -run X -bench DHCP -benchtime 1x ./internal/e2e/
func BenchmarkDHCP(b *testing.B) {
	l := newLab(b)
	l.nsenter = true
	l.addHost(1)
	l.startServer("[quotas]\nport = -1\nnetwork = -1\nsubnet = -1\n")
	l.startAgent(1)
	l.eventually("the agent", 20*time.Second, func() error {
		if a := l.agentsAlive(); !a["host1"] {
			return fmt.Errorf("agents %v", a)
		}
		return nil
	})
	netID, subID := l.dhcpNet("bench", 60)
	pr := l.newProbe(netID, subID, "10.60.0.251")

	var macs []string
	b.Run("lease-servable", func(b *testing.B) {
		defer l.use(b)()
		var lat []time.Duration
		for range 200 * b.N {
			p := l.mustAPI("POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID}})["port"].(map[string]any)
			committed := time.Now()
			mac := p["mac_address"].(string)
			macs = append(macs, mac)
			at, ok := pr.firstOffer(mac, time.Millisecond, 5*time.Second)
			if !ok {
				b.Fatalf("no OFFER for %s in 5 s", mac)
			}
			lat = append(lat, at.Sub(committed))
		}
		report(b, "port create -> lease servable (first OFFER)", lat)
	})
	b.Run("offer-at-1000/s", func(b *testing.B) {
		defer l.use(b)()
		lat := pr.paced(3000*b.N, time.Millisecond, func(i int) string { return macs[i%len(macs)] })
		report(b, "DISCOVER -> OFFER at 1,000/s", lat)
	})
	b.Run("metadata-at-1000/s", func(b *testing.B) {
		defer l.use(b)()
		lat := pr.metadata(b, 3000*b.N, time.Millisecond)
		report(b, "metadata instance-id at 1,000/s", lat)
	})
	// The floor: the same probe against a minimal Go responder (the
	// DHCP library's OFFER for any DISCOVER, net/http's answer for any
	// GET) across a bare veth pair, in this process: what the probe,
	// the kernel and Go's scheduler on this machine cost alone.
	b.Run("floor/offer-at-1000/s", func(b *testing.B) {
		defer l.use(b)()
		fl := l.floor()
		lat := fl.paced(3000*b.N, time.Millisecond, func(i int) string { return macs[i%len(macs)] })
		report(b, "floor: DISCOVER -> OFFER at 1,000/s, minimal responder", lat)
		lat = fl.metadata(b, 3000*b.N, time.Millisecond)
		report(b, "floor: HTTP GET at 1,000/s, minimal responder", lat)
	})
	b.Run("restart/networks-1000-ports-10000", func(b *testing.B) {
		defer l.use(b)()
		began := time.Now()
		for i := 1; i < 1000; i++ {
			id, sub := l.dhcpNet(fmt.Sprintf("scale-%d", i), -i)
			items := make([]any, 10)
			for k := range items {
				items[k] = map[string]any{"network_id": id, "fixed_ips": []any{map[string]any{"subnet_id": sub}}}
			}
			l.mustAPI("POST", "/v2.0/ports", map[string]any{"ports": items})
		}
		b.Logf("1,000 networks with 10,000 ports made in %s", time.Since(began).Round(time.Millisecond))
		l.eventually("1,000 DHCP ports ACTIVE", 10*time.Minute, func() error {
			ps := l.mustAPI("GET", "/v2.0/ports?device_owner=network:dhcp&status=ACTIVE&fields=id", nil)["ports"].([]any)
			if len(ps) != 1000 {
				return fmt.Errorf("%d", len(ps))
			}
			return nil
		})
		b.Logf("served and wired after %s", time.Since(began).Round(time.Millisecond))
		inSync := regexp.MustCompile(`msg="in sync".* dhcp_networks=1000 `)
		var took, offer []time.Duration
		for range b.N {
			l.kill("agent1", syscall.SIGKILL)
			start := time.Now()
			l.startAgent(1)
			at, ok := pr.firstOffer(pr.mac, time.Millisecond, 60*time.Second)
			if ok {
				offer = append(offer, at.Sub(start))
			}
			line := l.waitLog("agent1", 5*time.Minute, inSync)
			took = append(took, time.Since(start))
			b.Logf("agent: %s", line)
		}
		p50, _ := percentiles(took)
		o50, _ := percentiles(offer)
		b.ReportMetric(ms(p50), "in-sync-ms")
		b.ReportMetric(ms(o50), "first-offer-ms")
		b.ReportMetric(0, "ns/op")
		b.Logf("agent restart, 1,000 networks and 10,000 ports: first OFFER after %s, every network served and reported after %s",
			o50.Round(time.Millisecond), p50.Round(time.Millisecond))
	})
}

func report(b *testing.B, what string, lat []time.Duration) {
	p50, p99 := percentiles(lat)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s, %d samples: p50 %s p99 %s", what, len(lat), p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
}

// dhcpNet makes a network with a DHCP subnet 10.N.0.0/24 whose pool
// leaves .251 and up out; for N below 0, the -N-th /24 of 172.16.0.0/12.
func (l *lab) dhcpNet(name string, n int) (string, string) {
	l.t.Helper()
	nw := l.mustAPI("POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": name}})["network"].(map[string]any)
	cidr := fmt.Sprintf("10.%d.0.0/24", n)
	pool := map[string]any{"start": fmt.Sprintf("10.%d.0.2", n), "end": fmt.Sprintf("10.%d.0.250", n)}
	if n < 0 {
		cidr = fmt.Sprintf("172.%d.%d.0/24", 16+(-n)>>8, (-n)&255)
		pool = nil
	}
	body := map[string]any{"network_id": nw["id"], "cidr": cidr, "ip_version": 4}
	if pool != nil {
		body["allocation_pools"] = []any{pool}
	}
	s := l.mustAPI("POST", "/v2.0/subnets", map[string]any{"subnet": body})["subnet"].(map[string]any)
	return nw["id"].(string), s["id"].(string)
}

// probe is an instance of a port on host1 (plugged as muon port plug
// does) that speaks DHCP from UDP port 68 for any MAC, and HTTP to
// metadata as its port.
type probe struct {
	ns   string
	mac  string // its port's
	conn net.PacketConn

	mu      sync.Mutex
	waiters map[uint32]chan time.Time
}

func (l *lab) newProbe(netID, subID, ip string) *probe {
	l.t.Helper()
	in := l.plug(netID, subID, ip, 1, "probe")
	l.mustAPI("PUT", "/v2.0/ports/"+in.port, map[string]any{"port": map[string]any{"device_id": "probe-instance"}})
	l.waitStatus(in.port, "ACTIVE")
	dp := l.mustAPI("GET", "/v2.0/ports?device_owner=network:dhcp&network_id="+netID, nil)["ports"].([]any)[0].(map[string]any)
	l.must("ip", "-n", in.ns, "route", "add", "169.254.169.254/32", "via", fixedIP(dp, 0))
	mac := l.mustAPI("GET", "/v2.0/ports/"+in.port, nil)["port"].(map[string]any)["mac_address"].(string)
	return l.listenProbe(in.ns, mac)
}

// listenProbe is a probe on UDP port 68 of eth0 in namespace ns, reading.
func (l *lab) listenProbe(ns, mac string) *probe {
	l.t.Helper()
	p := &probe{ns: ns, mac: mac, waiters: map[uint32]chan time.Time{}}
	err := netns.DoNamed(ns, func() error {
		var err error
		p.conn, err = broadcastUDP(68)
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { p.conn.Close() })
	go p.read()
	return p
}

func (p *probe) read() {
	buf := make([]byte, 2048)
	for {
		n, _, err := p.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		at := time.Now()
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || m.MessageType() != dhcpv4.MessageTypeOffer {
			continue
		}
		p.mu.Lock()
		ch := p.waiters[uint32(m.TransactionID[0])<<24|uint32(m.TransactionID[1])<<16|uint32(m.TransactionID[2])<<8|uint32(m.TransactionID[3])]
		p.mu.Unlock()
		if ch != nil {
			select {
			case ch <- at:
			default:
			}
		}
	}
}

// discover sends a DISCOVER for mac and tells when its OFFER comes.
func (p *probe) discover(mac string) (chan time.Time, time.Time, func()) {
	hw, _ := net.ParseMAC(mac)
	xid := rand.Uint32()
	m, _ := dhcpv4.NewDiscovery(hw, dhcpv4.WithBroadcast(true), dhcpv4.WithTransactionID(dhcpv4.TransactionID{byte(xid >> 24), byte(xid >> 16), byte(xid >> 8), byte(xid)}))
	ch := make(chan time.Time, 1)
	p.mu.Lock()
	p.waiters[xid] = ch
	p.mu.Unlock()
	sent := time.Now()
	p.conn.WriteTo(m.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: 67})
	return ch, sent, func() { p.mu.Lock(); delete(p.waiters, xid); p.mu.Unlock() }
}

// firstOffer asks for mac every period until an OFFER comes.
func (p *probe) firstOffer(mac string, every, limit time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(limit)
	var drops []func()
	defer func() {
		for _, d := range drops {
			d()
		}
	}()
	got := make(chan time.Time, 1)
	for time.Now().Before(deadline) {
		ch, _, drop := p.discover(mac)
		drops = append(drops, drop)
		go func() {
			select {
			case at := <-ch:
				select {
				case got <- at:
				default:
				}
			case <-time.After(limit):
			}
		}()
		select {
		case at := <-got:
			return at, true
		case <-time.After(every):
		}
	}
	return time.Time{}, false
}

// paced sends n DISCOVERs, one every period, and returns each latency.
func (p *probe) paced(n int, every time.Duration, mac func(int) string) []time.Duration {
	var (
		mu  sync.Mutex
		lat []time.Duration
		wg  sync.WaitGroup
	)
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
		ch, sent, drop := p.discover(mac(i))
		wg.Go(func() {
			defer drop()
			select {
			case at := <-ch:
				mu.Lock()
				lat = append(lat, at.Sub(sent))
				mu.Unlock()
			case <-time.After(2 * time.Second):
			}
		})
	}
	wg.Wait()
	return lat
}

// metadata fetches instance-id n times, one every period.
func (p *probe) metadata(b *testing.B, n int, every time.Duration) []time.Duration {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := netns.DoNamed(p.ns, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var (
		mu   sync.Mutex
		lat  []time.Duration
		wg   sync.WaitGroup
		fail int
	)
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
		wg.Go(func() {
			t0 := time.Now()
			resp, err := c.Get("http://169.254.169.254/latest/meta-data/instance-id")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != "probe-instance" {
					err = fmt.Errorf("%d %q", resp.StatusCode, body)
				}
			}
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fail++
				return
			}
			lat = append(lat, d)
		})
	}
	wg.Wait()
	if fail > 0 {
		b.Errorf("%d of %d metadata requests failed", fail, n)
	}
	return lat
}

// floor is a probe on one end of a bare veth pair whose other end a
// minimal responder serves: DHCP OFFERs on :67 and HTTP on
// 169.254.169.254:80.
func (l *lab) floor() *probe {
	l.t.Helper()
	a, z := l.addNS("fl-a"), l.addNS("fl-z")
	l.must("ip", "link", "add", "eth0", "netns", a, "type", "veth", "peer", "name", "eth0", "netns", z)
	l.must("ip", "-n", a, "addr", "add", "10.250.0.2/24", "dev", "eth0")
	l.must("ip", "-n", z, "addr", "add", "10.250.0.1/24", "dev", "eth0")
	l.must("ip", "-n", z, "addr", "add", "169.254.169.254/32", "dev", "eth0")
	l.must("ip", "-n", a, "link", "set", "eth0", "up")
	l.must("ip", "-n", z, "link", "set", "eth0", "up")
	l.must("ip", "-n", a, "route", "add", "169.254.169.254/32", "via", "10.250.0.1")
	var (
		srv net.PacketConn
		ln  net.Listener
	)
	err := netns.DoNamed(z, func() error {
		var err error
		if srv, err = broadcastUDP(67); err != nil {
			return err
		}
		ln, err = net.Listen("tcp4", "169.254.169.254:80")
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { srv.Close(); ln.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := dhcpv4.FromBytes(buf[:n])
			if err != nil {
				continue
			}
			r, err := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer),
				dhcpv4.WithYourIP(net.IPv4(10, 250, 0, 9)), dhcpv4.WithServerIP(net.IPv4(10, 250, 0, 1)))
			if err != nil {
				continue
			}
			srv.WriteTo(r.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: 68})
		}
	}()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "probe-instance") }))
	return l.listenProbe(a, "")
}

// broadcastUDP is a UDP socket on port of eth0 of the calling thread's
// namespace, broadcast allowed.
func broadcastUDP(port int) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = errors.Join(unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1),
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1),
				unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "eth0"))
		})
		return errors.Join(err, serr)
	}}
	return lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", port))
}
