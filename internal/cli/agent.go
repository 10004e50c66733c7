package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack"

	"muon/internal/agent"
	_ "muon/internal/agent/all" // every agent driver
	"muon/internal/agentapi"
	"muon/internal/kernel"
)

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}

// mappings parses "physnet1:eth1,physnet2:eth2".
func mappings(s string) (map[string]string, error) {
	m := map[string]string{}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		phys, dev, ok := strings.Cut(item, ":")
		if !ok || phys == "" || dev == "" {
			return nil, fmt.Errorf("interface mapping %q: want physnet:device", item)
		}
		m[phys] = dev
	}
	return m, nil
}

// client is how the agent and port commands reach the API: --token (or
// OS_TOKEN); else password authentication from OS_AUTH_URL and the other
// OS_* variables; else noauth with admin headers.
func client(url, token string) (*agent.Client, string, error) {
	c := agent.NewClient(url, token)
	switch {
	case token != "":
		return c, "token", nil
	case os.Getenv("OS_AUTH_URL") != "":
		opts, err := openstack.AuthOptionsFromEnv()
		if err != nil {
			return nil, "", err
		}
		c.Auth = agent.PasswordAuth(opts)
		return c, "keystone password (OS_*)", nil
	}
	return c, "noauth (X-Roles: admin)", nil
}

func defaultURL() string {
	if u := os.Getenv("OS_ENDPOINT"); u != "" {
		return u
	}
	return "http://127.0.0.1:9696"
}

func agentCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	server := fs.String("server", defaultURL(), "the Networking API's URL")
	host := fs.String("host", hostname(), "this host's name, as ports' binding:host_id names it")
	tunnel := fs.String("tunnel-ip", "", "this host's VXLAN tunnel address")
	ifmaps := fs.String("interface-mappings", "", "physical networks' interfaces: physnet1:eth1,...")
	report := fs.Int("report-interval", 0, "seconds between heartbeats (0: the server's)")
	token := fs.String("token", os.Getenv("OS_TOKEN"), "a Keystone token (default $OS_TOKEN; without one, OS_* password auth or noauth)")
	arp := fs.Bool("arp-responder", false, "answer ARP from l2population's neighbour entries on the VXLAN devices (proxy) instead of flooding it to the remotes")
	nsPrefix := fs.String("netns-prefix", "", "put this before the names of the namespaces the agent makes (qdhcp-NETWORK), for several agents on one machine")
	lease := fs.Duration("dhcp-lease", 0, "DHCP lease time (dhcp_lease_duration; default 24h)")
	dnsServers := fs.String("dns-servers", "", "upstream DNS resolvers for names outside the networks' domains: IP[:PORT],... (dnsmasq_dns_servers)")
	metaURL := fs.String("metadata-url", "", "Nova's metadata API, e.g. http://NOVA:8775 (default: answer metadata from the ports' facts)")
	metaSecret := fs.String("metadata-secret", os.Getenv("MUON_METADATA_SECRET"), "metadata_proxy_shared_secret (default $MUON_METADATA_SECRET)")
	l3Mode := fs.String("l3-agent-mode", "", "run the L3 role (routers, SNAT, floating IPs) in this agent_mode: legacy (default: no L3 role)")
	verbose := fs.Bool("v", false, "log debug messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := l3Role(*l3Mode); err != nil {
		return err
	}
	var upstreams []string
	for _, u := range strings.Split(*dnsServers, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if _, err := netip.ParseAddr(u); err != nil {
			if _, err := netip.ParseAddrPort(u); err != nil {
				return fmt.Errorf("--dns-servers: %q is not IP or IP:PORT", u)
			}
		}
		upstreams = append(upstreams, u)
	}
	m, err := mappings(*ifmaps)
	if err != nil {
		return err
	}
	if *tunnel != "" {
		if _, err := netip.ParseAddr(*tunnel); err != nil {
			return fmt.Errorf("--tunnel-ip: %w", err)
		}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	c, how, err := client(*server, *token)
	if err != nil {
		return err
	}
	k, release, err := kernel.Host(*host)
	if err != nil {
		return err
	}
	defer release()
	fmt.Fprintf(stdout, "muon agent: host %s, server %s (%s)\n", *host, *server, how)
	a := agent.New(agent.Config{Settings: agent.Settings{Host: *host, TunnelIP: *tunnel, InterfaceMappings: m, ARPResponder: *arp,
		NamespacePrefix: *nsPrefix, L3AgentMode: *l3Mode,
		DHCP: agent.DHCPSettings{LeaseTime: *lease, DNSServers: upstreams, MetadataURL: *metaURL, MetadataSecret: *metaSecret}},
		ReportInterval: time.Duration(*report) * time.Second}, c, k, log.With("agent", *host))
	return a.Run(ctx)
}

// l3Role checks an --l3-agent-mode: Neutron's dvr and dvr_snat modes
// come with distributed routers, which this build does not build.
func l3Role(mode string) error {
	switch mode {
	case "", "legacy":
		return nil
	case "dvr", "dvr_snat", "dvr_no_external":
		return fmt.Errorf("--l3-agent-mode %s: distributed routers are not built yet; use legacy", mode)
	}
	return fmt.Errorf("--l3-agent-mode %q: want legacy", mode)
}

// tunnelIP guesses this host's address toward the outside (the source of
// its default route), else loopback.
func tunnelIP() string {
	c, err := net.Dial("udp", "192.0.2.1:4789") // no packet is sent
	if err != nil {
		return "127.0.0.1"
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
}

// startAgent runs the host's agent inside `muon up`, when this process
// may touch the kernel.
func startAgent(ctx context.Context, apiAddr string, auth func(context.Context, bool) (string, error), tunnel, nsPrefix string, ifmaps map[string]string, log *slog.Logger) {
	if os.Geteuid() != 0 {
		log.Warn("not root: the data plane is off (no agent; ports stay DOWN). Run as root, or run `muon agent` as root.")
		return
	}
	k, release, err := kernel.Host(hostname())
	if err != nil {
		log.Warn("the data plane is off", "err", err)
		return
	}
	if tunnel == "" {
		tunnel = tunnelIP()
	}
	c := agent.NewClient("http://"+apiAddr, "")
	c.Auth = auth
	// All in one: this host is the network node too.
	a := agent.New(agent.Config{Settings: agent.Settings{Host: hostname(), TunnelIP: tunnel, NamespacePrefix: nsPrefix,
		InterfaceMappings: ifmaps, L3AgentMode: "legacy"}}, c, k, log.With("agent", hostname()))
	go func() {
		defer release()
		a.Run(ctx)
	}()
}

type portDoc struct {
	ID           string `json:"id"`
	NetworkID    string `json:"network_id"`
	MAC          string `json:"mac_address"`
	AdminStateUp bool   `json:"admin_state_up"`
	FixedIPs     []struct {
		SubnetID  string `json:"subnet_id"`
		IPAddress string `json:"ip_address"`
	} `json:"fixed_ips"`
}

func portCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) < 1 || (args[0] != "plug" && args[0] != "unplug") {
		return errors.New("usage: muon port plug|unplug PORT_ID --netns NAME")
	}
	verb := args[0]
	fs := flag.NewFlagSet("port "+verb, flag.ContinueOnError)
	url := fs.String("url", defaultURL(), "the Networking API's URL")
	authn := fs.String("auth", "", "noauth: admin headers, no token (the default without a token or OS_AUTH_URL)")
	token := fs.String("token", os.Getenv("OS_TOKEN"), "a Keystone token (default $OS_TOKEN)")
	nsName := fs.String("netns", "", "the instance's network namespace")
	host := fs.String("host", hostname(), "this host's name, set as the port's binding:host_id")
	useDHCP := fs.Bool("dhcp", false, "plug: run a DHCP client (busybox udhcpc) in the instance, as an instance would, instead of setting its address by hand")
	// The port id may come before or after the flags.
	rest := args[1:]
	var id string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	if id == "" || *nsName == "" && verb == "plug" {
		return errors.New("usage: muon port " + verb + " PORT_ID --netns NAME")
	}
	if *authn == "noauth" {
		*token = ""
		os.Unsetenv("OS_AUTH_URL")
	}
	c, _, err := client(*url, *token)
	if err != nil {
		return err
	}
	tap := agentapi.TapName(id)
	body := func(host string) map[string]any {
		return map[string]any{"port": map[string]any{"binding:host_id": host}}
	}
	if verb == "unplug" {
		if *nsName != "" {
			stopDHCPClient(*nsName)
		}
		if err := kernel.UnplugInstance(*nsName, tap); err != nil {
			return err
		}
		err := c.Do(ctx, http.MethodPut, "/v2.0/ports/"+id, body(""), nil)
		var se *agent.StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			err = nil // the port is gone already
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "unplugged %s (%s)\n", id, tap)
		return nil
	}
	var p struct{ Port portDoc }
	if err := c.Do(ctx, http.MethodGet, "/v2.0/ports/"+id, nil, &p); err != nil {
		return fmt.Errorf("read port %s: %w", id, err)
	}
	var n struct {
		Network struct {
			MTU int `json:"mtu"`
		}
	}
	if err := c.Do(ctx, http.MethodGet, "/v2.0/networks/"+p.Port.NetworkID, nil, &n); err != nil {
		return fmt.Errorf("read network %s: %w", p.Port.NetworkID, err)
	}
	in := kernel.Instance{NetNS: *nsName, Tap: tap, MAC: p.Port.MAC, MTU: n.Network.MTU}
	gws := map[bool]string{}
	for _, ip := range p.Port.FixedIPs {
		var s struct {
			Subnet struct {
				CIDR      string  `json:"cidr"`
				GatewayIP *string `json:"gateway_ip"`
			}
		}
		if err := c.Do(ctx, http.MethodGet, "/v2.0/subnets/"+ip.SubnetID, nil, &s); err != nil {
			return fmt.Errorf("read subnet %s: %w", ip.SubnetID, err)
		}
		pfx, err := netip.ParsePrefix(s.Subnet.CIDR)
		if err != nil {
			return fmt.Errorf("subnet %s: %w", ip.SubnetID, err)
		}
		in.Addrs = append(in.Addrs, fmt.Sprintf("%s/%d", ip.IPAddress, pfx.Bits()))
		if g := s.Subnet.GatewayIP; g != nil && *g != "" && *g != ip.IPAddress {
			if _, ok := gws[pfx.Addr().Is4()]; !ok {
				gws[pfx.Addr().Is4()] = *g
			}
		}
	}
	for _, g := range gws {
		in.Gateways = append(in.Gateways, g)
	}
	v4 := slices.ContainsFunc(in.Addrs, func(a string) bool { return !strings.Contains(a, ":") })
	if *useDHCP {
		// The instance asks; the address, routes and MTU are the lease's.
		in.Addrs, in.Gateways = nil, nil
	}
	if err := kernel.PlugInstance(in); err != nil {
		return err
	}
	if err := c.Do(ctx, http.MethodPut, "/v2.0/ports/"+id, body(*host), nil); err != nil {
		return fmt.Errorf("bind port %s to %s: %w", id, *host, err)
	}
	if *useDHCP {
		lease := "IPv6 by router advertisements and DHCPv6"
		if v4 {
			if lease, err = startDHCPClient(ctx, *nsName); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "plugged %s: %s in %s (eth0 %s, by DHCP: %s), bound to %s\n", id, tap, *nsName, p.Port.MAC, lease, *host)
		return nil
	}
	fmt.Fprintf(stdout, "plugged %s: %s in %s (eth0 %s %s), bound to %s\n", id, tap, *nsName, p.Port.MAC, strings.Join(in.Addrs, " "), *host)
	return nil
}

// udhcpcScript is the DHCP client's script in an instance namespace: the
// lease's address, MTU, routes (option 121, else the router) on eth0, and
// its DNS servers in the namespace's resolv.conf (/etc/netns/NS, which
// ip netns exec shows as /etc/resolv.conf): never the host's.
const udhcpcScript = `#!/bin/sh
dev="$interface"
case "$1" in
deconfig)
	ip -4 addr flush dev "$dev"
	ip link set "$dev" up
	;;
bound|renew)
	[ -n "$mtu" ] && ip link set "$dev" mtu "$mtu"
	if ! ip -4 -o addr show dev "$dev" | grep -q " $ip/$mask "; then
		ip -4 addr flush dev "$dev"
		ip addr add "$ip/$mask" broadcast + dev "$dev"
	fi
	if [ -n "$staticroutes" ]; then
		set -- $staticroutes
		while [ $# -ge 2 ]; do
			if [ "$2" = 0.0.0.0 ]; then ip route replace "$1" dev "$dev"; else ip route replace "$1" via "$2" dev "$dev"; fi
			shift 2
		done
	elif [ -n "$router" ]; then
		for r in $router; do ip route replace default via "$r" dev "$dev"; break; done
	fi
	if [ -n "$MUON_NETNS" ]; then
		mkdir -p "/etc/netns/$MUON_NETNS"
		{
			[ -n "$domain" ] && echo "search $domain"
			for d in $dns; do echo "nameserver $d"; done
		} >"/etc/netns/$MUON_NETNS/resolv.conf"
	fi
	echo "$ip/$mask" >"$MUON_LEASE"
	;;
esac
`

// dhcpClientDir keeps the DHCP clients' scripts, pid files and leases.
const dhcpClientDir = "/run/muon/dhcp-clients"

// startDHCPClient runs udhcpc in the instance's namespace until it has a
// lease (then it stays, renewing, in the background) and tells the lease.
func startDHCPClient(ctx context.Context, ns string) (string, error) {
	if !plainName(ns) {
		return "", fmt.Errorf("--netns %q: want a plain namespace name", ns)
	}
	bin, err := exec.LookPath("udhcpc")
	if err != nil {
		return "", errors.New("--dhcp needs udhcpc (Debian package udhcpc)")
	}
	if err := os.MkdirAll(dhcpClientDir, 0o700); err != nil {
		return "", err
	}
	script := filepath.Join(dhcpClientDir, "udhcpc.script")
	if err := os.WriteFile(script, []byte(udhcpcScript), 0o700); err != nil {
		return "", err
	}
	stopDHCPClient(ns)
	leaseFile := filepath.Join(dhcpClientDir, ns+".lease")
	os.Remove(leaseFile)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, bin, "-i", "eth0", "-s", script,
		"-p", filepath.Join(dhcpClientDir, ns+".pid"), "-t", "20", "-T", "1", "-n", "-O", "staticroutes", "-O", "mtu")
	cmd.Env = append(os.Environ(), "MUON_NETNS="+ns, "MUON_LEASE="+leaseFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("udhcpc in %s: %v\n%s", ns, err, out)
	}
	b, err := os.ReadFile(leaseFile)
	if err != nil {
		return "", fmt.Errorf("udhcpc in %s: no lease", ns)
	}
	return strings.TrimSpace(string(b)), nil
}

// stopDHCPClient ends the instance's DHCP client, if any.
func stopDHCPClient(ns string) {
	if !plainName(ns) {
		return
	}
	pidFile := filepath.Join(dhcpClientDir, ns+".pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	os.Remove(pidFile)
	os.RemoveAll(filepath.Join("/etc/netns", ns))
}

// plainName is a namespace name that is one path element.
func plainName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}
