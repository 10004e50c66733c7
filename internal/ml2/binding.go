package ml2

import (
	"context"

	"muon/internal/resource"
	"muon/internal/store"
)

// Binder binds ports to hosts, as ML2's mechanism drivers do: it knows
// the hosts' agents and what segments they reach (internal/agents).
type Binder interface {
	// Bind chooses a port's binding on its binding:host_id ("" unbinds)
	// and records it; it runs in the port's transaction after the port's
	// record is written. It returns binding:vif_type ("bridge",
	// "binding_failed", "unbound") and binding:vif_details.
	Bind(ctx context.Context, tx store.Tx, b BindRequest) (vifType string, details map[string]any, err error)
}

// BindRequest is the port a binder binds.
type BindRequest struct {
	PortID, NetworkID string
	Host              string // binding:host_id; "" unbinds
	VNICType          string
}

// UseBinder makes ports bind through b. Without one, a port with a host
// binds as "bridge" on any network type but geneve, agent or not.
func (p *Plugin) UseBinder(b Binder) { p.binder = b }

// bind sets the port binding attributes.
func (p *Plugin) bind(ctx context.Context, tx store.Tx, d, net resource.Doc) error {
	if p.binder != nil {
		vt, det, err := p.binder.Bind(ctx, tx, BindRequest{PortID: resource.Str(d["id"]), NetworkID: resource.Str(net["id"]),
			Host: resource.Str(d["binding:host_id"]), VNICType: resource.Str(d["binding:vnic_type"])})
		if err != nil {
			return err
		}
		if det == nil {
			det = map[string]any{}
		}
		d["binding:vif_type"], d["binding:vif_details"] = vt, det
		return nil
	}
	host := resource.Str(d["binding:host_id"])
	switch {
	case host == "":
		d["binding:vif_type"] = "unbound"
		d["binding:vif_details"] = map[string]any{}
	case resource.Str(d["binding:vnic_type"]) != "normal" || resource.Str(net["provider:network_type"]) == "geneve":
		d["binding:vif_type"] = "binding_failed"
		d["binding:vif_details"] = map[string]any{}
	default:
		d["binding:vif_type"] = "bridge"
		d["binding:vif_details"] = map[string]any{"port_filter": true, "connectivity": "l2"}
	}
	return nil
}
