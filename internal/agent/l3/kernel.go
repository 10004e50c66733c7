package l3

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/mdlayher/ndp"

	"muon/internal/agentapi"
)

// Kernel is what the L3 driver needs of the host: a namespace per router
// holding the router's side of its ports' pairs, its routes and its NAT.
// The router's side of each pair carries the agent's mark; a namespace
// without one is not the agent's and is never touched.
type Kernel interface {
	// Routers lists the routers whose namespaces are this agent's (it
	// looks inside each); Present, cheaply, those with a namespace of
	// the agent's naming, whoever made it.
	Routers(ctx context.Context) ([]string, error)
	Present(ctx context.Context) ([]string, error)
	// Ensure makes the router's namespace as spec says, changing only
	// what differs: devices, addresses, routes and NAT (one nftables
	// transaction), announcing floating IPs it adds (gratuitous ARP).
	// It may keep spec: the caller does not change it after.
	Ensure(ctx context.Context, spec Spec) error
	// Remove deletes a router's namespace, with its devices, if ours.
	Remove(ctx context.Context, routerID string) error
	// ListenRA opens a socket for router advertisements on one of a
	// router's devices (from its link-local address), with the device's
	// MAC; a nil socket means there is nothing to send on (a fake).
	ListenRA(ctx context.Context, routerID, dev string) (*ndp.Conn, net.HardwareAddr, error)
}

// Spec is one router as the kernel makes it.
type Spec struct {
	RouterID string
	// Ports are the router's pairs, the gateway's first when it has
	// one.
	Ports []Pair
	// Gateway is the external device ("qg-..."), "" without one;
	// GatewayIP its IPv4 address (the SNAT source), and NextHops the
	// external subnets' gateways (a default route via each family's).
	Gateway   string
	GatewayIP string
	NextHops  []string
	// Routes are extra routes.
	Routes []Route
	// SNAT makes instances without a floating IP leave as GatewayIP.
	SNAT bool
	// FloatingIPs maps each floating address the router holds on its
	// gateway to the fixed address it is (1:1 NAT), or "" when it only
	// carries port forwardings.
	FloatingIPs map[string]string
	// Forwards are the port forwardings.
	Forwards []Forward
	// Helpers give connections to a protocol's port through the router
	// to a conntrack helper.
	Helpers []agentapi.ConntrackHelper
}

// Pair is one of a router's ports: Tap on the host, Dev in the
// namespace.
type Pair struct {
	Tap, Dev string
	MAC      string
	MTU      int
	Addrs    []string // CIDR prefixes
}

// Route is an extra route.
type Route struct{ Destination, Nexthop string }

// Forward is a port forwarding: Protocol traffic to FloatingIP's ports
// ExternalPort..ExternalEnd goes to InternalIP's InternalPort.. (the same
// offset, or all to InternalPort when InternalEnd equals it).
type Forward struct {
	FloatingIP                string
	Protocol                  string
	ExternalPort, ExternalEnd int
	InternalIP                string
	InternalPort, InternalEnd int
}

// String is one line of a forward, for dumps and comparisons.
func (f Forward) String() string {
	return fmt.Sprintf("%s %s:%d-%d -> %s:%d-%d", f.Protocol, f.FloatingIP, f.ExternalPort, f.ExternalEnd, f.InternalIP, f.InternalPort, f.InternalEnd)
}

// Fake is a Kernel in memory, for tests: it prints what it holds.
type Fake struct {
	mu      sync.Mutex
	routers map[string]Spec
	// Foreign are routers whose namespaces exist but are not ours.
	Foreign map[string]bool
	// Ensured counts Ensure calls by router.
	Ensured map[string]int
}

// NewFake is an empty fake.
func NewFake() *Fake {
	return &Fake{routers: map[string]Spec{}, Foreign: map[string]bool{}, Ensured: map[string]int{}}
}

// Routers lists the fake's routers.
func (f *Fake) Routers(ctx context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.routers)), nil
}

// Present is Routers.
func (f *Fake) Present(ctx context.Context) ([]string, error) { return f.Routers(ctx) }

// Ensure records the spec.
func (f *Fake) Ensure(ctx context.Context, s Spec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Foreign[s.RouterID] {
		return fmt.Errorf("namespace of router %s is not ours", s.RouterID)
	}
	f.Ensured[s.RouterID]++
	s.FloatingIPs = maps.Clone(s.FloatingIPs)
	f.routers[s.RouterID] = s
	return nil
}

// ListenRA gives no socket.
func (f *Fake) ListenRA(ctx context.Context, routerID, dev string) (*ndp.Conn, net.HardwareAddr, error) {
	return nil, nil, nil
}

// Remove forgets the router.
func (f *Fake) Remove(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.routers, id)
	return nil
}

// Dump prints a few lines per router.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(f.routers)) {
		s := f.routers[id]
		fmt.Fprintf(&b, "ns qrouter-%s", id)
		if s.Gateway != "" {
			fmt.Fprintf(&b, " gw %s %s via %s snat=%v", s.Gateway, s.GatewayIP, strings.Join(s.NextHops, ","), s.SNAT)
		}
		b.WriteString("\n")
		for _, p := range s.Ports {
			fmt.Fprintf(&b, "  dev %s<->%s %s mtu %d %s\n", p.Tap, p.Dev, p.MAC, p.MTU, strings.Join(p.Addrs, ","))
		}
		for _, r := range s.Routes {
			fmt.Fprintf(&b, "  route %s via %s\n", r.Destination, r.Nexthop)
		}
		for _, fip := range slices.Sorted(maps.Keys(s.FloatingIPs)) {
			fmt.Fprintf(&b, "  fip %s -> %s\n", fip, s.FloatingIPs[fip])
		}
		for _, fw := range s.Forwards {
			fmt.Fprintf(&b, "  forward %s\n", fw)
		}
		for _, h := range s.Helpers {
			fmt.Fprintf(&b, "  helper %s %s/%d\n", h.Helper, h.Protocol, h.Port)
		}
	}
	return b.String()
}
