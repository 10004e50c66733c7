package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"muon/internal/agentapi"
	"muon/internal/kernel/netns"
	"muon/internal/kernel/netns/netnstest"
)

// lab is a few hosts as network namespaces on an underlay bridge (in a
// namespace of its own, where the server listens), with muon processes.
type lab struct {
	t      testing.TB
	bin    string
	dir    string
	prefix string
	ul     string // underlay namespace
	url    string
	http   *http.Client

	mu    sync.Mutex
	procs map[string]*exec.Cmd
	// nsenter runs processes with nsenter --net instead of ip netns
	// exec (which gives each a mount namespace of its own).
	nsenter bool
}

func needRoot(t testing.TB, tools ...string) {
	t.Helper()
	netnstest.NeedRoot(t)
	for _, c := range append([]string{"ip", "ping"}, tools...) {
		if _, err := exec.LookPath(c); err != nil {
			if os.Getenv("MUON_E2E") == "1" {
				t.Fatalf("%s missing (scripts/test-deps installs it)", c)
			}
			t.Skipf("%s missing (scripts/test-deps installs it)", c)
		}
	}
}

func (l *lab) run(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

func (l *lab) must(args ...string) string {
	l.t.Helper()
	out, err := l.run(args...)
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (l *lab) ns(name string) string { return l.prefix + "-" + name }

// addNS makes a namespace, deleted (with every link in it) at cleanup.
func (l *lab) addNS(name string) string {
	l.t.Helper()
	n := l.ns(name)
	l.must("ip", "netns", "add", n)
	l.t.Cleanup(func() { l.run("ip", "netns", "del", n) })
	l.must("ip", "-n", n, "link", "set", "lo", "up")
	return n
}

func newLab(t testing.TB, tools ...string) *lab {
	needRoot(t, tools...)
	b := make([]byte, 3)
	rand.Read(b)
	l := &lab{t: t, dir: t.TempDir(), prefix: "mu" + hex.EncodeToString(b), procs: map[string]*exec.Cmd{}}
	l.bin = filepath.Join(l.dir, "muon")
	if out, err := exec.Command("go", "build", "-o", l.bin, "muon/cmd/muon").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// Last: the names agents made for their namespaces (gone with the
	// agents' mount namespaces, the names stay).
	t.Cleanup(func() {
		left, _ := filepath.Glob("/run/netns/" + l.prefix + "-*")
		for _, f := range left {
			l.run("ip", "netns", "del", filepath.Base(f))
			os.Remove(f)
		}
	})
	t.Cleanup(l.stopAll)
	l.ul = l.addNS("ul")
	l.must("ip", "-n", l.ul, "link", "add", "br0", "type", "bridge")
	l.must("ip", "-n", l.ul, "addr", "add", "192.168.100.254/24", "dev", "br0")
	l.must("ip", "-n", l.ul, "link", "set", "br0", "up")
	l.url = "http://192.168.100.254:9696"
	// The test reaches the server through sockets made in the underlay.
	l.http = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: l.dialUnderlay}}
	return l
}

func (l *lab) dialUnderlay(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := netns.DoNamed(l.ul, func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// addHost makes host i: a namespace with eth0 at 192.168.100.i on the
// underlay.
func (l *lab) addHost(i int) string {
	h := l.addNS(fmt.Sprintf("h%d", i))
	up := fmt.Sprintf("%s-u%d", l.prefix, i)
	l.must("ip", "link", "add", "eth0", "netns", h, "type", "veth", "peer", "name", up, "netns", l.ul)
	l.must("ip", "-n", l.ul, "link", "set", up, "master", "br0", "up")
	l.must("ip", "-n", h, "addr", "add", fmt.Sprintf("192.168.100.%d/24", i), "dev", "eth0")
	l.must("ip", "-n", h, "link", "set", "eth0", "up")
	return h
}

// start runs a muon process (in namespace ns) under name, logging to a
// file shown if the test fails.
func (l *lab) start(name, ns string, args ...string) {
	l.t.Helper()
	logf, err := os.Create(filepath.Join(l.dir, name+".log"))
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, l.bin}, args...)...)
	if l.nsenter {
		// In the namespace's network only: what it mounts (the agents'
		// namespaces) outlives it, as on a host.
		cmd = exec.Command("nsenter", append([]string{"--net=/run/netns/" + ns, l.bin}, args...)...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	logf.Close()
	l.mu.Lock()
	l.procs[name] = cmd
	l.mu.Unlock()
}

// kill sends sig to a process and reaps it.
func (l *lab) kill(name string, sig syscall.Signal) {
	l.mu.Lock()
	cmd := l.procs[name]
	delete(l.procs, name)
	l.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func (l *lab) stopAll() {
	l.mu.Lock()
	var names []string
	for n := range l.procs {
		names = append(names, n)
	}
	l.mu.Unlock()
	for _, n := range names {
		l.kill(n, syscall.SIGKILL)
	}
	if l.t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(l.dir, "*.log"))
		for _, f := range logs {
			b, _ := os.ReadFile(f)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			l.t.Logf("==== %s\n%s", filepath.Base(f), b)
		}
	}
}

// startServer runs the server; extra is appended to its configuration.
func (l *lab) startServer(extra ...string) {
	l.t.Helper()
	cfg := filepath.Join(l.dir, "muon.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`host = "192.168.100.254"
port = 9696
auth = "noauth"
database = %q
agent_report_interval = 1
agent_down_time = 3
[ml2]
vni_ranges = "1001:3000"
`, filepath.Join(l.dir, "muon.db"))+strings.Join(extra, "\n")), 0o600)
	l.start("server", l.ul, "server", "--config", cfg)
	l.eventually("the server answers", 20*time.Second, func() error {
		_, err := l.api("GET", "/v2.0/networks", nil)
		return err
	})
}

// startAgent runs host i's agent; its namespaces' names start with the
// host's (several agents share this machine's /run/netns).
func (l *lab) startAgent(i int, extra ...string) {
	l.start(fmt.Sprintf("agent%d", i), l.ns(fmt.Sprintf("h%d", i)), append([]string{"agent", "--server", l.url, "--host", fmt.Sprintf("host%d", i),
		"--tunnel-ip", fmt.Sprintf("192.168.100.%d", i), "--report-interval", "1", "--netns-prefix", l.ns(fmt.Sprintf("h%d", i)) + "-", "-v"}, extra...)...)
}

func (l *lab) api(method, path string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, l.url+path, rd)
	req.Header.Set("X-Project-Id", "demo")
	req.Header.Set("X-Roles", "admin")
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (l *lab) mustAPI(method, path string, body any) map[string]any {
	l.t.Helper()
	out, err := l.api(method, path, body)
	if err != nil {
		l.t.Fatal(err)
	}
	return out
}

func (l *lab) eventually(what string, d time.Duration, f func() error) {
	l.t.Helper()
	var err error
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = f(); err == nil {
			return
		}
	}
	l.t.Fatalf("timed out waiting for %s: %v", what, err)
}

func (l *lab) ping(from, addr string) error {
	out, err := l.run("ip", "netns", "exec", from, "ping", "-c1", "-W1", addr)
	if err != nil {
		return fmt.Errorf("%s -> %s: %v %s", from, addr, err, strings.TrimSpace(out))
	}
	return nil
}

func (l *lab) reaches(from, addr string) {
	l.t.Helper()
	l.eventually(from+" reaching "+addr, 20*time.Second, func() error { return l.ping(from, addr) })
}

func (l *lab) cutOff(from, addr string) {
	l.t.Helper()
	l.eventually(from+" not reaching "+addr, 20*time.Second, func() error {
		for range 2 {
			if l.ping(from, addr) == nil {
				return fmt.Errorf("%s reaches %s", from, addr)
			}
		}
		return nil
	})
}

type inst struct {
	port, ip, host, ns string
}

func (l *lab) network(name, cidr string) (netID, subnetID string) {
	n := l.mustAPI("POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": name}})["network"].(map[string]any)
	s := l.mustAPI("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n["id"], "cidr": cidr, "ip_version": 4}})["subnet"].(map[string]any)
	return n["id"].(string), s["id"].(string)
}

// plug makes a port with address ip on host i and plugs an instance
// for it there, as Nova would.
func (l *lab) plug(netID, subnetID, ip string, i int, name string) inst {
	l.t.Helper()
	p := l.mustAPI("POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID,
		"fixed_ips": []any{map[string]any{"subnet_id": subnetID, "ip_address": ip}}}})["port"].(map[string]any)
	if p["status"] != "DOWN" {
		l.t.Errorf("a new port is %v, want DOWN", p["status"])
	}
	in := inst{port: p["id"].(string), ip: ip, host: l.ns(fmt.Sprintf("h%d", i)), ns: l.ns(name)}
	// Made here, in the test's mount namespace: one made inside `ip netns
	// exec` would not be seen outside it.
	l.addNS(name)
	l.must("ip", "netns", "exec", in.host, l.bin, "port", "plug", in.port, "--netns", in.ns, "--url", l.url, "--auth", "noauth",
		"--host", fmt.Sprintf("host%d", i))
	return in
}

func (l *lab) status(port string) string {
	p, err := l.api("GET", "/v2.0/ports/"+port, nil)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprint(p["port"].(map[string]any)["status"])
}

func (l *lab) waitStatus(port, want string) {
	l.t.Helper()
	l.eventually("port "+port+" "+want, 20*time.Second, func() error {
		if s := l.status(port); s != want {
			return fmt.Errorf("status %s", s)
		}
		return nil
	})
}

func (l *lab) links(host string) string {
	return l.must("ip", "-n", host, "-o", "link", "show")
}

func (l *lab) agentsAlive() map[string]bool {
	out := map[string]bool{}
	a, err := l.api("GET", "/v2.0/agents", nil)
	if err != nil {
		return out
	}
	for _, x := range a["agents"].([]any) {
		m := x.(map[string]any)
		out[m["host"].(string)] = m["alive"] == true
	}
	return out
}

// step names a stage of a test that depends on the ones before it.
func step(t *testing.T, name string, f func()) {
	t.Helper()
	t.Logf("step %s", name)
	f()
}

func TestL2AcrossHosts(t *testing.T) {
	l := newLab(t)
	for i := 1; i <= 3; i++ {
		l.addHost(i)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i := 1; i <= 3; i++ {
			h := l.ns(fmt.Sprintf("h%d", i))
			links, _ := l.run("ip", "-n", h, "-br", "link")
			fdb, _ := l.run("bridge", "-n", h, "fdb", "show")
			t.Logf("==== %s\n%s%s", h, links, fdb)
		}
	})
	l.startServer()
	for i := 1; i <= 3; i++ {
		l.startAgent(i)
	}
	l.eventually("three agents alive", 20*time.Second, func() error {
		if a := l.agentsAlive(); !a["host1"] || !a["host2"] || !a["host3"] {
			return fmt.Errorf("agents %v", a)
		}
		return nil
	})

	// Two tenant networks with the same CIDR: only L2 isolation keeps
	// them apart.
	n1, s1 := l.network("red", "10.0.0.0/24")
	n2, s2 := l.network("blue", "10.0.0.0/24")
	a1 := l.plug(n1, s1, "10.0.0.11", 1, "a1")
	a2 := l.plug(n1, s1, "10.0.0.12", 2, "a2")
	a3 := l.plug(n1, s1, "10.0.0.13", 3, "a3")
	b1 := l.plug(n2, s2, "10.0.0.21", 1, "b1")
	b3 := l.plug(n2, s2, "10.0.0.23", 3, "b3")
	for _, p := range []inst{a1, a2, a3, b1, b3} {
		l.waitStatus(p.port, "ACTIVE")
	}

	step(t, "same-network-across-hosts", func() {
		l.reaches(a1.ns, a2.ip)
		l.reaches(a1.ns, a3.ip)
		l.reaches(a2.ns, a3.ip)
		l.reaches(b1.ns, b3.ip)
	})
	step(t, "networks-isolated", func() {
		l.cutOff(a1.ns, b3.ip)
		l.cutOff(b1.ns, a2.ip)
		l.cutOff(b3.ns, a3.ip) // same host, other network
	})
	step(t, "admin-down-cuts", func() {
		l.mustAPI("PUT", "/v2.0/ports/"+a2.port, map[string]any{"port": map[string]any{"admin_state_up": false}})
		l.cutOff(a1.ns, a2.ip)
		l.waitStatus(a2.port, "DOWN")
		l.mustAPI("PUT", "/v2.0/ports/"+a2.port, map[string]any{"port": map[string]any{"admin_state_up": true}})
		l.reaches(a1.ns, a2.ip)
		l.waitStatus(a2.port, "ACTIVE")
	})

	var c1 inst
	step(t, "agent-kill-9-and-restart", func() {
		l.kill("agent1", syscall.SIGKILL)
		l.reaches(a1.ns, a2.ip) // the kernel keeps forwarding
		// While host1's agent is away: a new instance on host1, and a3
		// goes from host3.
		c1 = l.plug(n1, s1, "10.0.0.14", 1, "c1")
		l.must("ip", "netns", "exec", a3.host, l.bin, "port", "unplug", a3.port, "--netns", a3.ns, "--url", l.url, "--auth", "noauth")
		l.mustAPI("DELETE", "/v2.0/ports/"+a3.port, nil)
		if s := l.status(c1.port); s != "DOWN" {
			t.Errorf("c1 is %s with its agent dead", s)
		}
		l.startAgent(1)
		l.waitStatus(c1.port, "ACTIVE")
		l.reaches(c1.ns, a2.ip)
		l.reaches(a1.ns, a2.ip)
		l.eventually("host1 forgets a3's MAC", 20*time.Second, func() error {
			fdb := l.must("ip", "netns", "exec", a1.host, "bridge", "fdb", "show")
			if strings.Contains(fdb, "dst 192.168.100.3") && strings.Contains(fdb, "vxlan") {
				// host3 still has b3 on the blue network; only the red
				// network's entries to host3 must go.
				for _, line := range strings.Split(fdb, "\n") {
					if strings.Contains(line, "dst 192.168.100.3") && !strings.Contains(line, "00:00:00:00:00:00") {
						mac := strings.Fields(line)[0]
						a3mac := l.mustAPI("GET", "/v2.0/ports/"+b3.port, nil)["port"].(map[string]any)["mac_address"]
						if mac != a3mac {
							return fmt.Errorf("stale entry: %s", line)
						}
					}
				}
			}
			return nil
		})
	})

	step(t, "server-killed-traffic-flows-agent-resumes", func() {
		l.kill("server", syscall.SIGKILL)
		l.reaches(a1.ns, a2.ip)
		l.reaches(b1.ns, b3.ip)
		time.Sleep(2 * time.Second) // the agents fail and back off
		l.reaches(a1.ns, a2.ip)
		l.startServer()
		// A change after the restart reaches the agents.
		l.mustAPI("PUT", "/v2.0/ports/"+a2.port, map[string]any{"port": map[string]any{"admin_state_up": false}})
		l.cutOff(a1.ns, a2.ip)
		l.mustAPI("PUT", "/v2.0/ports/"+a2.port, map[string]any{"port": map[string]any{"admin_state_up": true}})
		l.reaches(a1.ns, a2.ip)
		l.waitStatus(a2.port, "ACTIVE")
	})

	step(t, "deleted-port-leaves-no-device", func() {
		br := agentapi.BridgeName(n2)
		if !strings.Contains(l.links(b1.host), br) {
			t.Fatalf("host1 has no %s:\n%s", br, l.links(b1.host))
		}
		l.mustAPI("DELETE", "/v2.0/ports/"+b1.port, nil)
		l.eventually("host1 drops the blue network's devices", 20*time.Second, func() error {
			if s := l.links(b1.host); strings.Contains(s, br) {
				return fmt.Errorf("still there:\n%s", s)
			}
			return nil
		})
		l.must("ip", "netns", "exec", b1.host, l.bin, "port", "unplug", b1.port, "--netns", b1.ns, "--url", l.url, "--auth", "noauth")
		if s := l.links(b1.host); strings.Contains(s, agentapi.TapName(b1.port)) || strings.Count(s, "vxlan-") != 1 {
			t.Errorf("host1 after unplug:\n%s", s)
		}
		l.cutOff(b3.ns, b1.ip)
		l.reaches(a1.ns, a2.ip)
	})

	step(t, "agents-dead-after-heartbeats-stop", func() {
		for i := 1; i <= 3; i++ {
			l.kill(fmt.Sprintf("agent%d", i), syscall.SIGKILL)
		}
		l.eventually("agents dead", 20*time.Second, func() error {
			if a := l.agentsAlive(); a["host1"] || a["host2"] || a["host3"] || len(a) != 3 {
				return fmt.Errorf("agents %v", a)
			}
			return nil
		})
		l.reaches(a1.ns, a2.ip)
	})
}
