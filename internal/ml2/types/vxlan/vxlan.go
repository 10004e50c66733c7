// Package vxlan is the ML2 "vxlan" type: tunnelled segments with 24-bit VNIs
// and 50 bytes of IPv4 encapsulation overhead.
package vxlan

import (
	"context"

	"muon/internal/fault"
	"muon/internal/ml2"
	"muon/internal/store"
)

func init() { ml2.RegisterType("vxlan", New) }

// Overhead is VXLAN's encapsulation cost over IPv4: outer IP, UDP, VXLAN
// and inner Ethernet headers.
const Overhead = 50

// MaxVNI is the largest 24-bit VXLAN network identifier.
const MaxVNI = 1<<24 - 1

// New builds the vxlan type driver.
func New(cfg ml2.TypeConfig) (ml2.TypeDriver, error) {
	for _, r := range cfg.VNIRanges {
		if r.Min < 1 || r.Max > MaxVNI {
			return nil, fault.InvalidInput("vxlan vni range %d:%d is outside 1-%d", r.Min, r.Max, MaxVNI)
		}
	}
	return &driver{cfg: cfg}, nil
}

type driver struct{ cfg ml2.TypeConfig }

func (d *driver) Validate(seg ml2.Segment) error {
	if seg.PhysicalNetwork != "" {
		return fault.InvalidInput("provider:physical_network specified for vxlan network")
	}
	if seg.SegmentationID != 0 && (seg.SegmentationID < 1 || seg.SegmentationID > MaxVNI) {
		return fault.InvalidInput("provider:segmentation_id out of range (1 through %d)", MaxVNI)
	}
	return nil
}

func (d *driver) Reserve(ctx context.Context, tx store.Tx, seg *ml2.Segment, networkID string) error {
	if seg.SegmentationID != 0 {
		return ml2.ClaimID(ctx, tx, seg, networkID, fault.Conflict("TunnelIdInUse",
			"Unable to create the network. The tunnel ID %d is in use.", seg.SegmentationID))
	}
	return ml2.AllocateID(ctx, tx, seg, networkID, d.cfg.VNIRanges)
}

func (d *driver) MTU(ml2.Segment) int { return d.cfg.TunnelMTU() - Overhead }
