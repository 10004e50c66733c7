// Package vlan is the ML2 "vlan" type: 802.1Q-tagged segments of physical
// networks, VLAN IDs 1-4094, tenant ranges per physnet.
package vlan

import (
	"context"
	"sort"

	"muon/internal/fault"
	"muon/internal/ml2"
	"muon/internal/store"
)

func init() { ml2.RegisterType("vlan", New) }

// New builds the vlan type driver.
func New(cfg ml2.TypeConfig) (ml2.TypeDriver, error) {
	for p, rs := range cfg.VLANRanges {
		for _, r := range rs {
			if r.Min < 1 || r.Max > 4094 {
				return nil, fault.InvalidInput("vlan range %d:%d of %s is outside 1-4094", r.Min, r.Max, p)
			}
		}
	}
	return &driver{cfg: cfg}, nil
}

type driver struct{ cfg ml2.TypeConfig }

func (d *driver) Validate(seg ml2.Segment) error {
	if seg.PhysicalNetwork == "" {
		return fault.InvalidInput("physical_network required for VLAN provider network")
	}
	if _, ok := d.cfg.VLANRanges[seg.PhysicalNetwork]; !ok {
		return fault.InvalidInput("physical_network '%s' unknown for VLAN provider network", seg.PhysicalNetwork)
	}
	if seg.SegmentationID != 0 && (seg.SegmentationID < 1 || seg.SegmentationID > 4094) {
		return fault.InvalidInput("provider:segmentation_id out of range (1 through 4094)")
	}
	return nil
}

func (d *driver) Reserve(ctx context.Context, tx store.Tx, seg *ml2.Segment, networkID string) error {
	if seg.SegmentationID != 0 {
		return ml2.ClaimID(ctx, tx, seg, networkID, fault.Conflict("VlanIdInUse",
			"Unable to create the network. The VLAN %d on physical network %s is in use.", seg.SegmentationID, seg.PhysicalNetwork))
	}
	physnets := make([]string, 0, len(d.cfg.VLANRanges))
	for p := range d.cfg.VLANRanges {
		if seg.PhysicalNetwork == "" || p == seg.PhysicalNetwork {
			physnets = append(physnets, p)
		}
	}
	sort.Strings(physnets)
	for _, p := range physnets {
		s := *seg
		s.PhysicalNetwork = p
		err := ml2.AllocateID(ctx, tx, &s, networkID, d.cfg.VLANRanges[p])
		if f, ok := fault.As(err); ok && f.Type == "NoNetworkAvailable" {
			continue
		}
		if err != nil {
			return err
		}
		*seg = s
		return nil
	}
	return fault.New(503, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.")
}

func (d *driver) MTU(seg ml2.Segment) int { return d.cfg.PhysnetMTU(seg.PhysicalNetwork) }
