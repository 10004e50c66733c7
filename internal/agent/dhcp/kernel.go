package dhcp

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/mdlayher/ndp"
)

// MetadataIP is the address instances reach the metadata service at.
const MetadataIP = "169.254.169.254"

// Kernel is what the DHCP driver needs of the host: a namespace per
// served network holding the namespace side of the network's DHCP port,
// and the services' sockets opened inside it. The namespace side of the
// pair carries the agent's mark; a namespace whose port does not is not
// the agent's and is never touched.
type Kernel interface {
	// Served lists the networks whose namespaces are this agent's (it
	// looks inside each); Present, cheaply, those with a namespace of
	// the agent's naming, whoever made it.
	Served(ctx context.Context) ([]string, error)
	Present(ctx context.Context) ([]string, error)
	// EnsurePort makes the network's namespace and the DHCP port's pair
	// (host side marked and up, to be wired into the network's bridge;
	// namespace side with the port's MAC, MTU and addresses and the
	// metadata address), fixing what differs.
	EnsurePort(ctx context.Context, p Port) error
	// Remove deletes a network's namespace, with its devices, if ours.
	Remove(ctx context.Context, networkID string) error
	// Listen opens the services' sockets inside a network's namespace.
	Listen(ctx context.Context, networkID string, v6 bool) (*Sockets, error)
}

// Port is a DHCP port's pair as the kernel makes it.
type Port struct {
	NetworkID string
	Tap       string // host side, on the bridge
	Dev       string // namespace side
	MAC       string
	MTU       int
	// Addrs are CIDR prefixes ("10.0.0.2/24"); the metadata address is
	// added to them.
	Addrs []string
}

// Sockets are one namespace's listening sockets; any may be nil (a
// fake's, or IPv6 without an IPv6 subnet).
type Sockets struct {
	DHCPv4, DHCPv6, DNSUDP net.PacketConn
	DNSTCP, Metadata       net.Listener
	RA                     *ndp.Conn
	MAC                    net.HardwareAddr
}

// Close closes every socket.
func (s *Sockets) Close() {
	for _, c := range []interface{ Close() error }{s.DHCPv4, s.DHCPv6, s.DNSUDP, s.DNSTCP, s.Metadata} {
		if c != nil {
			c.Close()
		}
	}
	if s.RA != nil {
		s.RA.Close()
	}
}

// Fake is a Kernel in memory, for tests: it prints what it holds.
type Fake struct {
	mu    sync.Mutex
	ports map[string]Port // network -> port
	// Foreign are networks whose namespaces exist but are not ours.
	Foreign map[string]bool
}

// NewFake is an empty fake.
func NewFake() *Fake { return &Fake{ports: map[string]Port{}, Foreign: map[string]bool{}} }

// Served lists the fake's networks.
func (f *Fake) Served(ctx context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.ports)), nil
}

// Present is Served.
func (f *Fake) Present(ctx context.Context) ([]string, error) { return f.Served(ctx) }

// EnsurePort records the port.
func (f *Fake) EnsurePort(ctx context.Context, p Port) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Foreign[p.NetworkID] {
		return fmt.Errorf("namespace of network %s is not ours", p.NetworkID)
	}
	p.Addrs = slices.Clone(p.Addrs)
	slices.Sort(p.Addrs)
	f.ports[p.NetworkID] = p
	return nil
}

// Remove forgets the network's port.
func (f *Fake) Remove(ctx context.Context, networkID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ports, networkID)
	return nil
}

// Listen gives no sockets.
func (f *Fake) Listen(ctx context.Context, networkID string, v6 bool) (*Sockets, error) {
	return &Sockets{}, nil
}

// Dump prints one line per namespace.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(f.ports)) {
		p := f.ports[id]
		fmt.Fprintf(&b, "ns qdhcp-%s %s<->%s %s mtu %d %s\n", id, p.Tap, p.Dev, p.MAC, p.MTU, strings.Join(p.Addrs, ","))
	}
	return b.String()
}
