// Package vxlan is the ML2 "vxlan" type: tunnelled segments with 24-bit VNIs
// and 50 bytes of IPv4 encapsulation overhead.
package vxlan

import "muon/internal/ml2"

func init() { ml2.RegisterType("vxlan", New) }

// Overhead is VXLAN's encapsulation cost over IPv4: outer IP, UDP, VXLAN
// and inner Ethernet headers.
const Overhead = 50

// New builds the vxlan type driver.
func New(cfg ml2.TypeConfig) (ml2.TypeDriver, error) {
	d := &driver{Tunnel: ml2.Tunnel{Type: "vxlan", Ranges: cfg.VNIRanges}, cfg: cfg}
	if err := d.CheckRanges(); err != nil {
		return nil, err
	}
	return d, nil
}

type driver struct {
	ml2.Tunnel
	cfg ml2.TypeConfig
}

func (d *driver) MTU(ml2.Segment) int { return d.cfg.TunnelMTU() - Overhead }
