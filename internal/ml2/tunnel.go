package ml2

import (
	"context"

	"muon/internal/fault"
	"muon/internal/store"
)

// MaxVNI is the largest 24-bit tunnel network identifier (VXLAN, Geneve).
const MaxVNI = 1<<24 - 1

// Tunnel is what tunnelled type drivers share: segments with a 24-bit VNI
// from configured ranges and no physical network.
type Tunnel struct {
	Type   string  // "vxlan"
	Ranges []Range // tenant VNIs
}

// CheckRanges refuses configured ranges outside 1-MaxVNI.
func (t Tunnel) CheckRanges() error {
	for _, r := range t.Ranges {
		if r.Min < 1 || r.Max > MaxVNI {
			return fault.InvalidInput("%s vni range %d:%d is outside 1-%d", t.Type, r.Min, r.Max, MaxVNI)
		}
	}
	return nil
}

// Validate checks a provider segment of the tunnel type.
func (t Tunnel) Validate(seg Segment) error {
	if seg.PhysicalNetwork != "" {
		return fault.InvalidInput("provider:physical_network specified for %s network", t.Type)
	}
	if seg.SegmentationID != 0 && (seg.SegmentationID < 1 || seg.SegmentationID > MaxVNI) {
		return fault.InvalidInput("provider:segmentation_id out of range (1 through %d)", MaxVNI)
	}
	return nil
}

// Reserve claims the segment's VNI, or the lowest free one for a tenant
// network.
func (t Tunnel) Reserve(ctx context.Context, tx store.Tx, seg *Segment, networkID string) error {
	if seg.SegmentationID != 0 {
		return ClaimID(ctx, tx, seg, networkID, fault.Conflict("TunnelIdInUse",
			"Unable to create the network. The tunnel ID %d is in use.", seg.SegmentationID))
	}
	return AllocateID(ctx, tx, seg, networkID, t.Ranges)
}
