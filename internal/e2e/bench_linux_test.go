package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"muon/internal/agentapi"
)

// BenchmarkAgent measures the data plane with real processes in
// namespaces, as TestL2AcrossHosts builds them (a server, two hosts with
// an agent each, on an underlay):
//
//   - bind-to-active/ports-N: the time from the PUT that sets a port's
//     binding:host_id (its tap already on the host, as `muon port plug`
//     leaves it) to the port read back ACTIVE, the agent having wired the
//     tap and reported it. N ports on one host, bound one after another,
//     each once the one before is ACTIVE (so the k-th finds k-1 wired).
//   - resync/ports-1000: an agent restarted on a host with 1,000 wired,
//     ACTIVE ports: from starting its process to its "in sync" log line
//     (full state read, kernel converged, every port reported up).
//   - throughput: TCP (iperf3, one stream, 5 s, median of 3) from an instance on one
//     host to an instance on the other across the VXLAN network, and the
//     same between two namespaces on a bare veth pair.
//
// Run as root, once: go test -run X -bench Agent -benchtime 1x ./internal/e2e/
func BenchmarkAgent(b *testing.B) {
	l := newLab(b, "iperf3")
	l.addHost(1)
	l.addHost(2)
	l.startServer("[quotas]\nport = -1\nnetwork = -1\nsubnet = -1\n")
	l.startAgent(1)
	l.startAgent(2)
	l.eventually("two agents alive", 20*time.Second, func() error {
		if a := l.agentsAlive(); !a["host1"] || !a["host2"] {
			return fmt.Errorf("agents %v", a)
		}
		return nil
	})
	vms := l.addNS("vms") // the far ends of the benchmark's taps
	nets := 0
	newNet := func(name string) (string, string) {
		nets++
		return l.network(name, fmt.Sprintf("10.%d.0.0/20", 100+nets))
	}

	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("bind-to-active/ports-%d", n), func(b *testing.B) {
			defer l.use(b)()
			rounds := max(1, 20/n) // 20 samples at least
			var lat []time.Duration
			for range b.N * rounds {
				netID, subnetID := newNet(fmt.Sprintf("bind-%d", n))
				ports := l.benchPorts(netID, subnetID, n, vms)
				for _, p := range ports {
					since := l.feedLast()
					began := time.Now()
					l.mustAPI("PUT", "/v2.0/ports/"+p, map[string]any{"port": map[string]any{"binding:host_id": "host1"}})
					l.waitActive(p, since)
					lat = append(lat, time.Since(began))
				}
				l.dropPorts(netID, ports)
			}
			p50, p99 := percentiles(lat)
			b.ReportMetric(ms(p50), "p50-ms")
			b.ReportMetric(ms(p99), "p99-ms")
			b.ReportMetric(0, "ns/op")
			b.Logf("binding -> ACTIVE, %d port(s) on one host, %d samples: p50 %s p99 %s", n, len(lat), p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond))
		})
	}

	b.Run("resync/ports-1000", func(b *testing.B) {
		defer l.use(b)()
		const n = 1000
		netID, subnetID := newNet("resync")
		ports := l.benchPorts(netID, subnetID, n, vms)
		parallel(8, len(ports), func(i int) {
			l.mustAPI("PUT", "/v2.0/ports/"+ports[i], map[string]any{"port": map[string]any{"binding:host_id": "host1"}})
		})
		l.eventually("1,000 ports ACTIVE", 60*time.Second, func() error {
			if c := l.countActive(netID); c != n {
				return fmt.Errorf("%d ACTIVE", c)
			}
			return nil
		})
		var took, own []time.Duration
		for range b.N {
			l.kill("agent1", syscall.SIGTERM)
			began := time.Now()
			l.startAgent(1)
			line := l.waitLog("agent1", 30*time.Second, regexp.MustCompile(`msg="in sync".* ports=1000 up=1000 `))
			took = append(took, time.Since(began))
			if m := regexp.MustCompile(`since_start=(\S+)`).FindStringSubmatch(line); m != nil {
				d, _ := time.ParseDuration(m[1])
				own = append(own, d)
			}
			b.Logf("agent: %s", strings.TrimSpace(line))
		}
		p50, _ := percentiles(took)
		b.ReportMetric(ms(p50), "resync-ms")
		b.ReportMetric(0, "ns/op")
		if len(own) > 0 {
			o, _ := percentiles(own)
			b.ReportMetric(ms(o), "in-agent-ms")
		}
		b.Logf("agent restart -> in sync with 1,000 ports: %s (%d runs, median)", p50.Round(time.Millisecond), len(took))
		l.dropPorts(netID, ports)
	})

	b.Run("throughput", func(b *testing.B) {
		defer l.use(b)()
		netID, subnetID := newNet("tput")
		srv := l.plug(netID, subnetID, fmt.Sprintf("10.%d.0.11", 100+nets), 1, "tp-srv")
		cli := l.plug(netID, subnetID, fmt.Sprintf("10.%d.0.12", 100+nets), 2, "tp-cli")
		l.waitStatus(srv.port, "ACTIVE")
		l.waitStatus(cli.port, "ACTIVE")
		l.reaches(cli.ns, srv.ip)
		ba, bb := l.addNS("bare-a"), l.addNS("bare-b")
		l.must("ip", "-n", ba, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", bb)
		l.must("ip", "-n", ba, "addr", "add", "10.99.0.1/24", "dev", "eth0")
		l.must("ip", "-n", bb, "addr", "add", "10.99.0.2/24", "dev", "eth0")
		l.must("ip", "-n", ba, "link", "set", "eth0", "up")
		l.must("ip", "-n", bb, "link", "set", "eth0", "up")
		l.reaches(bb, "10.99.0.1")
		var vx, bare []float64
		for range 3 * b.N { // alternating, medians: veth pairs vary run to run
			vx = append(vx, l.iperf(srv.ns, cli.ns, srv.ip))
			bare = append(bare, l.iperf(ba, bb, "10.99.0.1"))
		}
		v, r := median(vx), median(bare)
		b.ReportMetric(v/1e9, "vxlan-Gbit/s")
		b.ReportMetric(r/1e9, "veth-Gbit/s")
		b.ReportMetric(100*v/r, "%-of-bare")
		b.ReportMetric(0, "ns/op")
		b.Logf("TCP instance to instance across VXLAN (MTU 1450): %.2f Gbit/s; bare veth pair (MTU 1500): %.2f Gbit/s; %.0f%%", v/1e9, r/1e9, 100*v/r)
	})
}

// use points the lab's failures and cleanups at a sub-benchmark, until
// the function it returns puts the parent back.
func (l *lab) use(tb testing.TB) func() {
	old := l.t
	l.t = tb
	return func() { l.t = old }
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	s := slices.Sorted(slices.Values(d))
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)]
}

func median(x []float64) float64 {
	s := slices.Sorted(slices.Values(x))
	return s[len(s)/2]
}

// parallel runs f(0..n-1) from w goroutines.
func parallel(w, n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range w {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// benchPorts makes n ports on a network and their taps on host1 (veth
// pairs whose far ends wait in namespace vms), not yet bound.
func (l *lab) benchPorts(netID, subnetID string, n int, vms string) []string {
	l.t.Helper()
	var ids []string
	for len(ids) < n {
		k := min(500, n-len(ids))
		items := make([]any, k)
		for i := range items {
			items[i] = map[string]any{"network_id": netID, "fixed_ips": []any{map[string]any{"subnet_id": subnetID}}}
		}
		for _, p := range l.mustAPI("POST", "/v2.0/ports", map[string]any{"ports": items})["ports"].([]any) {
			ids = append(ids, p.(map[string]any)["id"].(string))
		}
	}
	var batch strings.Builder
	for _, id := range ids {
		tap := agentapi.TapName(id)
		fmt.Fprintf(&batch, "link add %s type veth peer name v%s netns %s\nlink set %s up\n", tap, tap[3:], vms, tap)
	}
	l.batch(l.ns("h1"), batch.String())
	return ids
}

// dropPorts deletes the ports and their taps.
func (l *lab) dropPorts(netID string, ids []string) {
	l.t.Helper()
	parallel(8, len(ids), func(i int) { l.mustAPI("DELETE", "/v2.0/ports/"+ids[i], nil) })
	var batch strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&batch, "link del %s\n", agentapi.TapName(id))
	}
	l.batch(l.ns("h1"), batch.String())
	l.mustAPI("DELETE", "/v2.0/networks/"+netID, nil)
}

func (l *lab) batch(ns, cmds string) {
	l.t.Helper()
	cmd := exec.Command("ip", "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(cmds)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("ip -batch: %v\n%s", err, out)
	}
}

// feedLast is the change feed's newest number.
func (l *lab) feedLast() int64 {
	l.t.Helper()
	return int64(l.mustAPI("GET", "/muon/v1/changes?since=0&limit=1", nil)["last"].(float64))
}

// waitActive follows the change feed after since until the port reads
// ACTIVE.
func (l *lab) waitActive(port string, since int64) {
	l.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		r := l.mustAPI("GET", fmt.Sprintf("/muon/v1/changes?since=%d&wait=10&limit=10000", since), nil)
		mine := false
		for _, c := range r["changes"].([]any) {
			c := c.(map[string]any)
			since = max(since, int64(c["seq"].(float64)))
			mine = mine || c["kind"] == "port" && c["id"] == port
		}
		if mine && l.status(port) == "ACTIVE" {
			return
		}
	}
	l.t.Fatalf("port %s not ACTIVE after 30 s", port)
}

func (l *lab) countActive(netID string) int {
	r, err := l.api("GET", "/v2.0/ports?fields=id&status=ACTIVE&network_id="+netID, nil)
	if err != nil {
		return -1
	}
	return len(r["ports"].([]any))
}

// waitLog waits for a line matching re in a process's log and returns it.
func (l *lab) waitLog(name string, d time.Duration, re *regexp.Regexp) string {
	l.t.Helper()
	path := filepath.Join(l.dir, name+".log")
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b, _ := os.ReadFile(path)
		if loc := re.FindIndex(b); loc != nil {
			start := strings.LastIndexByte(string(b[:loc[0]]), '\n') + 1
			end := loc[1] + strings.IndexByte(string(b[loc[1]:])+"\n", '\n')
			return string(b[start:end])
		}
	}
	l.t.Fatalf("no %q in %s's log after %s", re, name, d)
	return ""
}

// iperf measures TCP throughput (bits/s) from namespace cli to an
// iperf3 server at addr in namespace srv.
func (l *lab) iperf(srv, cli, addr string) float64 { return l.iperfVia(srv, cli, addr, addr) }

// iperfVia is iperf with the server bound to bind and the client dialing
// addr (a floating IP in front of bind).
func (l *lab) iperfVia(srv, cli, bind, addr string) float64 {
	l.t.Helper()
	s := exec.Command("ip", "netns", "exec", srv, "iperf3", "-s", "-1", "-B", bind)
	if err := s.Start(); err != nil {
		l.t.Fatal(err)
	}
	defer func() { s.Process.Kill(); s.Wait() }()
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	// Until the server listens, the client fails (with -J, in its JSON).
	l.eventually("iperf3 to "+addr, 20*time.Second, func() error {
		out, err := l.run("ip", "netns", "exec", cli, "iperf3", "-c", addr, "-t", "5", "-O", "1", "-J")
		r.Error = ""
		if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
			return fmt.Errorf("%v %v: %.300s", err, jerr, out)
		}
		if r.Error != "" || r.End.SumReceived.BitsPerSecond == 0 {
			return fmt.Errorf("iperf3: %v %s", err, r.Error)
		}
		return nil
	})
	return r.End.SumReceived.BitsPerSecond
}
