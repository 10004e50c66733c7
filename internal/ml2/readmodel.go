package ml2

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

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
	// Hostname is the port's name in DNS (dns_assignment's: dns_name,
	// else "host-" and its first address).
	Hostname      string
	ExtraDHCPOpts []ExtraDHCPOpt
	// Blocks are the provisioning entities the port waits for.
	Blocks []string
}

// ExtraDHCPOpt is one of a port's extra_dhcp_opts.
type ExtraDHCPOpt struct {
	Name, Value string
	IPVersion   int
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
	if l, _ := d["dns_assignment"].([]any); len(l) > 0 {
		if m, ok := l[0].(map[string]any); ok {
			p.Hostname = resource.Str(m["hostname"])
		}
	}
	opts, _ := d["extra_dhcp_opts"].([]any)
	for _, x := range opts {
		if m, ok := x.(map[string]any); ok {
			v := int(resource.IntOf(m["ip_version"]))
			if v == 0 {
				v = 4
			}
			p.ExtraDHCPOpts = append(p.ExtraDHCPOpts, ExtraDHCPOpt{Name: resource.Str(m["opt_name"]), Value: resource.Str(m["opt_value"]), IPVersion: v})
		}
	}
	if b := resource.Strings(d[provisioningBlocks]); len(b) > 0 {
		p.Blocks = b
	}
	return p
}

// ReadPortsOfNetworks reads every port of the given networks, by network,
// each in id order, 500 networks a query.
func ReadPortsOfNetworks(ctx context.Context, tx store.Tx, networkIDs []string) (map[string][]PortInfo, error) {
	return readByNetwork(ctx, tx, "port", networkIDs, decodePort)
}

// ReadSubnetsOfNetworks reads the subnets of the given networks, by
// network, each in id order, 500 networks a query.
func ReadSubnetsOfNetworks(ctx context.Context, tx store.Tx, networkIDs []string) (map[string][]SubnetInfo, error) {
	return readByNetwork(ctx, tx, "subnet", networkIDs, func(r *store.Record) (SubnetInfo, error) {
		d, err := record.Decode(r)
		return subnetInfo(d), err
	})
}

func readByNetwork[T any](ctx context.Context, tx store.Tx, kind string, networkIDs []string, read func(*store.Record) (T, error)) (map[string][]T, error) {
	out := make(map[string][]T, len(networkIDs))
	for chunk := range slices.Chunk(networkIDs, 500) {
		recs, err := tx.List(ctx, store.Filter{Kind: kind, Parents: chunk})
		if err != nil {
			return nil, err
		}
		for i := range recs {
			v, err := read(&recs[i])
			if err != nil {
				return nil, err
			}
			out[recs[i].ParentID] = append(out[recs[i].ParentID], v)
		}
	}
	return out, nil
}

// SubnetInfo is a subnet as features read it.
type SubnetInfo struct {
	ID, NetworkID, ProjectID string
	IPVersion                int
	CIDR, GatewayIP          string
	EnableDHCP               bool
	DNSNameservers           []string
	HostRoutes               []HostRoute
	IPv6RAMode, IPv6AddrMode string
}

// HostRoute is one of a subnet's host_routes.
type HostRoute struct{ Destination, NextHop string }

// ReadSubnets reads a network's subnets, in id order.
func ReadSubnets(ctx context.Context, tx store.Tx, networkID string) ([]SubnetInfo, error) {
	recs, err := tx.List(ctx, store.Filter{Kind: "subnet", Parents: []string{networkID}})
	if err != nil {
		return nil, err
	}
	out := make([]SubnetInfo, 0, len(recs))
	for i := range recs {
		d, err := record.Decode(&recs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, subnetInfo(d))
	}
	slices.SortFunc(out, func(a, b SubnetInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// SubnetOf reads a subnet event's document as features read it.
func SubnetOf(d resource.Doc) SubnetInfo { return subnetInfo(d) }

func subnetInfo(d resource.Doc) SubnetInfo {
	s := SubnetInfo{ID: resource.Str(d["id"]), NetworkID: resource.Str(d["network_id"]), ProjectID: resource.Str(d["project_id"]),
		IPVersion: int(resource.IntOf(d["ip_version"])), CIDR: resource.Str(d["cidr"]), GatewayIP: resource.Str(d["gateway_ip"]),
		EnableDHCP: d["enable_dhcp"] != false, DNSNameservers: resource.Strings(d["dns_nameservers"]),
		IPv6RAMode: resource.Str(d["ipv6_ra_mode"]), IPv6AddrMode: resource.Str(d["ipv6_address_mode"])}
	routes, _ := d["host_routes"].([]any)
	for _, x := range routes {
		if m, ok := x.(map[string]any); ok {
			s.HostRoutes = append(s.HostRoutes, HostRoute{Destination: resource.Str(m["destination"]), NextHop: resource.Str(m["nexthop"])})
		}
	}
	return s
}

// PortOf reads a port event's document as features read it.
func PortOf(d resource.Doc) PortInfo { return portInfo(d) }

// portDoc is what of a port's document PortInfo holds, decoded straight
// into fields (a read model of 10,000 ports decodes no maps).
type portDoc struct {
	ID           string `json:"id"`
	ProjectID    string `json:"project_id"`
	NetworkID    string `json:"network_id"`
	MAC          string `json:"mac_address"`
	AdminStateUp *bool  `json:"admin_state_up"`
	Status       string `json:"status"`
	DeviceOwner  string `json:"device_owner"`
	DeviceID     string `json:"device_id"`
	Host         string `json:"binding:host_id"`
	VNICType     string `json:"binding:vnic_type"`
	VIFType      string `json:"binding:vif_type"`
	FixedIPs     []struct {
		SubnetID  string `json:"subnet_id"`
		IPAddress string `json:"ip_address"`
	} `json:"fixed_ips"`
	DNSAssignment []struct {
		Hostname string `json:"hostname"`
	} `json:"dns_assignment"`
	ExtraDHCPOpts []struct {
		Name      string `json:"opt_name"`
		Value     string `json:"opt_value"`
		IPVersion any    `json:"ip_version"`
	} `json:"extra_dhcp_opts"`
	Blocks []string `json:"provisioning_blocks"`
}

// decodePort reads a port record as PortInfo.
func decodePort(r *store.Record) (PortInfo, error) {
	var d portDoc
	if err := json.Unmarshal(r.Doc, &d); err != nil {
		return PortInfo{}, fmt.Errorf("port %s: %w", r.ID, err)
	}
	p := PortInfo{ID: cmp.Or(d.ID, r.ID), ProjectID: d.ProjectID, NetworkID: d.NetworkID, MAC: d.MAC,
		AdminStateUp: d.AdminStateUp == nil || *d.AdminStateUp, Status: d.Status, DeviceOwner: d.DeviceOwner,
		DeviceID: d.DeviceID, Host: d.Host, VNICType: d.VNICType, VIFType: d.VIFType, Blocks: d.Blocks}
	for _, f := range d.FixedIPs {
		if f.IPAddress != "" {
			p.FixedIPs = append(p.FixedIPs, FixedIP{SubnetID: f.SubnetID, IP: f.IPAddress})
		}
	}
	if len(d.DNSAssignment) > 0 {
		p.Hostname = d.DNSAssignment[0].Hostname
	}
	for _, o := range d.ExtraDHCPOpts {
		v := int(resource.IntOf(o.IPVersion))
		if v == 0 {
			v = 4
		}
		p.ExtraDHCPOpts = append(p.ExtraDHCPOpts, ExtraDHCPOpt{Name: o.Name, Value: o.Value, IPVersion: v})
	}
	return p, nil
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
			p, err := decodePort(&recs[i])
			if err != nil {
				return nil, err
			}
			out[recs[i].ID] = p
		}
	}
	return out, nil
}

// NetworkInfo is a network as features read it.
type NetworkInfo struct {
	ID, ProjectID    string
	MTU              int
	Shared, External bool
	// DNSDomain is the network's dns_domain, else the cloud's (with a
	// trailing dot).
	DNSDomain string
}

// ReadNetwork reads a network; false when it does not exist.
func (p *Plugin) ReadNetwork(ctx context.Context, tx store.Tx, id string) (NetworkInfo, bool, error) {
	n, ok, err := ReadNetwork(ctx, tx, id)
	if n.DNSDomain == "" {
		n.DNSDomain = p.cfg.DNSDomain
	}
	return n, ok, err
}

// ReadNetwork reads a network; false when it does not exist. Its
// DNSDomain is only its own (Plugin.ReadNetwork fills in the cloud's).
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
	dom := resource.Str(d["dns_domain"])
	if dom != "" && !strings.HasSuffix(dom, ".") {
		dom += "."
	}
	return NetworkInfo{ID: id, ProjectID: rec.ProjectID, MTU: int(resource.IntOf(d["mtu"])),
		Shared: resource.BoolOf(d["shared"]), External: resource.BoolOf(d["router:external"]), DNSDomain: dom}, true, nil
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
// ACTIVE when wired and no provisioning block is left (DOWN all the same
// if the port is admin down), DOWN when not wired. It is observed state
// (store.Tx.Observe): the revision moves, no host's desired state
// follows. It tells whether the status changed; a port that is gone is no
// error.
func (p *Plugin) SetPortStatusTx(ctx context.Context, tx store.Tx, id string, wired bool) (bool, error) {
	return p.observePort(ctx, tx, id, func(d resource.Doc) { d[provisioningWired] = wired })
}

// Provisioning blocks, as Neutron's: a feature that must also be ready
// for a port before it can carry traffic (DHCP serving its lease) adds
// its entity to the port as the port is created or readdressed; the port
// goes ACTIVE when it is wired and every entity said it is done. They are
// hidden attributes of the port, so they commit with it.
const (
	provisioningBlocks = "provisioning_blocks"
	provisioningWired  = "provisioning_wired"
)

// AddProvisioningBlock makes a port about to be saved (a PortCreate or
// PortUpdate event's Port) wait for entity before it goes ACTIVE. A port
// ACTIVE already stays so (a new address is served while the old one
// still works, as Neutron's).
func AddProvisioningBlock(port resource.Doc, entity string) {
	l := resource.Strings(port[provisioningBlocks])
	if !slices.Contains(l, entity) {
		port[provisioningBlocks] = resource.List(append(l, entity))
	}
}

// ProvisioningCompleteTx tells that entity is done with a port: with no
// other block left and the port wired, it goes ACTIVE. It tells whether
// the status changed; a port that is gone or was not blocked is no error.
func (p *Plugin) ProvisioningCompleteTx(ctx context.Context, tx store.Tx, id, entity string) (bool, error) {
	return p.observePort(ctx, tx, id, func(d resource.Doc) {
		l := resource.Strings(d[provisioningBlocks])
		if i := slices.Index(l, entity); i >= 0 {
			l = slices.Delete(l, i, i+1)
		}
		if len(l) == 0 {
			delete(d, provisioningBlocks)
		} else {
			d[provisioningBlocks] = resource.List(l)
		}
	})
}

// ProvisioningBlocked tells whether a port waits for entity.
func ProvisioningBlocked(port PortInfo, entity string) bool {
	return slices.Contains(port.Blocks, entity)
}

// observePort changes a port's observed state with fn and sets its status
// from it.
func (p *Plugin) observePort(ctx context.Context, tx store.Tx, id string, fn func(resource.Doc)) (bool, error) {
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
	before, _ := encode(d)
	fn(d)
	status := resource.Str(d["status"]) // wired, up and blocked: as it was
	switch {
	case d[provisioningWired] != true || d["admin_state_up"] == false:
		status = "DOWN"
	case len(resource.Strings(d[provisioningBlocks])) == 0:
		status = "ACTIVE"
	}
	changed := resource.Str(d["status"]) != status
	d["status"] = status
	if rec.Doc, err = encode(d); err != nil {
		return false, err
	}
	if !changed {
		if string(before) == string(rec.Doc) {
			return false, nil
		}
		// Only what is hidden moved: no revision for it.
		return false, tx.Observe(ctx, rec)
	}
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
	d["status"], d[provisioningWired] = "DOWN", false
	stdattr.Touch(d, p.now())
	if rec.Doc, err = encode(d); err != nil {
		return err
	}
	return tx.Update(ctx, rec)
}
