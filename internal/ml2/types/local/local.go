// Package local is the ML2 "local" type: a network confined to one host,
// with no physical network and no segmentation ID.
package local

import (
	"context"

	"muon/internal/fault"
	"muon/internal/ml2"
	"muon/internal/store"
)

func init() { ml2.RegisterType("local", New) }

// New builds the local type driver.
func New(cfg ml2.TypeConfig) (ml2.TypeDriver, error) { return &driver{cfg: cfg}, nil }

type driver struct{ cfg ml2.TypeConfig }

func (d *driver) Validate(seg ml2.Segment) error {
	if seg.PhysicalNetwork != "" || seg.SegmentationID != 0 {
		return fault.InvalidInput("provider:physical_network and provider:segmentation_id are prohibited for local provider network")
	}
	return nil
}

func (d *driver) Reserve(context.Context, store.Tx, *ml2.Segment, string) error { return nil }

func (d *driver) MTU(ml2.Segment) int { return d.cfg.GlobalPhysnetMTU }
