package l3

import (
	"context"
	"net/netip"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/ml2"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/store"
)

// FloatingIPs serves /v2.0/floatingips.
type FloatingIPs struct{ *Plugin }

// Create allocates floating IPs (and associates them when port_id is
// given), all or none.
func (f FloatingIPs) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	return record.CreateAll(ctx, f.core, docs, func(ctx context.Context, tx store.Tx, d resource.Doc) error {
		if err := f.createFIP(ctx, tx, d); err != nil {
			return err
		}
		return f.details(ctx, tx, []resource.Doc{d})
	})
}

func (p *Plugin) createFIP(ctx context.Context, tx store.Tx, d resource.Doc) error {
	netID := resource.Str(d["floating_network_id"])
	if d["fixed_ip_address"] != nil && d["port_id"] == nil {
		return badRequest("floatingip", "fixed_ip_address cannot be specified without a port_id")
	}
	_, nd, err := p.core.NetworkTx(ctx, tx, netID)
	if err != nil {
		return err
	}
	if !resource.BoolOf(nd["router:external"]) {
		return badRequest("floatingip", "Network %s is not a valid external network", netID)
	}
	if err := p.core.Stamp(ctx, d, true); err != nil {
		return err
	}
	if err := p.core.CheckQuota(ctx, tx, "floatingip", resource.Str(d["project_id"])); err != nil {
		return err
	}
	fixed := map[string]any{}
	if v := d["subnet_id"]; v != nil {
		fixed["subnet_id"] = v
	}
	if v, ok := d["floating_ip_address"]; ok && v != nil {
		fixed["ip_address"] = v
	}
	delete(d, "subnet_id")
	port := resource.Doc{"network_id": netID, "device_id": d["id"], "device_owner": ownerFIP}
	if len(fixed) > 0 {
		port["fixed_ips"] = []any{fixed}
	}
	pd, err := p.core.CreatePortTx(ctx, tx, port, "")
	if err != nil {
		return err
	}
	var addr netip.Addr
	for _, f := range fixedIPs(pd) {
		if f.IP.Is4() {
			addr = f.IP
			break
		}
	}
	if !addr.IsValid() {
		return fault.New(400, "ExternalIpAddressExhausted", "Unable to find any IP address on external network %s.", netID)
	}
	d["floating_ip_address"] = addr.String()
	d["floating_port_id"] = pd["id"]
	d["status"] = "DOWN"
	d["router_id"] = nil
	portID, fixedAddr := d["port_id"], d["fixed_ip_address"]
	d["port_id"], d["fixed_ip_address"] = nil, nil
	// The record first: the association's claim refers to it.
	rec, err := record.New("floatingip", d, "", false)
	if err != nil {
		return err
	}
	if err := tx.Insert(ctx, rec); err != nil || portID == nil {
		return err
	}
	if err := p.associate(ctx, tx, d, resource.Str(portID), fixedAddr); err != nil {
		return err
	}
	if rec, err = record.New("floatingip", d, resource.Str(portID), false); err != nil {
		return err
	}
	return tx.Update(ctx, rec)
}

// associate points a floating IP at a port's fixed IPv4 address, which a
// router must connect to the floating IP's network.
func (p *Plugin) associate(ctx context.Context, tx store.Tx, d resource.Doc, portID string, fixedAddr any) error {
	prec, pd, err := p.core.PortTx(ctx, tx, portID, false)
	if err != nil {
		return err
	}
	if !auth.FromContext(ctx).Admin() && prec.ProjectID != resource.Str(d["project_id"]) {
		return badRequest("floatingip", "Cannot process floating IP association with Port %s, since that port is owned by a different tenant", portID)
	}
	var ip fixedIP
	if fixedAddr != nil {
		a, _ := netip.ParseAddr(resource.Str(fixedAddr))
		if !a.Is4() {
			return badRequest("floatingip", "Cannot process floating IP association with %s, since that is not an IPv4 address", fixedAddr)
		}
		for _, f := range fixedIPs(pd) {
			if f.IP == a {
				ip = f
			}
		}
		if !ip.IP.IsValid() {
			return badRequest("floatingip", "Port %s does not have fixed ip %s", portID, fixedAddr)
		}
	} else {
		var v4 []fixedIP
		for _, f := range fixedIPs(pd) {
			if f.IP.Is4() {
				v4 = append(v4, f)
			}
		}
		switch len(v4) {
		case 0:
			return badRequest("floatingip", "Cannot add floating IP to port %s that has no fixed IPv4 addresses", portID)
		case 1:
			ip = v4[0]
		default:
			return badRequest("floatingip", "Port %s has multiple fixed IPv4 addresses.  Must provide a specific IPv4 address when assigning a floating IP", portID)
		}
	}
	fipID, netID := resource.Str(d["id"]), resource.Str(d["floating_network_id"])
	if n, err := tx.Count(ctx, store.Filter{Kind: "port_forwarding", Parents: []string{fipID}}); err != nil {
		return err
	} else if n > 0 {
		return fault.Conflict("FipInUseByPortForwarding", "Floating IP %s in use by Port Forwarding resources.", fipID)
	}
	rid, ok, err := p.routerFor(ctx, tx, ip.SubnetID, netID)
	if err != nil {
		return err
	}
	if !ok {
		return fault.NotFound("ExternalGatewayForFloatingIPNotFound", "External network %s is not reachable from subnet %s.  Therefore, cannot associate Port %s with a Floating IP.", netID, ip.SubnetID, portID)
	}
	claimed, err := tx.ClaimName(ctx, "fip_fixed", portID, ip.IP.String()+"@"+netID, fipID)
	if err != nil {
		return err
	}
	if !claimed {
		return fault.Conflict("FloatingIPPortAlreadyAssociated", "Cannot associate floating IP %s (%s) with port %s using fixed IP %s, as that fixed IP already has a floating IP on external network %s.", d["floating_ip_address"], fipID, portID, ip.IP, netID)
	}
	d["port_id"], d["fixed_ip_address"], d["router_id"] = portID, ip.IP.String(), rid
	return nil
}

// unlink disassociates a floating IP from its port.
func (p *Plugin) unlink(ctx context.Context, tx store.Tx, d resource.Doc) error {
	if d["port_id"] == nil {
		return nil
	}
	if err := tx.ReleaseName(ctx, "fip_fixed", resource.Str(d["port_id"]), resource.Str(d["fixed_ip_address"])+"@"+resource.Str(d["floating_network_id"])); err != nil {
		return err
	}
	d["port_id"], d["fixed_ip_address"], d["router_id"] = nil, nil, nil
	d["status"], d[fipInPlace] = "DOWN", false
	return nil
}

// fipInPlace marks a floating IP its router's agent put in place.
const fipInPlace = "in_place"

// fipStatus is a floating IP's status: ACTIVE once in place, while its
// port (if it has one: a port forwarding's has none) is bound.
func fipStatus(d resource.Doc, portBound bool) string {
	if d[fipInPlace] == true && (d["port_id"] == nil || portBound) {
		return "ACTIVE"
	}
	return "DOWN"
}

// portRebound makes the floating IPs of a port whose binding came or
// went follow it.
func (p *Plugin) portRebound(ctx context.Context, tx store.Tx, e ml2.PortEvent) error {
	if e.Old == nil || resource.Str(e.Old["binding:host_id"]) == resource.Str(e.Port["binding:host_id"]) {
		return nil
	}
	bound := resource.Str(e.Port["binding:host_id"]) != ""
	fips, err := tx.List(ctx, store.Filter{Kind: "floatingip", Parents: []string{resource.Str(e.Port["id"])}})
	if err != nil {
		return err
	}
	for i := range fips {
		d, err := record.Decode(&fips[i])
		if err != nil {
			return err
		}
		if st := fipStatus(d, bound); st != resource.Str(d["status"]) {
			d["status"] = st
			if err := p.core.SaveTx(ctx, tx, &fips[i], d); err != nil {
				return err
			}
		}
	}
	return nil
}

// details fills what floating IPs show of other resources: the
// associated port (fip-port-details) and the port forwardings
// (expose-port-forwarding-in-fip).
func (p *Plugin) details(ctx context.Context, tx store.Tx, fips []resource.Doc) error {
	var portIDs, fipIDs []string
	for _, d := range fips {
		fipIDs = append(fipIDs, resource.Str(d["id"]))
		if id := resource.Str(d["port_id"]); id != "" {
			portIDs = append(portIDs, id)
		}
	}
	ports := map[string]resource.Doc{}
	if len(portIDs) > 0 {
		f := store.Filter{Kind: "port"}
		if len(portIDs) <= 500 {
			f.IDs = portIDs
		}
		recs, docs, err := record.List(ctx, tx, f)
		if err != nil {
			return err
		}
		for i := range recs {
			ports[recs[i].ID] = docs[i]
		}
	}
	pfs := map[string][]any{}
	if len(fipIDs) > 0 {
		f := store.Filter{Kind: "port_forwarding"}
		if len(fipIDs) <= 500 {
			f.Parents = fipIDs
		}
		recs, docs, err := record.List(ctx, tx, f)
		if err != nil {
			return err
		}
		for i, pf := range docs {
			m := map[string]any{"id": pf["id"], "protocol": pf["protocol"], "internal_ip_address": pf["internal_ip_address"]}
			for _, k := range []string{"internal_port", "external_port", "internal_port_range", "external_port_range"} {
				if v, ok := pf[k]; ok {
					m[k] = v
				}
			}
			pfs[recs[i].ParentID] = append(pfs[recs[i].ParentID], m)
		}
	}
	for _, d := range fips {
		d["port_details"] = nil
		if pd, ok := ports[resource.Str(d["port_id"])]; ok {
			d["port_details"] = map[string]any{"name": pd["name"], "network_id": pd["network_id"], "mac_address": pd["mac_address"],
				"admin_state_up": pd["admin_state_up"], "status": pd["status"], "device_id": pd["device_id"], "device_owner": pd["device_owner"]}
		}
		d["port_forwardings"] = pfs[resource.Str(d["id"])]
		if d["port_forwardings"] == nil {
			d["port_forwardings"] = []any{}
		}
	}
	return nil
}

// Get shows one floating IP.
func (f FloatingIPs) Get(ctx context.Context, id string) (resource.Doc, error) {
	var d resource.Doc
	err := f.core.View(ctx, func(tx store.Tx) error {
		var err error
		if _, d, err = ml2.Visible(ctx, tx, "floatingip", id, false, fipNotFound(id)); err != nil {
			return err
		}
		return f.details(ctx, tx, []resource.Doc{d})
	})
	return d, err
}

// List returns the floating IPs the caller may see.
func (f FloatingIPs) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	var out []resource.Doc
	err := f.core.View(ctx, func(tx store.Tx) error {
		fl := record.Owned(ctx, "floatingip")
		fl.IDs = q.Filters["id"]
		fl.Parents = q.Filters["port_id"]
		var err error
		if _, out, err = record.List(ctx, tx, fl); err != nil {
			return err
		}
		return f.details(ctx, tx, out)
	})
	return out, err
}

// Update associates (port_id), disassociates (port_id null) or describes
// a floating IP.
func (f FloatingIPs) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	var out resource.Doc
	err := f.core.Update(ctx, func(tx store.Tx) error {
		rec, d, err := ml2.LockOwned(ctx, tx, "floatingip", id, "update", ifRev, fipNotFound(id))
		if err != nil {
			return err
		}
		before := rec.Doc
		patch := resource.Clone(patch)
		portID, hasPort := patch["port_id"]
		fixedAddr, hasFixed := patch["fixed_ip_address"]
		delete(patch, "port_id")
		delete(patch, "fixed_ip_address")
		if hasFixed && fixedAddr != nil && (!hasPort || portID == nil) {
			return badRequest("floatingip", "fixed_ip_address cannot be specified without a port_id")
		}
		if hasPort {
			if err := f.unlink(ctx, tx, d); err != nil {
				return err
			}
			if portID != nil {
				if err := f.associate(ctx, tx, d, resource.Str(portID), fixedAddr); err != nil {
					return err
				}
			}
		}
		for k, v := range patch {
			d[k] = v
		}
		rec.ParentID = resource.Str(d["port_id"])
		if err := f.save(ctx, tx, rec, d, before); err != nil {
			return err
		}
		out = d
		return f.details(ctx, tx, []resource.Doc{d})
	})
	return out, err
}

// Delete releases a floating IP: its address, port forwardings and
// association go with it.
func (f FloatingIPs) Delete(ctx context.Context, id string, ifRev int64) error {
	return f.core.Update(ctx, func(tx store.Tx) error {
		_, d, err := ml2.LockOwned(ctx, tx, "floatingip", id, "delete", ifRev, fipNotFound(id))
		if err != nil {
			return err
		}
		return f.deleteFIP(ctx, tx, d)
	})
}

// deleteFIP removes a floating IP with its port forwardings, association
// and port.
func (p *Plugin) deleteFIP(ctx context.Context, tx store.Tx, d resource.Doc) error {
	id := resource.Str(d["id"])
	pfs, err := tx.List(ctx, store.Filter{Kind: "port_forwarding", Parents: []string{id}})
	if err != nil {
		return err
	}
	for i := range pfs {
		if err := tx.Delete(ctx, "port_forwarding", pfs[i].ID); err != nil {
			return err
		}
	}
	if err := p.unlink(ctx, tx, d); err != nil {
		return err
	}
	if pid := resource.Str(d["floating_port_id"]); pid != "" {
		if err := p.core.DeletePortTx(ctx, tx, pid); err != nil {
			return err
		}
	}
	return tx.Delete(ctx, "floatingip", id)
}
