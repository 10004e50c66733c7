// Package flat is the ML2 "flat" type: an untagged physical network, at most
// one network per physnet.
package flat

import (
	"context"
	"slices"

	"muon/internal/fault"
	"muon/internal/ml2"
	"muon/internal/store"
)

func init() { ml2.RegisterType("flat", New) }

// New builds the flat type driver.
func New(cfg ml2.TypeConfig) (ml2.TypeDriver, error) { return &driver{cfg: cfg}, nil }

type driver struct{ cfg ml2.TypeConfig }

func (d *driver) Validate(seg ml2.Segment) error {
	if seg.PhysicalNetwork == "" {
		return fault.InvalidInput("physical_network required for flat provider network")
	}
	if seg.SegmentationID != 0 {
		return fault.InvalidInput("segmentation_id prohibited for flat provider network")
	}
	if !slices.Contains(d.cfg.FlatNetworks, "*") && !slices.Contains(d.cfg.FlatNetworks, seg.PhysicalNetwork) {
		return fault.InvalidInput("physical_network '%s' unknown for flat provider network", seg.PhysicalNetwork)
	}
	return nil
}

func (d *driver) Reserve(ctx context.Context, tx store.Tx, seg *ml2.Segment, networkID string) error {
	if seg.PhysicalNetwork == "" {
		return fault.New(503, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.")
	}
	return ml2.ClaimID(ctx, tx, seg, networkID, fault.Conflict("FlatNetworkInUse",
		"Unable to create the flat network. Physical network %s is in use.", seg.PhysicalNetwork))
}

func (d *driver) MTU(seg ml2.Segment) int { return d.cfg.PhysnetMTU(seg.PhysicalNetwork) }
