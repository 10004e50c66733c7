package ml2

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"muon/internal/fault"
	"muon/internal/store"
)

// Segment is one L2 segment of a network.
type Segment struct {
	ID              string
	NetworkType     string
	PhysicalNetwork string // "" when the type has none
	SegmentationID  int64  // 0 when the type has none
}

// TypeDriver is an ML2 type driver: it validates provider segments, hands
// out segmentation IDs for tenant networks and knows the MTU its
// encapsulation leaves.
type TypeDriver interface {
	// Validate checks a requested provider segment, filling nothing.
	Validate(seg Segment) error
	// Reserve claims seg's segmentation ID in tx: the one given, or for a
	// zero ID (tenant networks) a free one from the configured ranges.
	Reserve(ctx context.Context, tx store.Tx, seg *Segment, networkID string) error
	// MTU is the largest MTU a network on this segment can carry.
	MTU(seg Segment) int
}

// TypeConfig is the configuration every type driver is built from.
type TypeConfig struct {
	// GlobalPhysnetMTU is the MTU of the underlying physical networks
	// (Neutron's global_physnet_mtu); PhysnetMTUs overrides per physnet.
	GlobalPhysnetMTU int
	PhysnetMTUs      map[string]int
	// PathMTU is the underlay MTU for tunnels (0: GlobalPhysnetMTU).
	PathMTU int
	// FlatNetworks lists physnets allowed for flat networks ("*": any).
	FlatNetworks []string
	// VLANRanges maps a physnet to its tenant VLAN ranges; a physnet with
	// no ranges may only carry provider networks.
	VLANRanges   map[string][]Range
	VNIRanges    []Range // vxlan
	GeneveRanges []Range // geneve VNIs
	// GeneveMaxHeader is geneve's max_header_size (Neutron's default 30).
	GeneveMaxHeader int
}

// Range is an inclusive range of segmentation IDs.
type Range struct{ Min, Max int64 }

// ParseRanges reads "1:1000,2000:2100" style ranges.
func ParseRanges(s string) ([]Range, error) {
	var out []Range
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, ok := strings.Cut(part, ":")
		a, err1 := strconv.ParseInt(lo, 10, 64)
		b, err2 := strconv.ParseInt(hi, 10, 64)
		if !ok || err1 != nil || err2 != nil || a > b {
			return nil, fmt.Errorf("bad range %q: want MIN:MAX", part)
		}
		out = append(out, Range{a, b})
	}
	return out, nil
}

// PhysnetMTU is the MTU of a physical network.
func (c TypeConfig) PhysnetMTU(physnet string) int {
	if m, ok := c.PhysnetMTUs[physnet]; ok {
		return m
	}
	return c.GlobalPhysnetMTU
}

// TunnelMTU is the underlay MTU for tunnelled types.
func (c TypeConfig) TunnelMTU() int {
	if c.PathMTU > 0 {
		return min(c.PathMTU, c.GlobalPhysnetMTU)
	}
	return c.GlobalPhysnetMTU
}

// TypeFactory builds a type driver from configuration.
type TypeFactory func(cfg TypeConfig) (TypeDriver, error)

var typeRegistry = map[string]TypeFactory{}

// RegisterType adds a type driver constructor; call it from init only.
func RegisterType(name string, f TypeFactory) {
	if _, dup := typeRegistry[name]; dup {
		panic("ml2: type driver " + name + " registered twice")
	}
	typeRegistry[name] = f
}

// TypeNames lists the registered type drivers.
func TypeNames() []string {
	names := make([]string, 0, len(typeRegistry))
	for n := range typeRegistry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// AllocateID claims the lowest free ID of ranges for a type and physnet.
// Under concurrent writers a claim may lose; it then tries the next.
func AllocateID(ctx context.Context, tx store.Tx, seg *Segment, networkID string, ranges []Range) error {
	used, err := tx.SegmentIDs(ctx, seg.NetworkType, seg.PhysicalNetwork)
	if err != nil {
		return err
	}
	for _, r := range ranges {
		for id := r.Min; id <= r.Max; id++ {
			if _, taken := slices.BinarySearch(used, id); taken {
				continue
			}
			ok, err := tx.ClaimSegment(ctx, store.SegmentAllocation{
				NetworkType: seg.NetworkType, PhysicalNetwork: seg.PhysicalNetwork,
				SegmentationID: id, SegmentID: seg.ID, NetworkID: networkID,
			})
			if err != nil {
				return err
			}
			if ok {
				seg.SegmentationID = id
				return nil
			}
		}
	}
	return fault.New(503, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.")
}

// ClaimID claims a provider network's given ID, or answers the type's
// in-use fault.
func ClaimID(ctx context.Context, tx store.Tx, seg *Segment, networkID string, inUse *fault.Error) error {
	ok, err := tx.ClaimSegment(ctx, store.SegmentAllocation{
		NetworkType: seg.NetworkType, PhysicalNetwork: seg.PhysicalNetwork,
		SegmentationID: seg.SegmentationID, SegmentID: seg.ID, NetworkID: networkID,
	})
	if err != nil {
		return err
	}
	if !ok {
		return inUse
	}
	return nil
}

// InRanges tells whether id lies in one of ranges.
func InRanges(id int64, ranges []Range) bool {
	for _, r := range ranges {
		if id >= r.Min && id <= r.Max {
			return true
		}
	}
	return false
}
