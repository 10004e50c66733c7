package ml2

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/stdattr"
	"muon/internal/store"
)

// The core's read models: what features (the agents' sections, a data
// plane's scheduler) read of ports, networks and segments, typed, inside
// their own transaction. No feature decodes the core's documents itself;
// what they change of a port (its status as observed, a late binding) goes
// through the writers below.

// PortInfo is a port as features read it.
type PortInfo struct {
	ID, ProjectID, NetworkID string
	MAC                      string
	AdminStateUp             bool
	Status                   string
	DeviceOwner, DeviceID    string
	// Host is binding:host_id; VNICType and VIFType the binding's.
	Host, VNICType, VIFType string
	FixedIPs                []FixedIP
}

// FixedIP is one of a port's addresses.
type FixedIP struct {
	SubnetID, IP string
}

// Addresses are the port's IP addresses, in fixed_ips order.
func (p PortInfo) Addresses() []string {
	out := make([]string, 0, len(p.FixedIPs))
	for _, f := range p.FixedIPs {
		out = append(out, f.IP)
	}
	return out
}

func portInfo(d resource.Doc) PortInfo {
	p := PortInfo{
		ID: resource.Str(d["id"]), ProjectID: resource.Str(d["project_id"]), NetworkID: resource.Str(d["network_id"]),
		MAC: resource.Str(d["mac_address"]), AdminStateUp: d["admin_state_up"] != false, Status: resource.Str(d["status"]),
		DeviceOwner: resource.Str(d["device_owner"]), DeviceID: resource.Str(d["device_id"]),
		Host: resource.Str(d["binding:host_id"]), VNICType: resource.Str(d["binding:vnic_type"]), VIFType: resource.Str(d["binding:vif_type"]),
	}
	l, _ := d["fixed_ips"].([]any)
	for _, x := range l {
		if m, ok := x.(map[string]any); ok && resource.Str(m["ip_address"]) != "" {
			p.FixedIPs = append(p.FixedIPs, FixedIP{SubnetID: resource.Str(m["subnet_id"]), IP: resource.Str(m["ip_address"])})
		}
	}
	return p
}

// ReadPorts reads ports by id; ports that do not exist are left out.
func ReadPorts(ctx context.Context, tx store.Tx, ids []string) (map[string]PortInfo, error) {
	out := make(map[string]PortInfo, len(ids))
	for chunk := range slices.Chunk(ids, 500) {
		recs, err := tx.List(ctx, store.Filter{Kind: "port", IDs: chunk})
		if err != nil {
			return nil, err
		}
		for i := range recs {
			d, err := record.Decode(&recs[i])
			if err != nil {
				return nil, err
			}
			out[recs[i].ID] = portInfo(d)
		}
	}
	return out, nil
}

// NetworkInfo is a network as features read it.
type NetworkInfo struct {
	ID, ProjectID    string
	MTU              int
	Shared, External bool
}

// ReadNetwork reads a network; false when it does not exist.
func ReadNetwork(ctx context.Context, tx store.Tx, id string) (NetworkInfo, bool, error) {
	rec, err := tx.Get(ctx, "network", id)
	if errors.Is(err, store.ErrNotFound) {
		return NetworkInfo{}, false, nil
	}
	if err != nil {
		return NetworkInfo{}, false, err
	}
	d, err := record.Decode(rec)
	if err != nil {
		return NetworkInfo{}, false, err
	}
	return NetworkInfo{ID: id, ProjectID: rec.ProjectID, MTU: int(resource.IntOf(d["mtu"])),
		Shared: resource.BoolOf(d["shared"]), External: resource.BoolOf(d["router:external"])}, true, nil
}

// SegmentInfo is one of a network's segments.
type SegmentInfo struct {
	ID              string
	NetworkType     string
	PhysicalNetwork string
	SegmentationID  int64
}

// ReadSegments reads a network's segments in creation order.
func ReadSegments(ctx context.Context, tx store.Tx, networkID string) ([]SegmentInfo, error) {
	recs, err := tx.List(ctx, store.Filter{Kind: "segment", Parents: []string{networkID}})
	if err != nil {
		return nil, err
	}
	type seg struct {
		SegmentInfo
		created string
	}
	all := make([]seg, 0, len(recs))
	for i := range recs {
		d, err := record.Decode(&recs[i])
		if err != nil {
			return nil, err
		}
		all = append(all, seg{SegmentInfo{ID: recs[i].ID, NetworkType: resource.Str(d["network_type"]),
			PhysicalNetwork: resource.Str(d["physical_network"]), SegmentationID: resource.IntOf(d["segmentation_id"])},
			resource.Str(d["created_at"])})
	}
	slices.SortStableFunc(all, func(a, b seg) int {
		return cmp.Or(cmp.Compare(a.created, b.created), cmp.Compare(a.ID, b.ID))
	})
	out := make([]SegmentInfo, len(all))
	for i, s := range all {
		out[i] = s.SegmentInfo
	}
	return out, nil
}

// SetPortStatusTx sets a port's status as its host's agent observed it:
// ACTIVE when wired (DOWN all the same if the port is admin down), DOWN
// when not. It is observed state (store.Tx.Observe): the revision moves,
// no host's desired state follows. It tells whether the status changed;
// a port that is gone is no error.
func (p *Plugin) SetPortStatusTx(ctx context.Context, tx store.Tx, id string, wired bool) (bool, error) {
	rec, err := tx.Lock(ctx, "port", id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	d, err := record.Decode(rec)
	if err != nil {
		return false, err
	}
	status := "DOWN"
	if wired && d["admin_state_up"] != false {
		status = "ACTIVE"
	}
	if resource.Str(d["status"]) == status {
		return false, nil
	}
	d["status"] = status
	stdattr.Touch(d, p.now())
	if rec.Doc, err = encode(d); err != nil {
		return false, err
	}
	return true, tx.Observe(ctx, rec)
}

// SetPortBindingTx records a binding found after the port's own request
// (its host's agent came, or came back): the VIF type and details, and
// DOWN until the agent wires it. A port that is gone is no error.
func (p *Plugin) SetPortBindingTx(ctx context.Context, tx store.Tx, id, vifType string, details map[string]any) error {
	rec, err := tx.Lock(ctx, "port", id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	d, err := record.Decode(rec)
	if err != nil {
		return err
	}
	d["binding:vif_type"], d["binding:vif_details"] = vifType, details
	d["status"] = "DOWN"
	stdattr.Touch(d, p.now())
	if rec.Doc, err = encode(d); err != nil {
		return err
	}
	return tx.Update(ctx, rec)
}
