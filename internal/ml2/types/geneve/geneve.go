// Package geneve is the ML2 "geneve" type: tunnelled segments with 24-bit
// VNIs whose overhead depends on the configured maximum header size.
package geneve

import "muon/internal/ml2"

func init() { ml2.RegisterType("geneve", New) }

// ipv4Header is the outer IPv4 header the underlay adds.
const ipv4Header = 20

// New builds the geneve type driver.
func New(cfg ml2.TypeConfig) (ml2.TypeDriver, error) {
	if cfg.GeneveMaxHeader == 0 {
		cfg.GeneveMaxHeader = 30
	}
	d := &driver{Tunnel: ml2.Tunnel{Type: "geneve", Ranges: cfg.GeneveRanges}, cfg: cfg}
	if err := d.CheckRanges(); err != nil {
		return nil, err
	}
	return d, nil
}

type driver struct {
	ml2.Tunnel
	cfg ml2.TypeConfig
}

func (d *driver) MTU(ml2.Segment) int { return d.cfg.TunnelMTU() - d.cfg.GeneveMaxHeader - ipv4Header }
