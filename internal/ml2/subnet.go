package ml2

import (
	"context"
	"net/netip"
	"slices"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/ipam"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/stdattr"
	"muon/internal/store"
)

func subnetNotFound(id string) *fault.Error {
	return fault.NotFound("SubnetNotFound", "Subnet %s could not be found.", id)
}

// Subnets serves /v2.0/subnets.
type Subnets struct{ *Plugin }

// subnet is a stored subnet as IPAM needs it.
type subnet struct {
	ID, NetworkID string
	Version       int
	CIDR          netip.Prefix
	Gateway       netip.Addr
	Pools         []ipam.Range
	RAMode        string
	AddrMode      string
	ServiceTypes  []string
	CreatedAt     string
}

// auto tells whether addresses come from SLAAC rather than IPAM.
func (s *subnet) auto() bool {
	return s.Version == 6 && (s.AddrMode == "slaac" || s.AddrMode == "dhcpv6-stateless")
}

func parseSubnet(d resource.Doc) (*subnet, error) {
	s := &subnet{ID: resource.Str(d["id"]), NetworkID: resource.Str(d["network_id"]), Version: int(resource.IntOf(d["ip_version"])),
		RAMode: resource.Str(d["ipv6_ra_mode"]), AddrMode: resource.Str(d["ipv6_address_mode"]),
		ServiceTypes: resource.Strings(d["service_types"]), CreatedAt: resource.Str(d["created_at"])}
	var err error
	if s.CIDR, err = netip.ParsePrefix(resource.Str(d["cidr"])); err != nil {
		return nil, err
	}
	if g := resource.Str(d["gateway_ip"]); g != "" {
		if s.Gateway, err = netip.ParseAddr(g); err != nil {
			return nil, err
		}
	}
	s.Pools, err = poolsOf(d["allocation_pools"])
	return s, err
}

func poolsOf(v any) ([]ipam.Range, error) {
	l, _ := v.([]any)
	out := make([]ipam.Range, 0, len(l))
	for _, x := range l {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fault.BadRequest("Invalid input for allocation_pools. Reason: Invalid data format for IP pool: '%v'.", x)
		}
		for k := range m {
			if k != "start" && k != "end" {
				return nil, fault.BadRequest("Invalid input for allocation_pools. Reason: Unrecognized attribute(s) '%s'.", k)
			}
		}
		start, ok1 := m["start"].(string)
		end, ok2 := m["end"].(string)
		if !ok1 || !ok2 {
			return nil, fault.BadRequest("Invalid input for allocation_pools. Reason: Invalid data format for IP pool: '%v'.", x)
		}
		r, err := ipam.ParsePool(start, end)
		if err != nil {
			return nil, ipam.ForAttr("allocation_pools", err)
		}
		out = append(out, r)
	}
	return out, nil
}

func poolDocs(pools []ipam.Range) []any {
	out := make([]any, len(pools))
	for i, r := range pools {
		out[i] = map[string]any{"start": r.Start.String(), "end": r.End.String()}
	}
	return out
}

// subnetsOf reads a network's subnets in creation order.
func subnetsOf(ctx context.Context, tx store.Tx, networkID string) ([]*subnet, []resource.Doc, error) {
	recs, err := tx.List(ctx, store.Filter{Kind: "subnet", Parents: []string{networkID}})
	if err != nil {
		return nil, nil, err
	}
	subs := make([]*subnet, 0, len(recs))
	docs := make([]resource.Doc, 0, len(recs))
	for i := range recs {
		d, err := record.Decode(&recs[i])
		if err != nil {
			return nil, nil, err
		}
		s, err := parseSubnet(d)
		if err != nil {
			return nil, nil, err
		}
		subs = append(subs, s)
		docs = append(docs, d)
	}
	order := make([]int, len(subs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := compareStr(subs[a].CreatedAt, subs[b].CreatedAt); c != 0 {
			return c
		}
		return compareStr(subs[a].ID, subs[b].ID)
	})
	so, do := make([]*subnet, len(subs)), make([]resource.Doc, len(subs))
	for i, j := range order {
		so[i], do[i] = subs[j], docs[j]
	}
	return so, do, nil
}

// Create makes subnets.
func (s Subnets) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	for _, d := range docs {
		if err := serviceTypesPolicy(ctx, "create", d); err != nil {
			return nil, err
		}
	}
	return record.CreateAll(ctx, s.st, docs, s.createSubnet)
}

func (p *Plugin) createSubnet(ctx context.Context, tx store.Tx, d resource.Doc) error {
	netID := resource.Str(d["network_id"])
	nrec, nd, err := getVisible(ctx, tx, "network", netID, true, networkNotFound(netID))
	if err != nil {
		return err
	}
	if err := ownerOnly(ctx, nrec, "create_subnet"); err != nil {
		return err
	}
	if err := stdattr.Stamp(ctx, d, p.now(), true); err != nil {
		return err
	}
	if err := p.checkQuota(ctx, tx, "subnet", resource.Str(d["project_id"])); err != nil {
		return err
	}
	version := int(resource.IntOf(d["ip_version"]))
	if err := p.subnetFromPool(ctx, tx, d); err != nil {
		return err
	}
	cidr, err := ipam.ParseCIDR(resource.Str(d["cidr"]))
	if err != nil {
		return ipam.ForAttr("cidr", err)
	}
	if ipam.IPVersion(cidr.Addr()) != version {
		return fault.InvalidInput("cidr '%s' does not match the ip_version '%d'", resource.Str(d["cidr"]), version)
	}
	d["cidr"] = cidr.String()
	if err := checkIPv6Modes(d, version, cidr); err != nil {
		return err
	}
	if resource.BoolOf(d["enable_dhcp"]) {
		if err := ipam.CheckDHCP(cidr); err != nil {
			return err
		}
	}
	// The gateway: absent means the default, null means none.
	var gw netip.Addr
	if v, ok := d["gateway_ip"]; !ok {
		gw = ipam.DefaultGateway(cidr)
	} else if v != nil {
		gw, _ = netip.ParseAddr(v.(string))
		if err := ipam.CheckIPVersion("gateway_ip", v.(string), gw, version); err != nil {
			return err
		}
		if err := ipam.ValidateGateway(cidr, gw); err != nil {
			return err
		}
	}
	d["gateway_ip"] = addrOrNil(gw)
	var pools []ipam.Range
	if v, ok := d["allocation_pools"]; ok && v != nil {
		if pools, err = poolsOf(v); err != nil {
			return err
		}
		if err := ipam.ValidatePools(cidr, pools, gw); err != nil {
			return err
		}
	} else {
		pools = ipam.DefaultPools(cidr, gw)
	}
	d["allocation_pools"] = poolDocs(pools)
	if err := p.checkSubnetLists(d, version, ""); err != nil {
		return err
	}
	subs, _, err := subnetsOf(ctx, tx, netID)
	if err != nil {
		return err
	}
	if err := p.checkOverlap(ctx, tx, cidr, netID, subs, ""); err != nil {
		return err
	}
	if seg := d["segment_id"]; seg != nil {
		r, err := tx.Get(ctx, "segment", seg.(string))
		if err != nil || r.ParentID != netID {
			return fault.NotFound("SegmentNotFound", "Segment %s could not be found.", seg)
		}
	}
	rec, err := record.New("subnet", d, netID, resource.BoolOf(nd["shared"]))
	if err != nil {
		return err
	}
	if err := tx.Insert(ctx, rec); err != nil {
		return err
	}
	if err := p.bumpNetwork(ctx, tx, nrec, nd); err != nil {
		return err
	}
	sub, err := parseSubnet(d)
	if err != nil {
		return err
	}
	if sub.auto() {
		if err := p.addAutoAddresses(ctx, tx, sub); err != nil {
			return err
		}
	}
	return p.events.SubnetCreate.run(ctx, tx, SubnetEvent{Subnet: d})
}

func addrOrNil(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a.String()
}

// checkIPv6Modes applies Neutron's rules on ipv6_ra_mode and
// ipv6_address_mode.
func checkIPv6Modes(d resource.Doc, version int, cidr netip.Prefix) error {
	ra, addr := d["ipv6_ra_mode"], d["ipv6_address_mode"]
	if ra == nil && addr == nil {
		return nil
	}
	if version != 6 {
		return fault.InvalidInput("ipv6_ra_mode or ipv6_address_mode cannot be set when ip_version is 4")
	}
	if ra != nil && addr != nil && ra != addr {
		return fault.InvalidInput("ipv6_ra_mode set to '%v' with ipv6_address_mode set to '%v' is not valid. If both attributes are set, they must be the same value", ra, addr)
	}
	mode := addr
	if mode == nil {
		mode = ra
	}
	if (mode == "slaac" || mode == "dhcpv6-stateless") && cidr.Bits() != 64 {
		return fault.InvalidInput("Invalid CIDR %s for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64", cidr)
	}
	if !resource.BoolOf(d["enable_dhcp"]) {
		return fault.InvalidInput("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False")
	}
	return nil
}

// checkSubnetLists validates dns_nameservers, host_routes and
// service_types when present.
func (p *Plugin) checkSubnetLists(d resource.Doc, version int, id string) error {
	if v, ok := d["dns_nameservers"]; ok {
		if _, err := ipam.ValidateNameservers(resource.Strings(v), version, p.cfg.MaxDNSNameservers, id); err != nil {
			return ipam.ForAttr("dns_nameservers", err)
		}
	}
	if v, ok := d["host_routes"]; ok {
		var raw []ipam.RawRoute
		for _, x := range v.([]any) {
			m := x.(map[string]any)
			dest, ok1 := m["destination"].(string)
			hop, ok2 := m["nexthop"].(string)
			if !ok1 || !ok2 || len(m) != 2 {
				return fault.BadRequest("Invalid input for host_routes. Reason: Validation of dictionary's keys failed. Expected keys: {'destination', 'nexthop'} Provided keys: %v.", keysOf(m))
			}
			raw = append(raw, ipam.RawRoute{Destination: dest, NextHop: hop})
		}
		routes, err := ipam.ValidateHostRoutes(raw, version, p.cfg.MaxSubnetHostRoutes, id)
		if err != nil {
			return ipam.ForAttr("host_routes", err)
		}
		out := make([]any, len(routes))
		for i, r := range routes {
			out[i] = map[string]any{"destination": r.Destination.String(), "nexthop": r.NextHop.String()}
		}
		d["host_routes"] = out
	}
	return nil
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkOverlap refuses a cidr overlapping another subnet of the network
// (or of any network when overlapping IPs are off).
func (p *Plugin) checkOverlap(ctx context.Context, tx store.Tx, cidr netip.Prefix, netID string, subs []*subnet, self string) error {
	others := subs
	if !p.cfg.AllowOverlappingIPs {
		recs, err := tx.List(ctx, store.Filter{Kind: "subnet"})
		if err != nil {
			return err
		}
		others = nil
		for i := range recs {
			d, err := record.Decode(&recs[i])
			if err != nil {
				return err
			}
			s, err := parseSubnet(d)
			if err != nil {
				return err
			}
			others = append(others, s)
		}
	}
	for _, o := range others {
		if o.ID != self && ipam.Overlaps(o.CIDR, cidr) {
			return fault.InvalidInput("Requested subnet with cidr: %s for network: %s overlaps with another subnet", cidr, netID)
		}
	}
	return nil
}

// bumpNetwork raises a network's revision: its subnets changed.
func (p *Plugin) bumpNetwork(ctx context.Context, tx store.Tx, nrec *store.Record, nd resource.Doc) error {
	stdattr.Touch(nd, p.now())
	delete(nd, "subnets")
	b, err := encode(nd)
	if err != nil {
		return err
	}
	r := *nrec
	r.Doc = b
	return tx.Update(ctx, &r)
}

// addAutoAddresses gives every port of the network an EUI-64 address on a
// new SLAAC subnet, as Neutron does.
func (p *Plugin) addAutoAddresses(ctx context.Context, tx store.Tx, sub *subnet) error {
	ports, err := tx.List(ctx, store.Filter{Kind: "port", Parents: []string{sub.NetworkID}})
	if err != nil {
		return err
	}
	for i := range ports {
		d, err := record.Decode(&ports[i])
		if err != nil {
			return err
		}
		if isRouterOwner(resource.Str(d["device_owner"])) || !serviceAllows(sub, resource.Str(d["device_owner"])) {
			continue
		}
		ip, err := ipam.EUI64(sub.CIDR, resource.Str(d["mac_address"]))
		if err != nil {
			return err
		}
		ok, err := tx.ClaimIP(ctx, store.IPAllocation{SubnetID: sub.ID, NetworkID: sub.NetworkID, IP: ip.String(), PortID: ports[i].ID})
		if err != nil || !ok {
			return err
		}
		fixed, _ := d["fixed_ips"].([]any)
		d["fixed_ips"] = append(fixed, map[string]any{"subnet_id": sub.ID, "ip_address": ip.String()})
		p.setDNSAssignment(d)
		stdattr.Touch(d, p.now())
		if ports[i].Doc, err = encode(d); err != nil {
			return err
		}
		if err := tx.Update(ctx, &ports[i]); err != nil {
			return err
		}
	}
	return nil
}

// Get shows one subnet.
func (s Subnets) Get(ctx context.Context, id string) (resource.Doc, error) {
	return s.get(ctx, "subnet", id, subnetNotFound(id))
}

// List returns the subnets the caller may see.
func (s Subnets) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	f := scope(ctx, "subnet", true)
	f.IDs = q.Filters["id"]
	f.Parents = q.Filters["network_id"]
	return s.list(ctx, f)
}

// get reads one document the caller may see, or answers nf.
func (p *Plugin) get(ctx context.Context, kind, id string, nf *fault.Error) (resource.Doc, error) {
	var d resource.Doc
	err := p.st.View(ctx, func(tx store.Tx) error {
		var err error
		_, d, err = getVisible(ctx, tx, kind, id, false, nf)
		return err
	})
	return d, err
}

// list reads the documents a filter selects.
func (p *Plugin) list(ctx context.Context, f store.Filter) ([]resource.Doc, error) {
	var out []resource.Doc
	err := p.st.View(ctx, func(tx store.Tx) error {
		recs, err := tx.List(ctx, f)
		if err != nil {
			return err
		}
		out = make([]resource.Doc, 0, len(recs))
		for i := range recs {
			d, err := record.Decode(&recs[i])
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// serviceTypesPolicy: only admins set service_types (Neutron's
// create_subnet:service_types and update_subnet:service_types rules).
func serviceTypesPolicy(ctx context.Context, action string, d resource.Doc) error {
	if v, ok := d["service_types"]; ok && len(resource.Strings(v)) > 0 && !auth.FromContext(ctx).Admin() {
		return fault.Forbidden("PolicyNotAuthorized", "(rule:%s_subnet and rule:%s_subnet:service_types) is disallowed by policy", action, action)
	}
	return nil
}

// Update changes a subnet.
func (s Subnets) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	if err := serviceTypesPolicy(ctx, "update", patch); err != nil {
		return nil, err
	}
	var out resource.Doc
	err := s.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := lockOwned(ctx, tx, "subnet", id, "update", ifRev, subnetNotFound(id))
		if err != nil {
			return err
		}
		sub, err := parseSubnet(d)
		if err != nil {
			return err
		}
		patch = resource.Clone(patch)
		if err := s.checkSubnetLists(patch, sub.Version, id); err != nil {
			return err
		}
		gw, pools := sub.Gateway, sub.Pools
		if v, ok := patch["gateway_ip"]; ok {
			gw = netip.Addr{}
			if v != nil {
				gw, _ = netip.ParseAddr(v.(string))
				if err := ipam.CheckIPVersion("gateway_ip", v.(string), gw, sub.Version); err != nil {
					return err
				}
				if err := ipam.ValidateGateway(sub.CIDR, gw); err != nil {
					return err
				}
			}
			if sub.Gateway.IsValid() && gw != sub.Gateway {
				if err := gatewayFree(ctx, tx, sub); err != nil {
					return err
				}
			}
		}
		if v, ok := patch["allocation_pools"]; ok {
			if v == nil {
				pools = ipam.DefaultPools(sub.CIDR, gw)
			} else if pools, err = poolsOf(v); err != nil {
				return err
			}
			patch["allocation_pools"] = poolDocs(pools)
		}
		if _, gwChanged := patch["gateway_ip"]; gwChanged || patch["allocation_pools"] != nil {
			if err := ipam.ValidatePools(sub.CIDR, pools, gw); err != nil {
				return err
			}
		}
		if v, ok := patch["enable_dhcp"]; ok && resource.BoolOf(v) {
			if err := ipam.CheckDHCP(sub.CIDR); err != nil {
				return err
			}
		}
		if v, ok := patch["enable_dhcp"]; ok && !resource.BoolOf(v) && sub.Version == 6 && (sub.RAMode != "" || sub.AddrMode != "") {
			return fault.InvalidInput("Cannot disable enable_dhcp with ipv6 attributes set")
		}
		if v, ok := patch["segment_id"]; ok && !equalValue(v, d["segment_id"]) {
			if d["segment_id"] != nil {
				return fault.InvalidInput("Cannot update the segment of a subnet already associated with a segment")
			}
			r, err := tx.Get(ctx, "segment", resource.Str(v))
			if v == nil || err != nil || r.ParentID != sub.NetworkID {
				return fault.NotFound("SegmentNotFound", "Segment %v could not be found.", v)
			}
		}
		changed := false
		for k, v := range patch {
			if !equalValue(d[k], v) {
				d[k] = v
				changed = true
			}
		}
		if changed {
			stdattr.Touch(d, s.now())
		}
		if rec.Doc, err = encode(d); err != nil {
			return err
		}
		if err := tx.Update(ctx, rec); err != nil {
			return err
		}
		if err := s.events.SubnetUpdate.run(ctx, tx, SubnetEvent{Subnet: d, Patch: patch}); err != nil {
			return err
		}
		out = d
		if !changed {
			return nil
		}
		nrec, nd, err := getVisible(ctx, tx, "network", sub.NetworkID, true, networkNotFound(sub.NetworkID))
		if err != nil {
			return err
		}
		return s.bumpNetwork(ctx, tx, nrec, nd)
	})
	return out, err
}

// gatewayFree refuses to move a gateway a router port holds.
func gatewayFree(ctx context.Context, tx store.Tx, sub *subnet) error {
	allocs, err := tx.IPs(ctx, sub.ID)
	if err != nil {
		return err
	}
	for _, a := range allocs {
		if a.IP == sub.Gateway.String() {
			r, err := tx.Get(ctx, "port", a.PortID)
			if err != nil {
				return err
			}
			d, err := record.Decode(r)
			if err != nil {
				return err
			}
			if isRouterOwner(resource.Str(d["device_owner"])) {
				return fault.Conflict("GatewayIpInUse", "Current gateway ip %s already in use by port %s. Unable to update.", a.IP, a.PortID)
			}
		}
	}
	return nil
}

// Delete removes a subnet unless user ports hold addresses on it.
func (s Subnets) Delete(ctx context.Context, id string, ifRev int64) error {
	return s.st.Update(ctx, func(tx store.Tx) error {
		_, d, err := lockOwned(ctx, tx, "subnet", id, "delete", ifRev, subnetNotFound(id))
		if err != nil {
			return err
		}
		if err := s.events.SubnetDelete.run(ctx, tx, SubnetEvent{Subnet: d}); err != nil {
			return err
		}
		allocs, err := tx.IPs(ctx, id)
		if err != nil {
			return err
		}
		sub, err := parseSubnet(d)
		if err != nil {
			return err
		}
		var service []string
		for _, a := range allocs {
			r, err := tx.Get(ctx, "port", a.PortID)
			if err != nil {
				return err
			}
			pd, err := record.Decode(r)
			if err != nil {
				return err
			}
			owner := resource.Str(pd["device_owner"])
			// SLAAC addresses of ordinary ports go with the subnet too.
			if !slices.Contains(autoDeletedOwners, owner) && !(sub.auto() && !isRouterOwner(owner)) {
				return fault.Conflict("SubnetInUse", "Unable to complete operation on subnet %s: One or more ports have an IP allocation from this subnet.", id)
			}
			service = append(service, a.PortID)
		}
		for _, pid := range service {
			if err := s.dropSubnetIPs(ctx, tx, pid, id); err != nil {
				return err
			}
		}
		if err := tx.Delete(ctx, "subnet", id); err != nil {
			return err
		}
		nrec, nd, err := getVisible(ctx, tx, "network", sub.NetworkID, true, networkNotFound(sub.NetworkID))
		if err != nil {
			return err
		}
		return s.bumpNetwork(ctx, tx, nrec, nd)
	})
}

// dropSubnetIPs removes a subnet's addresses from a port's fixed_ips.
func (p *Plugin) dropSubnetIPs(ctx context.Context, tx store.Tx, portID, subnetID string) error {
	r, err := tx.Get(ctx, "port", portID)
	if err != nil {
		return err
	}
	d, err := record.Decode(r)
	if err != nil {
		return err
	}
	var keep []any
	for _, x := range d["fixed_ips"].([]any) {
		m := x.(map[string]any)
		if m["subnet_id"] == subnetID {
			if err := tx.ReleaseIP(ctx, subnetID, resource.Str(m["ip_address"])); err != nil {
				return err
			}
			continue
		}
		keep = append(keep, m)
	}
	d["fixed_ips"] = nonNilList(keep)
	p.setDNSAssignment(d)
	stdattr.Touch(d, p.now())
	if r.Doc, err = encode(d); err != nil {
		return err
	}
	return tx.Update(ctx, r)
}

func nonNilList(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

// isRouterOwner tells router-owned ports (interfaces and gateways).
func isRouterOwner(owner string) bool {
	switch owner {
	case "network:router_interface", "network:ha_router_replicated_interface",
		"network:router_interface_distributed", "network:router_gateway", "network:router_centralized_snat":
		return true
	}
	return false
}

// serviceAllows tells whether a subnet's service_types admit a device owner.
func serviceAllows(s *subnet, owner string) bool {
	return len(s.ServiceTypes) == 0 || slices.Contains(s.ServiceTypes, owner)
}
