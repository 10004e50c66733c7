// Package geneve is the ML2 "geneve" type: tunnelled segments with 24-bit
// VNIs whose overhead depends on the configured maximum header size.
package geneve

import (
	"context"

	"muon/internal/fault"
	"muon/internal/ml2"
	"muon/internal/store"
)

func init() { ml2.RegisterType("geneve", New) }

// MaxVNI is the largest 24-bit Geneve network identifier.
const MaxVNI = 1<<24 - 1

// ipv4Header is the outer IPv4 header the underlay adds.
const ipv4Header = 20

// New builds the geneve type driver.
func New(cfg ml2.TypeConfig) (ml2.TypeDriver, error) {
	if cfg.GeneveMaxHeader == 0 {
		cfg.GeneveMaxHeader = 30
	}
	for _, r := range cfg.GeneveRanges {
		if r.Min < 1 || r.Max > MaxVNI {
			return nil, fault.InvalidInput("geneve vni range %d:%d is outside 1-%d", r.Min, r.Max, MaxVNI)
		}
	}
	return &driver{cfg: cfg}, nil
}

type driver struct{ cfg ml2.TypeConfig }

func (d *driver) Validate(seg ml2.Segment) error {
	if seg.PhysicalNetwork != "" {
		return fault.InvalidInput("provider:physical_network specified for geneve network")
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
	return ml2.AllocateID(ctx, tx, seg, networkID, d.cfg.GeneveRanges)
}

func (d *driver) MTU(ml2.Segment) int { return d.cfg.TunnelMTU() - d.cfg.GeneveMaxHeader - ipv4Header }
