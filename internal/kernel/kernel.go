// Package kernel is the data plane's view of the host kernel: links,
// bridges, VXLAN devices, FDB and neighbour entries, through a small
// interface (Kernel) so the agents' logic can be tested against a fake
// that prints its state as text. The real implementation (netlink, bound
// to one network namespace) is Linux-only.
package kernel

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// VXLANPort is the IANA VXLAN port, as Neutron uses it.
const VXLANPort = 4789

// Alias is how devices were marked before marks named their agent. A
// device that carries it alone is adopted by the first agent that wants
// it (Ensure* re-marks it), and removed by none.
const Alias = "muon"

// Mark is the alias (IFLA_IFALIAS) an agent puts on every device it makes,
// naming the agent ("muon:<host>"). Only devices with its own mark are
// ever changed or deleted as its own: another agent's, another program's
// brq* bridge, an operator's device are left alone, whatever their names.
func Mark(owner string) string { return Alias + ":" + owner }

// ForeignError is an Ensure* on a device name someone else holds.
type ForeignError struct {
	Name, Alias string
}

func (e *ForeignError) Error() string {
	if e.Alias == "" {
		return fmt.Sprintf("device %s exists and is not ours (no mark): left alone", e.Name)
	}
	return fmt.Sprintf("device %s exists and is not ours (marked %q): left alone", e.Name, e.Alias)
}

// claimable tells whether an existing device with this alias may be made
// ours: it is, or a mark-less Muon agent made it.
func claimable(alias, mark string) bool { return alias == mark || alias == Alias }

// Kernel is what the L2 agent needs from the host. Devices are named;
// addresses and MACs are strings in Go's canonical form (net.IP.String,
// net.HardwareAddr.String), so a fake can compare and print them. A
// Kernel belongs to one agent: the devices it makes carry that agent's
// Mark, and it refuses to delete or remake a device that does not.
type Kernel interface {
	// Capabilities says which device kinds this kernel can create.
	Capabilities(ctx context.Context) Capabilities
	// Links lists every link of the namespace.
	Links(ctx context.Context) ([]Link, error)
	// Mark is the mark of this Kernel's devices; Own sets the owner it
	// names (before any device is made).
	Mark() string
	Own(owner string)
	// EnsureBridge makes a bridge with this MTU, up, marked as ours; a
	// device of that name that is not ours is a *ForeignError.
	EnsureBridge(ctx context.Context, name string, mtu int) error
	// EnsureVXLAN makes (or remakes, when its identity differs) a VXLAN
	// device, up, marked as ours.
	EnsureVXLAN(ctx context.Context, v VXLAN) error
	// EnsureVLAN makes an 802.1Q sub-interface of parent, up, marked.
	EnsureVLAN(ctx context.Context, name, parent string, id, mtu int) error
	// DeleteLink removes a link of ours; a missing one is not an error,
	// one that is not ours a *ForeignError.
	DeleteLink(ctx context.Context, name string) error
	// SetMaster attaches a link to a bridge; "" detaches it.
	SetMaster(ctx context.Context, name, bridge string) error
	SetUp(ctx context.Context, name string, up bool) error
	SetMTU(ctx context.Context, name string, mtu int) error
	// FDB lists a VXLAN device's own forwarding entries that have a
	// remote destination (bridge fdb ... dev D dst IP self permanent).
	FDB(ctx context.Context, dev string) ([]FDB, error)
	AddFDB(ctx context.Context, dev string, e FDB) error // append
	DelFDB(ctx context.Context, dev string, e FDB) error
	// Neighs lists a device's permanent neighbour entries.
	Neighs(ctx context.Context, dev string) ([]Neigh, error)
	AddNeigh(ctx context.Context, dev string, n Neigh) error // replace
	DelNeigh(ctx context.Context, dev string, n Neigh) error
	// Watch signals (coalesced) whenever a link appears, goes or
	// changes, until ctx ends.
	Watch(ctx context.Context) (<-chan struct{}, error)
}

// Link is one network device.
type Link struct {
	Name   string
	Kind   string // bridge, vxlan, vlan, veth, tun, dummy, device (a NIC)...
	MTU    int
	Up     bool   // administratively up
	Master string // the bridge it is attached to, if any
	Alias  string
	VXLAN  *VXLAN // for Kind vxlan
	VLAN   *VLAN  // for Kind vlan
}

// OwnedBy tells whether the link carries mark.
func (l Link) OwnedBy(mark string) bool { return l.Alias == mark }

// VXLAN is a VXLAN device's identity and settings.
type VXLAN struct {
	Name     string
	VNI      int
	Local    string // the local tunnel address
	Port     int    // UDP destination port; 0 means VXLANPort
	Learning bool
	Proxy    bool // answer ARP/ND from the device's neighbour table
	MTU      int
}

// VLAN is an 802.1Q sub-interface's identity.
type VLAN struct {
	Parent string
	ID     int
}

// FDB is one forwarding entry of a VXLAN device: frames for MAC go to
// the tunnel endpoint Dst. MAC 00:00:00:00:00:00 is the flood list
// (broadcast, unknown unicast, multicast), one entry per remote.
type FDB struct {
	MAC string
	Dst string
}

// FloodMAC is the all-zero MAC of flood entries.
const FloodMAC = "00:00:00:00:00:00"

// Neigh is a permanent neighbour entry: IP is at MAC.
type Neigh struct {
	IP  string
	MAC string
}

// Capabilities are the device kinds this kernel can create, with the
// reason for each one it cannot.
type Capabilities struct {
	Bridge, VXLAN, VLAN, Geneve, GRE bool
	Missing                          map[string]string // kind -> why not
}

// Map is the capabilities as agents report them ({"vxlan": true, ...}).
func (c Capabilities) Map() map[string]any {
	return map[string]any{"bridge": c.Bridge, "vxlan": c.VXLAN, "vlan": c.VLAN, "geneve": c.Geneve, "gre": c.GRE}
}

// Has tells whether kind can be created.
func (c Capabilities) Has(kind string) bool {
	switch kind {
	case "bridge":
		return c.Bridge
	case "vxlan":
		return c.VXLAN
	case "vlan":
		return c.VLAN
	case "geneve":
		return c.Geneve
	case "gre":
		return c.GRE
	}
	return false
}

// Why is the error for a missing capability, said for an operator:
// "this kernel has no 802.1Q support: vlan networks cannot be wired on
// host X (...)".
func (c Capabilities) Why(kind, host string) error {
	what := map[string]string{"vlan": "802.1Q", "vxlan": "VXLAN", "geneve": "Geneve", "gre": "GRE", "bridge": "bridge"}[kind]
	if what == "" {
		what = kind
	}
	msg := fmt.Sprintf("this kernel has no %s support: %s networks cannot be wired on host %s", what, kind, host)
	if r := c.Missing[kind]; r != "" {
		msg += " (" + r + ")"
	}
	return errors.New(msg)
}

// String is "bridge vxlan -vlan -geneve -gre".
func (c Capabilities) String() string {
	var b strings.Builder
	for _, k := range []string{"bridge", "vxlan", "vlan", "geneve", "gre"} {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if !c.Has(k) {
			b.WriteByte('-')
		}
		b.WriteString(k)
	}
	return b.String()
}

// Dump prints links, FDB and neighbour entries in a stable text form, one
// line each, as `ip -d link` / `bridge fdb` / `ip neigh` would say them.
// links filters which links are shown (nil: all).
func Dump(ctx context.Context, k Kernel, show func(Link) bool) (string, error) {
	links, err := k.Links(ctx)
	if err != nil {
		return "", err
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Name < links[j].Name })
	var b strings.Builder
	for _, l := range links {
		if show != nil && !show(l) {
			continue
		}
		fmt.Fprintf(&b, "link %s %s mtu %d", l.Name, l.Kind, l.MTU)
		if l.VXLAN != nil {
			v := l.VXLAN
			fmt.Fprintf(&b, " id %d local %s dstport %d", v.VNI, v.Local, v.Port)
			if !v.Learning {
				b.WriteString(" nolearning")
			}
			if v.Proxy {
				b.WriteString(" proxy")
			}
		}
		if l.VLAN != nil {
			fmt.Fprintf(&b, " vlan %d parent %s", l.VLAN.ID, l.VLAN.Parent)
		}
		if l.Up {
			b.WriteString(" up")
		} else {
			b.WriteString(" down")
		}
		if l.Master != "" {
			fmt.Fprintf(&b, " master %s", l.Master)
		}
		b.WriteByte('\n')
	}
	for _, l := range links {
		if l.Kind != "vxlan" || (show != nil && !show(l)) {
			continue
		}
		fdb, err := k.FDB(ctx, l.Name)
		if err != nil {
			return "", err
		}
		sort.Slice(fdb, func(i, j int) bool {
			if fdb[i].MAC != fdb[j].MAC {
				return fdb[i].MAC < fdb[j].MAC
			}
			return fdb[i].Dst < fdb[j].Dst
		})
		for _, e := range fdb {
			fmt.Fprintf(&b, "fdb %s %s dst %s\n", l.Name, e.MAC, e.Dst)
		}
		ns, err := k.Neighs(ctx, l.Name)
		if err != nil {
			return "", err
		}
		sort.Slice(ns, func(i, j int) bool { return ns[i].IP < ns[j].IP })
		for _, n := range ns {
			fmt.Fprintf(&b, "neigh %s %s lladdr %s\n", l.Name, n.IP, n.MAC)
		}
	}
	return b.String(), nil
}
