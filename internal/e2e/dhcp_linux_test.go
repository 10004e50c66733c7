package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"muon/internal/kernel/netns"
)

// dhcpPort makes a port for an instance (device_id its instance id).
func (l *lab) dhcpPort(netID, name string, fixed []any) map[string]any {
	l.t.Helper()
	body := map[string]any{"network_id": netID, "dns_name": name, "device_owner": "compute:nova",
		"device_id": fmt.Sprintf("0000%04x-1111-4222-8333-444455556666", len(name)*7919%65536)}
	if fixed != nil {
		body["fixed_ips"] = fixed
	}
	return l.mustAPI("POST", "/v2.0/ports", map[string]any{"port": body})["port"].(map[string]any)
}

// plugDHCP plugs an instance for a port on host i that takes its
// address by DHCP (udhcpc); it returns the namespace and the lease.
func (l *lab) plugDHCP(portID string, i int, name string) (string, string) {
	l.t.Helper()
	ns := l.addNS(name)
	l.t.Cleanup(func() {
		l.run(l.bin, "port", "unplug", portID, "--netns", ns, "--url", "http://127.0.0.1:1", "--auth", "noauth")
	})
	out := l.must("ip", "netns", "exec", l.ns(fmt.Sprintf("h%d", i)), l.bin, "port", "plug", portID, "--netns", ns, "--url", l.url,
		"--auth", "noauth", "--host", fmt.Sprintf("host%d", i), "--dhcp")
	_, lease, _ := strings.Cut(out, "by DHCP: ")
	lease, _, _ = strings.Cut(lease, ")")
	return ns, lease
}

// inNS runs a command in a namespace (resolv.conf from /etc/netns).
func (l *lab) inNS(ns string, args ...string) (string, error) {
	return l.run(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// httpIn fetches a URL from inside a namespace.
func httpIn(ns, url string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := netns.DoNamed(ns, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func fixedIP(p map[string]any, i int) string {
	return p["fixed_ips"].([]any)[i].(map[string]any)["ip_address"].(string)
}

// renew asks an instance's DHCP client to renew now.
func renew(t *testing.T, ns string) {
	b, err := os.ReadFile(filepath.Join("/run/muon/dhcp-clients", ns+".pid"))
	if err != nil {
		t.Fatalf("no DHCP client in %s: %v", ns, err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	syscall.Kill(pid, syscall.SIGUSR1)
}

func leaseOf(ns string) string {
	b, _ := os.ReadFile(filepath.Join("/run/muon/dhcp-clients", ns+".lease"))
	return strings.TrimSpace(string(b))
}

// TestDHCP: instances on two hosts of one VXLAN network get their
// address, gateway, DNS server, MTU and host routes from a real DHCP
// client, resolve each other's names, reach metadata; a fixed IP changed
// through the API is the next renewal's; a deleted port's MAC gets no
// answer; IPv6 by RA (SLAAC) and by DHCPv6; the agent killed and
// restarted serves again; its networks move when it dies.
func TestDHCP(t *testing.T) {
	l := newLab(t, "udhcpc", "dhclient", "getent")
	for i := 1; i <= 2; i++ {
		l.addHost(i)
	}
	l.startServer()
	// The first host is the only DHCP agent until the failover step.
	l.startAgent(1, "--dhcp-lease", "12s")
	l.eventually("the agents", 20*time.Second, func() error {
		a := l.agentsAlive()
		if !a["host1"] {
			return fmt.Errorf("agents %v", a)
		}
		return nil
	})

	n := l.mustAPI("POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "dhcp"}})["network"].(map[string]any)
	netID := n["id"].(string)
	mtu := int(n["mtu"].(float64))
	s := l.mustAPI("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "cidr": "10.20.0.0/24", "ip_version": 4,
		"allocation_pools": []any{map[string]any{"start": "10.20.0.100", "end": "10.20.0.200"}},
		"host_routes":      []any{map[string]any{"destination": "192.0.2.0/24", "nexthop": "10.20.0.254"}}}})["subnet"].(map[string]any)
	subID := s["id"].(string)
	var dhcpIP string
	l.eventually("the DHCP port, ACTIVE", 20*time.Second, func() error {
		ps := l.mustAPI("GET", "/v2.0/ports?device_owner=network:dhcp&network_id="+netID, nil)["ports"].([]any)
		if len(ps) != 1 {
			return fmt.Errorf("%d DHCP ports", len(ps))
		}
		p := ps[0].(map[string]any)
		dhcpIP = fixedIP(p, 0)
		if p["status"] != "ACTIVE" || p["binding:host_id"] != "host1" {
			return fmt.Errorf("DHCP port %v on %v", p["status"], p["binding:host_id"])
		}
		return nil
	})
	l.startAgent(2)

	vm1 := l.dhcpPort(netID, "vm1", nil)
	vm2 := l.dhcpPort(netID, "vm2", nil)
	var ns1, ns2 string
	step(t, "leases", func() {
		var lease1, lease2 string
		ns1, lease1 = l.plugDHCP(vm1["id"].(string), 1, "vm1")
		ns2, lease2 = l.plugDHCP(vm2["id"].(string), 2, "vm2")
		if lease1 != fixedIP(vm1, 0)+"/24" || lease2 != fixedIP(vm2, 0)+"/24" {
			t.Fatalf("leases %q %q, want %s/24 %s/24", lease1, lease2, fixedIP(vm1, 0), fixedIP(vm2, 0))
		}
		l.waitStatus(vm1["id"].(string), "ACTIVE")
		l.waitStatus(vm2["id"].(string), "ACTIVE")
		routes, _ := l.inNS(ns1, "ip", "-4", "route")
		for _, want := range []string{"default via 10.20.0.1", "192.0.2.0/24 via 10.20.0.254", "169.254.169.254 via " + dhcpIP} {
			if !strings.Contains(routes, want) {
				t.Errorf("routes lack %q:\n%s", want, routes)
			}
		}
		link, _ := l.inNS(ns1, "ip", "-o", "link", "show", "eth0")
		if !strings.Contains(link, fmt.Sprintf("mtu %d ", mtu)) {
			t.Errorf("eth0 %s, want mtu %d", link, mtu)
		}
		resolv, _ := os.ReadFile(filepath.Join("/etc/netns", ns1, "resolv.conf"))
		if !strings.Contains(string(resolv), "nameserver "+dhcpIP) || !strings.Contains(string(resolv), "search openstacklocal") {
			t.Errorf("resolv.conf:\n%s", resolv)
		}
		l.reaches(ns1, fixedIP(vm2, 0))
	})
	step(t, "dns", func() {
		out, err := l.inNS(ns1, "getent", "hosts", "vm2.openstacklocal")
		if err != nil || !strings.Contains(out, fixedIP(vm2, 0)) {
			t.Errorf("vm1 resolving vm2: %v %s", err, out)
		}
		out, err = l.inNS(ns2, "getent", "hosts", "vm1")
		if err != nil || !strings.Contains(out, fixedIP(vm1, 0)) {
			t.Errorf("vm2 resolving vm1 (search domain): %v %s", err, out)
		}
		if out, err := l.inNS(ns1, "getent", "hosts", "nobody.openstacklocal"); err == nil {
			t.Errorf("a name no port has resolves: %s", out)
		}
	})
	step(t, "metadata", func() {
		code, body, err := httpIn(ns1, "http://169.254.169.254/openstack/latest/meta_data.json")
		var md struct {
			UUID     string `json:"uuid"`
			Hostname string `json:"hostname"`
		}
		if err != nil || code != 200 || json.Unmarshal([]byte(body), &md) != nil || md.UUID != vm1["device_id"] || !strings.HasPrefix(md.Hostname, "vm1") {
			t.Errorf("meta_data.json: %d %v %s", code, err, body)
		}
		code, body, err = httpIn(ns2, "http://169.254.169.254/latest/meta-data/instance-id")
		if err != nil || code != 200 || strings.TrimSpace(body) != vm2["device_id"] {
			t.Errorf("instance-id: %d %v %q, want %v", code, err, body, vm2["device_id"])
		}
	})
	step(t, "address-change-at-renewal", func() {
		l.mustAPI("PUT", "/v2.0/ports/"+vm1["id"].(string), map[string]any{"port": map[string]any{
			"fixed_ips": []any{map[string]any{"subnet_id": subID, "ip_address": "10.20.0.77"}}}})
		l.eventually("vm1 renewing to 10.20.0.77", 20*time.Second, func() error {
			renew(t, ns1)
			time.Sleep(300 * time.Millisecond)
			if got := leaseOf(ns1); got != "10.20.0.77/24" {
				return fmt.Errorf("lease %q", got)
			}
			return nil
		})
		l.reaches(ns2, "10.20.0.77")
	})
	step(t, "deleted-port-no-answer", func() {
		// A plugged instance asks with its own MAC, then with vm2's
		// once vm2's port is gone.
		probe := l.plug(netID, subID, "10.20.0.251", 1, "probe")
		l.waitStatus(probe.port, "ACTIVE")
		ask := func() (string, error) {
			return l.inNS(probe.ns, "udhcpc", "-i", "eth0", "-s", "/bin/true", "-q", "-n", "-t", "3", "-T", "1")
		}
		if out, err := ask(); err != nil {
			t.Fatalf("a port's own MAC got no lease: %v\n%s", err, out)
		}
		mac := vm2["mac_address"].(string)
		l.must(l.bin, "port", "unplug", vm2["id"].(string), "--netns", ns2, "--url", l.url, "--auth", "noauth")
		l.mustAPI("DELETE", "/v2.0/ports/"+vm2["id"].(string), nil)
		l.must("ip", "-n", probe.ns, "link", "set", "eth0", "address", mac)
		if out, err := ask(); err == nil {
			t.Errorf("a deleted port's MAC got a lease:\n%s", out)
		}
	})
	step(t, "ipv6", func() {
		n6 := l.mustAPI("POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "v6"}})["network"].(map[string]any)
		id6 := n6["id"].(string)
		l.mustAPI("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": id6, "cidr": "2001:db8:1::/64", "ip_version": 6,
			"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}})
		st := l.mustAPI("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": id6, "cidr": "2001:db8:2::/64", "ip_version": 6,
			"ipv6_ra_mode": "dhcpv6-stateful", "ipv6_address_mode": "dhcpv6-stateful"}})["subnet"].(map[string]any)
		vm3 := l.dhcpPort(id6, "vm3", nil)
		var slaac, stateful string
		for _, f := range vm3["fixed_ips"].([]any) {
			m := f.(map[string]any)
			if m["subnet_id"] == st["id"] {
				stateful = m["ip_address"].(string)
			} else {
				slaac = m["ip_address"].(string)
			}
		}
		ns3, _ := l.plugDHCP(vm3["id"].(string), 2, "vm3")
		l.eventually("vm3's SLAAC address by RA", 30*time.Second, func() error {
			out, _ := l.inNS(ns3, "ip", "-6", "addr", "show", "dev", "eth0", "scope", "global")
			if !strings.Contains(out, slaac+"/64") {
				return fmt.Errorf("want %s:\n%s", slaac, out)
			}
			return nil
		})
		lf := filepath.Join(l.dir, "vm3.leases6")
		out, err := l.inNS(ns3, "dhclient", "-6", "-1", "-v", "-sf", "/bin/true", "-lf", lf, "-pf", filepath.Join(l.dir, "vm3.pid6"), "eth0")
		l.run("ip", "netns", "exec", ns3, "dhclient", "-6", "-x", "-pf", filepath.Join(l.dir, "vm3.pid6"))
		leases, _ := os.ReadFile(lf)
		if err != nil || !strings.Contains(string(leases), "iaaddr "+stateful) {
			t.Errorf("DHCPv6 lease, want %s: %v\n%s\n%s", stateful, err, out, leases)
		}
	})
	step(t, "agent-kill-9-and-restart", func() {
		l.kill("agent1", syscall.SIGKILL)
		l.startAgent(1, "--dhcp-lease", "12s")
		l.eventually("vm1 renewing after the restart", 30*time.Second, func() error {
			os.Remove(filepath.Join("/run/muon/dhcp-clients", ns1+".lease"))
			renew(t, ns1)
			time.Sleep(500 * time.Millisecond)
			if got := leaseOf(ns1); got != "10.20.0.77/24" {
				return fmt.Errorf("lease %q", got)
			}
			return nil
		})
	})
	step(t, "failover", func() {
		// An instance on host2 (whose agent is a DHCP agent too, serving
		// nothing yet); host1's agent dies for good, and host1 with it as
		// far as the network knows.
		vm4 := l.dhcpPort(netID, "vm4", nil)
		ns4, lease := l.plugDHCP(vm4["id"].(string), 2, "vm4")
		if lease != fixedIP(vm4, 0)+"/24" {
			t.Fatalf("vm4 lease %q, want %s/24", lease, fixedIP(vm4, 0))
		}
		l.kill("agent1", syscall.SIGKILL)
		l.eventually("the network moving to host2", 30*time.Second, func() error {
			ps := l.mustAPI("GET", "/v2.0/ports?device_owner=network:dhcp&network_id="+netID, nil)["ports"].([]any)
			if len(ps) != 1 || ps[0].(map[string]any)["binding:host_id"] != "host2" || ps[0].(map[string]any)["status"] != "ACTIVE" {
				return fmt.Errorf("DHCP ports %v", ps)
			}
			return nil
		})
		l.eventually("vm4 renewing from host2's DHCP", 40*time.Second, func() error {
			os.Remove(filepath.Join("/run/muon/dhcp-clients", ns4+".lease"))
			renew(t, ns4)
			time.Sleep(500 * time.Millisecond)
			if got := leaseOf(ns4); got != fixedIP(vm4, 0)+"/24" {
				return fmt.Errorf("lease %q", got)
			}
			return nil
		})
	})
}
