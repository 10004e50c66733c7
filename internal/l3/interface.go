package l3

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/ml2"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/store"
)

// interfaceInfo is the body of add/remove_router_interface.
type interfaceInfo struct {
	SubnetID, PortID string
}

func parseInterfaceInfo(body []byte, removal bool) (interfaceInfo, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return interfaceInfo{}, badRequest("router", "Interface info must be a dict")
	}
	var in interfaceInfo
	for k, v := range m {
		s, _ := v.(string)
		if _, err := resource.UUID.Convert(v); err != nil {
			return in, badRequest("router", "%v", err)
		}
		switch k {
		case "subnet_id":
			in.SubnetID = s
		case "port_id":
			in.PortID = s
		}
	}
	switch {
	case in.SubnetID == "" && in.PortID == "":
		return in, badRequest("router", "Either subnet_id or port_id must be specified")
	case in.SubnetID != "" && in.PortID != "" && !removal:
		return in, badRequest("router", "Cannot specify both subnet_id and port_id")
	}
	return in, nil
}

// interfaceDoc is what the interface actions answer.
func interfaceDoc(rd, port resource.Doc, subnets []string) map[string]any {
	first := ""
	if len(subnets) > 0 {
		first = subnets[0]
	}
	return map[string]any{"id": rd["id"], "tenant_id": rd["project_id"], "project_id": rd["project_id"],
		"port_id": port["id"], "network_id": port["network_id"], "subnet_id": first, "subnet_ids": resource.List(subnets)}
}

// AddInterface attaches a subnet (with a new port on its gateway address)
// or an unbound port to a router.
func (r Routers) AddInterface(ctx context.Context, id string, body []byte) (any, error) {
	in, err := parseInterfaceInfo(body, false)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	err = r.core.Update(ctx, func(tx store.Tx) error {
		rec, d, err := ml2.Visible(ctx, tx, "router", id, true, routerNotFound(id))
		if err != nil {
			return err
		}
		var port resource.Doc
		if in.PortID != "" {
			port, err = r.adoptPort(ctx, tx, d, in.PortID)
		} else {
			port, err = r.subnetPort(ctx, tx, d, in.SubnetID)
		}
		if err != nil {
			return err
		}
		subs := subnetIDs(port)
		for _, sid := range subs {
			ok, err := tx.ClaimName(ctx, "router_subnet", "", sid, resource.Str(port["id"]))
			if err != nil {
				return err
			}
			if !ok {
				return fault.Conflict("SubnetInUse", "Unable to complete operation on subnet %s: The subnet is attached to another router.", sid)
			}
		}
		d["interfaces"] = append(d["interfaces"].([]any), port["id"])
		out = interfaceDoc(d, port, subs)
		if err := r.core.SaveTx(ctx, tx, rec, d); err != nil {
			return err
		}
		return r.placeTx(ctx, tx, d)
	})
	return out, err
}

// subnetPort makes a router's interface port on a subnet's gateway
// address; it belongs to the router's project. Another project's subnet
// is the caller's to attach only when an RBAC policy shares its network
// with the caller's project by name: a network shared with everyone is
// not, or any project could take its gateway address (LP#1757482).
func (p *Plugin) subnetPort(ctx context.Context, tx store.Tx, rd resource.Doc, subnetID string) (resource.Doc, error) {
	srec, sd, err := p.core.SubnetTx(ctx, tx, subnetID)
	if err != nil {
		return nil, err
	}
	gw := resource.Str(sd["gateway_ip"])
	if gw == "" {
		return nil, badRequest("router", "Subnet for router interface must have a gateway IP")
	}
	if cred := auth.FromContext(ctx); srec.ProjectID != cred.ProjectID && !cred.Admin() {
		gs, err := tx.RBACGrants(ctx, store.RBACGrant{ObjectID: resource.Str(sd["network_id"]), Target: cred.ProjectID, Action: "access_as_shared"})
		if err != nil {
			return nil, err
		}
		if len(gs) == 0 {
			return nil, badRequest("router", "Cannot add interface to router because subnet %s is not owned by project making the request", subnetID)
		}
	}
	if resource.IntOf(sd["ip_version"]) == 6 && sd["ipv6_ra_mode"] == nil && sd["ipv6_address_mode"] != nil {
		return nil, badRequest("router", "IPv6 subnet %s configured to receive RAs from an external router cannot be added to Neutron Router.", subnetID)
	}
	if err := p.checkSubnets(ctx, tx, rd, []string{subnetID}, false); err != nil {
		return nil, err
	}
	port := resource.Doc{"network_id": sd["network_id"], "device_id": rd["id"], "device_owner": ownerInterface,
		"fixed_ips": []any{map[string]any{"subnet_id": subnetID, "ip_address": gw}}}
	return p.core.CreatePortTx(ctx, tx, port, resource.Str(rd["project_id"]))
}

// adoptPort makes an unbound port with addresses a router's interface.
func (p *Plugin) adoptPort(ctx context.Context, tx store.Tx, rd resource.Doc, portID string) (resource.Doc, error) {
	prec, pd, err := p.core.PortTx(ctx, tx, portID, true)
	if err != nil {
		return nil, err
	}
	if err := ml2.OwnerOnly(ctx, prec, "update"); err != nil {
		return nil, err
	}
	if dev := resource.Str(pd["device_id"]); dev != "" {
		return nil, fault.Conflict("PortInUse", "Unable to complete operation on port %s for network %s. Port already has an attached device %s.", portID, pd["network_id"], dev)
	}
	fixed := fixedIPs(pd)
	if len(fixed) == 0 {
		return nil, badRequest("router", "Router port must have at least one fixed IP")
	}
	v4 := 0
	for _, f := range fixed {
		if f.IP.Is4() {
			v4++
		}
	}
	if v4 > 1 {
		return nil, badRequest("router", "Cannot have multiple IPv4 subnets on router port")
	}
	if err := p.checkSubnets(ctx, tx, rd, subnetIDs(pd), false); err != nil {
		return nil, err
	}
	pd["device_id"], pd["device_owner"] = rd["id"], ownerInterface
	if err := p.core.SaveTx(ctx, tx, prec, pd); err != nil {
		return nil, err
	}
	return pd, nil
}

// RemoveInterface detaches a subnet or a port from a router, unless
// floating IPs or routes need it; the interface's port is deleted (or,
// for a port on several subnets removed by subnet, loses that address).
func (r Routers) RemoveInterface(ctx context.Context, id string, body []byte) (any, error) {
	in, err := parseInterfaceInfo(body, true)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	err = r.core.Update(ctx, func(tx store.Tx) error {
		rec, d, err := ml2.Visible(ctx, tx, "router", id, true, routerNotFound(id))
		if err != nil {
			return err
		}
		ifaces := resource.Strings(d["interfaces"])
		ports, err := r.routerPorts(ctx, tx, d, false)
		if err != nil {
			return err
		}
		var port resource.Doc
		var drop []string // the subnets detached
		if in.PortID != "" {
			i := slices.Index(ifaces, in.PortID)
			if i < 0 {
				return fault.NotFound("RouterInterfaceNotFound", "Router %s does not have an interface with id %s", id, in.PortID)
			}
			port, drop = ports[i], subnetIDs(ports[i])
			if in.SubnetID != "" && !slices.Contains(drop, in.SubnetID) {
				return fault.New(400, "SubnetMismatchForPort", "Subnet on port %s does not match the requested subnet %s.", in.PortID, in.SubnetID)
			}
		} else {
			i := slices.IndexFunc(ports, func(pd resource.Doc) bool { return slices.Contains(subnetIDs(pd), in.SubnetID) })
			if i < 0 {
				return fault.NotFound("RouterInterfaceNotFoundForSubnet", "Router %s has no interface on subnet %s", id, in.SubnetID)
			}
			port, drop = ports[i], []string{in.SubnetID}
		}
		for _, sid := range drop {
			if err := r.checkNotInUse(ctx, tx, d, sid); err != nil {
				return err
			}
		}
		pid := resource.Str(port["id"])
		out = interfaceDoc(d, port, drop)
		if len(drop) == len(subnetIDs(port)) {
			if err := r.core.DeletePortTx(ctx, tx, pid); err != nil {
				return err
			}
			d["interfaces"] = resource.List(slices.DeleteFunc(ifaces, func(x string) bool { return x == pid }))
		} else if err := r.dropAddress(ctx, tx, pid, in.SubnetID); err != nil {
			return err
		}
		for _, sid := range drop {
			if err := tx.ReleaseName(ctx, "router_subnet", "", sid); err != nil {
				return err
			}
		}
		return r.core.SaveTx(ctx, tx, rec, d)
	})
	return out, err
}

// dropAddress removes a subnet's address from an interface port.
func (p *Plugin) dropAddress(ctx context.Context, tx store.Tx, portID, subnetID string) error {
	prec, pd, err := record.Get(ctx, tx, "port", portID, true, errors.New("interface port is gone"))
	if err != nil {
		return err
	}
	var keep []any
	for _, x := range pd["fixed_ips"].([]any) {
		m := x.(map[string]any)
		if m["subnet_id"] == subnetID {
			if err := tx.ReleaseIP(ctx, subnetID, resource.Str(m["ip_address"])); err != nil {
				return err
			}
			continue
		}
		keep = append(keep, m)
	}
	pd["fixed_ips"] = keep
	return p.core.SavePortTx(ctx, tx, prec, pd)
}

// checkNotInUse refuses to detach a subnet that a route's nexthop, a
// floating IP's fixed address or a port forwarding's internal address
// reach through the router.
func (p *Plugin) checkNotInUse(ctx context.Context, tx store.Tx, rd resource.Doc, subnetID string) error {
	cidr, _, err := subnetCIDR(ctx, tx, subnetID)
	if err != nil {
		return err
	}
	routes, err := parseRoutes(rd["routes"])
	if err != nil {
		return err
	}
	rid := resource.Str(rd["id"])
	for _, rt := range routes {
		if cidr.Contains(rt.NextHop) {
			return fault.Conflict("RouterInterfaceInUseByRoute", "Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more routes.", subnetID, rid)
		}
	}
	inUse := fault.Conflict("RouterInterfaceInUseByFloatingIP", "Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more floating IPs.", subnetID, rid)
	recs, fips, err := p.routerFIPs(ctx, tx, rid)
	if err != nil {
		return err
	}
	for i, fd := range fips {
		if a, err := netip.ParseAddr(resource.Str(fd["fixed_ip_address"])); err == nil && cidr.Contains(a) {
			return inUse
		}
		_, pfs, err := record.List(ctx, tx, store.Filter{Kind: "port_forwarding", Parents: []string{recs[i].ID}})
		if err != nil {
			return err
		}
		for _, pf := range pfs {
			if a, err := netip.ParseAddr(resource.Str(pf["internal_ip_address"])); err == nil && cidr.Contains(a) {
				return inUse
			}
		}
	}
	return nil
}

// routerFIPs lists the floating IPs whose traffic goes through a router.
func (p *Plugin) routerFIPs(ctx context.Context, tx store.Tx, routerID string) ([]store.Record, []resource.Doc, error) {
	recs, docs, err := record.List(ctx, tx, store.Filter{Kind: "floatingip"})
	if err != nil {
		return nil, nil, err
	}
	var ro []store.Record
	var do []resource.Doc
	for i, d := range docs {
		if resource.Str(d["router_id"]) == routerID {
			ro, do = append(ro, recs[i]), append(do, d)
		}
	}
	return ro, do, nil
}

// routerFor finds the router that connects a subnet to an external
// network: the router with an interface on the subnet and its gateway on
// the network.
func (p *Plugin) routerFor(ctx context.Context, tx store.Tx, subnetID, extNet string) (string, bool, error) {
	pid, err := tx.NameID(ctx, "router_subnet", "", subnetID)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	_, pd, err := record.Get(ctx, tx, "port", pid, false, errors.New("router interface port is gone"))
	if err != nil {
		return "", false, err
	}
	rid := resource.Str(pd["device_id"])
	_, rd, err := record.Get(ctx, tx, "router", rid, false, errors.New("router of an interface is gone"))
	if err != nil {
		return "", false, err
	}
	gw, _ := rd["external_gateway_info"].(map[string]any)
	if gw == nil || resource.Str(gw["network_id"]) != extNet {
		return "", false, nil
	}
	return rid, true, nil
}
