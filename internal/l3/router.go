package l3

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/ipam"
	"muon/internal/ml2"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/store"
)

// Routers serves /v2.0/routers and its member actions.
type Routers struct{ *Plugin }

var routerRes = RouterResource().Init()

// Create makes routers, all or none.
func (r Routers) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	return record.CreateAll(ctx, r.core, docs, r.createRouter)
}

func (p *Plugin) createRouter(ctx context.Context, tx store.Tx, d resource.Doc) error {
	if v := d["flavor_id"]; v != nil {
		// No flavors are defined (the flavors service is not served).
		return fault.NotFound("FlavorNotFound", "Flavor %s could not be found.", v)
	}
	if err := p.core.Stamp(ctx, d, true); err != nil {
		return err
	}
	if err := p.core.CheckQuota(ctx, tx, "router", resource.Str(d["project_id"])); err != nil {
		return err
	}
	d["flavor_id"] = nil
	d["status"] = "ACTIVE"
	d["routes"] = []any{}
	d["availability_zones"] = []any{}
	d["interfaces"] = []any{}
	d["gw_port_id"] = ""
	for _, k := range []string{"ha", "distributed"} {
		if _, ok := d[k]; !ok {
			d[k] = false
		}
	}
	gw, _ := d["external_gateway_info"].(map[string]any)
	d["external_gateway_info"] = nil
	rec, err := record.New("router", d, "", false)
	if err != nil {
		return err
	}
	if err := tx.Insert(ctx, rec); err != nil {
		return err
	}
	if len(gw) > 0 {
		if err := p.setGateway(ctx, tx, d, gw); err != nil {
			return err
		}
		if rec, err = record.New("router", d, "", false); err != nil {
			return err
		}
		if err := tx.Update(ctx, rec); err != nil {
			return err
		}
	}
	return p.placeTx(ctx, tx, d)
}

// setGateway gives a router a gateway port on an external network.
func (p *Plugin) setGateway(ctx context.Context, tx store.Tx, d resource.Doc, info map[string]any) error {
	netID := resource.Str(info["network_id"])
	nrec, nd, err := p.core.NetworkTx(ctx, tx, netID)
	if err != nil {
		return err
	}
	if !auth.FromContext(ctx).Owns(nrec.ProjectID) {
		// Another project's external network: hold it against the
		// deletion of the policy that lets this router use it, and look
		// again once held.
		if _, err := tx.LockShared(ctx, "network", netID); err != nil {
			return err
		}
		if _, nd, err = p.core.NetworkTx(ctx, tx, netID); err != nil {
			return err
		}
	}
	if !resource.BoolOf(nd["router:external"]) {
		return badRequest("router", "Network %s is not an external network", netID)
	}
	port := resource.Doc{"network_id": netID, "device_id": d["id"], "device_owner": ownerGateway}
	if ips, _ := info["external_fixed_ips"].([]any); len(ips) > 0 {
		port["fixed_ips"] = ips
	}
	pd, err := p.core.CreatePortTx(ctx, tx, port, "")
	if err != nil {
		return err
	}
	fixed := fixedIPs(pd)
	if len(fixed) == 0 {
		return badRequest("router", "No IPs available for external network %s", netID)
	}
	ext := make([]any, 0, len(fixed))
	for _, f := range fixed {
		_, sd, err := subnetCIDR(ctx, tx, f.SubnetID)
		if err != nil {
			return err
		}
		if resource.Str(sd["gateway_ip"]) == f.IP.String() {
			return badRequest("router", "External IP %s is the same as the gateway IP", f.IP)
		}
		ext = append(ext, map[string]any{"subnet_id": f.SubnetID, "ip_address": f.IP.String()})
	}
	if err := p.checkSubnets(ctx, tx, d, subnetIDs(pd), false); err != nil {
		return err
	}
	snat := true
	if v, ok := info["enable_snat"]; ok {
		snat = resource.BoolOf(v)
	}
	d["external_gateway_info"] = map[string]any{"network_id": netID, "enable_snat": snat, "external_fixed_ips": ext}
	d["gw_port_id"] = pd["id"]
	return nil
}

// clearGateway removes a router's gateway port unless floating IPs reach
// their network through it.
func (p *Plugin) clearGateway(ctx context.Context, tx store.Tx, d resource.Doc) error {
	gw, _ := d["external_gateway_info"].(map[string]any)
	if gw == nil {
		return nil
	}
	_, fips, err := p.routerFIPs(ctx, tx, resource.Str(d["id"]))
	if err != nil {
		return err
	}
	if len(fips) > 0 {
		return fault.Conflict("RouterExternalGatewayInUseByFloatingIp", "Gateway cannot be updated for router %s, since a gateway to external network %s is required by one or more floating IPs.", d["id"], gw["network_id"])
	}
	if id := resource.Str(d["gw_port_id"]); id != "" {
		if err := p.core.DeletePortTx(ctx, tx, id); err != nil {
			return err
		}
	}
	d["external_gateway_info"] = nil
	d["gw_port_id"] = ""
	return nil
}

// updateGateway applies a new external_gateway_info: null clears it, the
// same network keeps the port unless other addresses are asked for.
func (p *Plugin) updateGateway(ctx context.Context, tx store.Tx, d resource.Doc, v any) error {
	info, _ := v.(map[string]any)
	cur, _ := d["external_gateway_info"].(map[string]any)
	if len(info) == 0 {
		return p.clearGateway(ctx, tx, d)
	}
	if cur != nil && cur["network_id"] == info["network_id"] {
		snat := true
		if v, ok := info["enable_snat"]; ok {
			snat = resource.BoolOf(v)
		}
		ips, given := info["external_fixed_ips"].([]any)
		if !given || sameAddresses(ips, cur["external_fixed_ips"]) {
			c := resource.Clone(cur)
			c["enable_snat"] = snat
			d["external_gateway_info"] = c
			return nil
		}
		// Other addresses on the same network: a new port; floating IPs
		// still reach the network.
		if err := p.core.DeletePortTx(ctx, tx, resource.Str(d["gw_port_id"])); err != nil {
			return err
		}
		d["external_gateway_info"], d["gw_port_id"] = nil, ""
		return p.setGateway(ctx, tx, d, info)
	}
	if err := p.clearGateway(ctx, tx, d); err != nil {
		return err
	}
	return p.setGateway(ctx, tx, d, info)
}

// sameAddresses tells whether asked external_fixed_ips are what the
// gateway holds (entries without an address match any on their subnet).
func sameAddresses(asked []any, have any) bool {
	hl, _ := have.([]any)
	if len(asked) != len(hl) {
		return false
	}
	used := make([]bool, len(hl))
	for _, a := range asked {
		am, _ := a.(map[string]any)
		found := false
		for i, h := range hl {
			hm, _ := h.(map[string]any)
			if used[i] {
				continue
			}
			if s, ok := am["subnet_id"]; ok && s != hm["subnet_id"] {
				continue
			}
			if ip, ok := am["ip_address"]; ok && ip != hm["ip_address"] {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			return false
		}
	}
	return true
}

// routerPorts reads a router's interface ports and, with gateway, its
// gateway port.
func (p *Plugin) routerPorts(ctx context.Context, tx store.Tx, d resource.Doc, gateway bool) ([]resource.Doc, error) {
	ids := resource.Strings(d["interfaces"])
	if gw := resource.Str(d["gw_port_id"]); gateway && gw != "" {
		ids = append(ids, gw)
	}
	out := make([]resource.Doc, 0, len(ids))
	for _, id := range ids {
		_, pd, err := record.Get(ctx, tx, "port", id, false, fmt.Errorf("router %s: port %s is gone", d["id"], id))
		if err != nil {
			return nil, err
		}
		out = append(out, pd)
	}
	return out, nil
}

// checkSubnets refuses subnets a router already has a port on, or that
// overlap one it has (Neutron's _check_for_dup_router_subnets); the
// gateway's subnets count when gateway is set.
func (p *Plugin) checkSubnets(ctx context.Context, tx store.Tx, d resource.Doc, newIDs []string, gateway bool) error {
	ports, err := p.routerPorts(ctx, tx, d, gateway)
	if err != nil {
		return err
	}
	newCIDRs := make([]netip.Prefix, len(newIDs))
	for i, id := range newIDs {
		if newCIDRs[i], _, err = subnetCIDR(ctx, tx, id); err != nil {
			return err
		}
	}
	for _, pd := range ports {
		for _, sid := range subnetIDs(pd) {
			if slices.Contains(newIDs, sid) {
				return badRequest("router", "Router already has a port on subnet %s", sid)
			}
			cidr, _, err := subnetCIDR(ctx, tx, sid)
			if err != nil {
				return err
			}
			for i, n := range newCIDRs {
				if ipam.Overlaps(n, cidr) {
					return badRequest("router", "Cidr %s of subnet %s overlaps with cidr %s of subnet %s", n, newIDs[i], cidr, sid)
				}
			}
		}
	}
	return nil
}

// Get shows one router.
func (r Routers) Get(ctx context.Context, id string) (resource.Doc, error) {
	var d resource.Doc
	err := r.core.View(ctx, func(tx store.Tx) error {
		var err error
		_, d, err = ml2.Visible(ctx, tx, "router", id, false, routerNotFound(id))
		return err
	})
	return d, err
}

// List returns the routers the caller may see.
func (r Routers) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	var out []resource.Doc
	err := r.core.View(ctx, func(tx store.Tx) error {
		f := record.Owned(ctx, "router")
		f.IDs = q.Filters["id"]
		var err error
		_, out, err = record.List(ctx, tx, f)
		return err
	})
	return out, err
}

// Update changes a router: its gateway, routes, attributes.
func (r Routers) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	var out resource.Doc
	err := r.core.Update(ctx, func(tx store.Tx) error {
		rec, d, err := ml2.LockOwned(ctx, tx, "router", id, "update", ifRev, routerNotFound(id))
		if err != nil {
			return err
		}
		before := rec.Doc
		patch := resource.Clone(patch)
		if err := r.checkModes(d, patch); err != nil {
			return err
		}
		gateway := false
		if v, ok := patch["external_gateway_info"]; ok {
			delete(patch, "external_gateway_info")
			if err := r.updateGateway(ctx, tx, d, v); err != nil {
				return err
			}
			gateway = true
		}
		if v, ok := patch["routes"]; ok {
			delete(patch, "routes")
			routes, err := r.validRoutes(ctx, tx, d, v)
			if err != nil {
				return err
			}
			d["routes"] = routes
		}
		for k, v := range patch {
			d[k] = v
		}
		out = d
		if err := r.save(ctx, tx, rec, d, before); err != nil || !gateway {
			return err
		}
		return r.placeTx(ctx, tx, d)
	})
	return out, err
}

// save writes a router back, its revision bumped if it changed.
func (p *Plugin) save(ctx context.Context, tx store.Tx, rec *store.Record, d resource.Doc, before []byte) error {
	now, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if bytes.Equal(canonical(before), canonical(now)) {
		return nil
	}
	return p.core.SaveTx(ctx, tx, rec, d)
}

func canonical(b []byte) []byte {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	out, _ := json.Marshal(v)
	return out
}

// checkModes applies Neutron's rules on changing ha and distributed: the
// router must be down, and a distributed router stays distributed.
func (p *Plugin) checkModes(d, patch resource.Doc) error {
	up := resource.BoolOf(d["admin_state_up"])
	if v, ok := patch["admin_state_up"]; ok {
		up = resource.BoolOf(v)
	}
	if v, ok := patch["distributed"]; ok && v != d["distributed"] {
		if !resource.BoolOf(v) {
			return badRequest("router", "Migration from distributed router to centralized is not supported")
		}
		if up {
			return badRequest("router", "Cannot upgrade active router to distributed. Please set router admin_state_up to False prior to upgrade")
		}
	}
	if v, ok := patch["ha"]; ok && v != d["ha"] && up {
		return badRequest("router", "Cannot change HA attribute of active routers. Please set router admin_state_up to False prior to upgrade")
	}
	return nil
}

// Delete removes a router without interfaces, and its gateway port.
func (r Routers) Delete(ctx context.Context, id string, ifRev int64) error {
	return r.core.Update(ctx, func(tx store.Tx) error {
		_, d, err := ml2.LockOwned(ctx, tx, "router", id, "delete", ifRev, routerNotFound(id))
		if err != nil {
			return err
		}
		if len(resource.Strings(d["interfaces"])) > 0 {
			return fault.Conflict("RouterInUse", "Router %s still has ports", id)
		}
		if err := r.clearGateway(ctx, tx, d); err != nil {
			return err
		}
		if err := unhostTx(ctx, tx, id); err != nil {
			return err
		}
		if err := deleteHelpers(ctx, tx, id); err != nil {
			return err
		}
		return tx.Delete(ctx, "router", id)
	})
}

// route is one extra route.
type route struct {
	Destination netip.Prefix
	NextHop     netip.Addr
}

func (rt route) doc() map[string]any {
	return map[string]any{"destination": rt.Destination.String(), "nexthop": rt.NextHop.String()}
}

// parseRoutes reads routes ([{destination, nexthop}]).
func parseRoutes(v any) ([]route, error) {
	if v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fault.BadRequest("Invalid input for routes. Reason: '%v' is not a list.", v)
	}
	out := make([]route, 0, len(l))
	for _, x := range l {
		m, ok := x.(map[string]any)
		dest, ok1 := m["destination"].(string)
		hop, ok2 := m["nexthop"].(string)
		if !ok || !ok1 || !ok2 || len(m) != 2 {
			return nil, fault.BadRequest("Invalid input for routes. Reason: Validation of dictionary's keys failed. Expected keys: {'destination', 'nexthop'} Provided keys: %v.", keys(m))
		}
		// Unlike a subnet's, a route's destination may be a default route.
		cidr, err := netip.ParsePrefix(dest)
		if err != nil {
			return nil, fault.BadRequest("Invalid input for routes. Reason: '%s' is not a valid IP subnet.", dest)
		}
		if cidr != cidr.Masked() {
			return nil, fault.BadRequest("Invalid input for routes. Reason: '%s' isn't a recognized IP subnet cidr, '%s' is recommended.", dest, cidr.Masked())
		}
		ip, err := ipam.ParseIP(hop)
		if err != nil {
			return nil, ipam.ForAttr("routes", err)
		}
		rt := route{cidr, ip}
		if slices.Contains(out, rt) {
			return nil, fault.BadRequest("Invalid input for routes. Reason: Duplicate hostroute '%s'.", fmt.Sprintf("{'destination': '%s', 'nexthop': '%s'}", dest, hop))
		}
		out = append(out, rt)
	}
	return out, nil
}

// validRoutes checks a router's new routes: each nexthop on one of the
// router's subnets and not one of its own addresses.
func (p *Plugin) validRoutes(ctx context.Context, tx store.Tx, d resource.Doc, v any) ([]any, error) {
	routes, err := parseRoutes(v)
	if err != nil {
		return nil, err
	}
	if len(routes) > p.maxRoutes {
		return nil, fault.New(400, "RoutesExhausted", "Unable to complete operation for %s. The number of routes exceeds the maximum %d.", d["id"], p.maxRoutes)
	}
	ports, err := p.routerPorts(ctx, tx, d, true)
	if err != nil {
		return nil, err
	}
	var cidrs []netip.Prefix
	var own []netip.Addr
	for _, pd := range ports {
		for _, f := range fixedIPs(pd) {
			own = append(own, f.IP)
			c, _, err := subnetCIDR(ctx, tx, f.SubnetID)
			if err != nil {
				return nil, err
			}
			cidrs = append(cidrs, c)
		}
	}
	out := make([]any, 0, len(routes))
	for _, rt := range routes {
		if !slices.ContainsFunc(cidrs, func(c netip.Prefix) bool { return c.Contains(rt.NextHop) }) {
			return nil, invalidRoutes(v, "the nexthop is not connected with router")
		}
		if slices.Contains(own, rt.NextHop) {
			return nil, invalidRoutes(v, "the nexthop is used by router")
		}
		out = append(out, rt.doc())
	}
	return out, nil
}

func invalidRoutes(v any, reason string) error {
	b, _ := json.Marshal(v)
	return fault.New(400, "InvalidRoutes", "Invalid format for routes: %s, %s.", b, reason)
}

// routesBody reads {"router": {"routes": [...]}}.
func routesBody(body []byte) ([]route, error) {
	var in struct {
		Router map[string]any `json:"router"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Router == nil {
		return nil, fault.BadRequest("Failed to parse request. Required attribute 'router' not specified")
	}
	for k := range in.Router {
		if k != "routes" {
			return nil, fault.BadRequest("Unrecognized attribute(s) '%s'", k)
		}
	}
	return parseRoutes(in.Router["routes"])
}

// AddExtraRoutes adds routes to a router's (extraroute-atomic).
func (r Routers) AddExtraRoutes(ctx context.Context, id string, body []byte) (any, error) {
	add, err := routesBody(body)
	if err != nil {
		return nil, err
	}
	return r.editRoutes(ctx, id, func(have []route) []route {
		for _, rt := range add {
			if !slices.Contains(have, rt) {
				have = append(have, rt)
			}
		}
		return have
	})
}

// RemoveExtraRoutes removes routes from a router's (extraroute-atomic).
func (r Routers) RemoveExtraRoutes(ctx context.Context, id string, body []byte) (any, error) {
	drop, err := routesBody(body)
	if err != nil {
		return nil, err
	}
	return r.editRoutes(ctx, id, func(have []route) []route {
		return slices.DeleteFunc(have, func(rt route) bool { return slices.Contains(drop, rt) })
	})
}

func (r Routers) editRoutes(ctx context.Context, id string, edit func([]route) []route) (any, error) {
	var out resource.Doc
	err := r.core.Update(ctx, func(tx store.Tx) error {
		rec, d, err := ml2.Visible(ctx, tx, "router", id, true, routerNotFound(id))
		if err != nil {
			return err
		}
		if err := ml2.OwnerOnly(ctx, rec, "update"); err != nil {
			return err
		}
		have, err := parseRoutes(d["routes"])
		if err != nil {
			return err
		}
		next := edit(have)
		docs := make([]any, len(next))
		for i, rt := range next {
			docs[i] = rt.doc()
		}
		routes, err := r.validRoutes(ctx, tx, d, docs)
		if err != nil {
			return err
		}
		before := rec.Doc
		d["routes"] = routes
		out = d
		return r.save(ctx, tx, rec, d, before)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"router": routerRes.View(out, auth.FromContext(ctx).Admin(), nil)}, nil
}
