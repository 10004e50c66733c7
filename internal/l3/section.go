package l3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"muon/internal/agentapi"
	"muon/internal/agents"
	"muon/internal/fault"
	"muon/internal/feature"
	"muon/internal/ml2"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/stdattr"
	"muon/internal/store"
)

// Section is the L3 agents' section of hosts' desired state: the routers
// the host's L3 agent hosts, their floating IPs and port forwardings.
type Section struct{ *Plugin }

// Name is the section's key.
func (Section) Name() string { return agentapi.L3Section }

// agentOf is the host's L3 agent id, "" when it has none.
func (s Section) agentOf(ctx context.Context, tx store.Tx, host string) (string, error) {
	id, err := tx.NameID(ctx, "agent", agents.L3, host)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return id, err
}

// Full is the host's whole section.
func (s Section) Full(ctx context.Context, tx store.Tx, host string) (any, error) {
	out := emptyL3()
	self, err := s.agentOf(ctx, tx, host)
	if err != nil || self == "" {
		return out, err
	}
	hosted, err := hostedRouters(ctx, tx, self)
	if err != nil || len(hosted) == 0 {
		return out, err
	}
	if out.Routers, err = s.routers(ctx, tx, slices.Sorted(maps.Keys(hosted))); err != nil {
		return nil, err
	}
	if out.FloatingIPs, out.PortForwardings, err = s.nat(ctx, tx, hosted, nil, nil); err != nil {
		return nil, err
	}
	return out, nil
}

func emptyL3() agentapi.L3 {
	return agentapi.L3{Routers: []agentapi.Router{}, FloatingIPs: []agentapi.FloatingIP{}, PortForwardings: []agentapi.PortForwarding{}}
}

// Delta is what the changes mean for the host's section: routers given
// to or taken from its agent (in full, or removed), hosted routers
// changed (sent again, without their floating IPs) and floating IPs and
// port forwardings changed (each alone).
func (s Section) Delta(ctx context.Context, tx store.Tx, host string, changes []store.Change) (any, bool, error) {
	var self string
	var hosted map[string]bool
	load := func() error {
		if hosted != nil {
			return nil
		}
		var err error
		if self, err = s.agentOf(ctx, tx, host); err != nil || self == "" {
			hosted = map[string]bool{}
			return err
		}
		hosted, err = hostedRouters(ctx, tx, self)
		return err
	}
	whole := map[string]bool{}   // routers given, sent with their NAT
	refresh := map[string]bool{} // routers changed
	gone := map[string]bool{}
	fips := map[string]bool{}
	pfs := map[string]bool{}
	var ports, subnets []string
	for _, c := range changes {
		switch c.Kind {
		case hostingKind, "router", "floatingip", "port_forwarding", "port", "subnet", "conntrack_helper":
		default:
			continue
		}
		if err := load(); err != nil {
			return nil, false, err
		}
		if self == "" {
			return nil, false, nil
		}
		switch c.Kind {
		case hostingKind:
			rid, aid, ok := parseHostingID(c.ID)
			if !ok || aid != self {
				continue
			}
			if c.Op == "delete" {
				gone[rid], whole[rid] = true, false
			} else {
				whole[rid], gone[rid] = true, false
			}
		case "router":
			if c.Op == "delete" {
				gone[c.ID] = true
			} else if hosted[c.ID] {
				refresh[c.ID] = true
			}
		case "conntrack_helper":
			if hosted[c.ParentID] {
				refresh[c.ParentID] = true
			}
		case "floatingip":
			fips[c.ID] = true
		case "port_forwarding":
			// Its floating IP's address goes with its first and last.
			pfs[c.ID], fips[c.ParentID] = true, true
		case "port":
			if c.Op != "delete" {
				ports = append(ports, c.ID)
			}
		case "subnet":
			if c.Op == "update" {
				subnets = append(subnets, c.ParentID)
			}
		}
	}
	if hosted == nil || self == "" {
		return nil, false, nil
	}
	// A router port's change (its addresses) or a subnet's (its
	// gateway) is its router's.
	if len(ports) > 0 {
		pts, err := ml2.ReadPorts(ctx, tx, ports)
		if err != nil {
			return nil, false, err
		}
		for _, pt := range pts {
			if routerOwned(pt.DeviceOwner) && hosted[pt.DeviceID] {
				refresh[pt.DeviceID] = true
			}
		}
	}
	if len(subnets) > 0 {
		pts, err := ml2.ReadPortsOfNetworks(ctx, tx, subnets)
		if err != nil {
			return nil, false, err
		}
		for _, l := range pts {
			for _, pt := range l {
				if routerOwned(pt.DeviceOwner) && hosted[pt.DeviceID] {
					refresh[pt.DeviceID] = true
				}
			}
		}
	}
	out := emptyL3()
	var ids []string
	for id := range whole {
		if whole[id] && hosted[id] {
			ids = append(ids, id)
		}
	}
	for id := range refresh {
		if hosted[id] && !whole[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var err error
	if out.Routers, err = s.routers(ctx, tx, ids); err != nil {
		return nil, false, err
	}
	for id, on := range gone {
		if on && !hosted[id] {
			out.RemovedRouters = append(out.RemovedRouters, id)
		}
	}
	slices.Sort(out.RemovedRouters)
	wholeSet := map[string]bool{}
	for id, on := range whole {
		if on && hosted[id] {
			wholeSet[id] = true
		}
	}
	if len(wholeSet) > 0 {
		f, p, err := s.nat(ctx, tx, wholeSet, nil, nil)
		if err != nil {
			return nil, false, err
		}
		out.FloatingIPs, out.PortForwardings = append(out.FloatingIPs, f...), append(out.PortForwardings, p...)
	}
	if len(fips)+len(pfs) > 0 {
		f, p, err := s.nat(ctx, tx, hosted, slices.Sorted(maps.Keys(fips)), slices.Sorted(maps.Keys(pfs)))
		if err != nil {
			return nil, false, err
		}
		sent := map[string]bool{}
		for _, x := range f {
			if !wholeSet[x.RouterID] {
				out.FloatingIPs = append(out.FloatingIPs, x)
			}
			sent[x.ID] = true
		}
		for _, x := range p {
			if !wholeSet[x.RouterID] {
				out.PortForwardings = append(out.PortForwardings, x)
			}
			sent[x.ID] = true
		}
		for _, id := range slices.Sorted(maps.Keys(fips)) {
			if !sent[id] {
				out.RemovedFloatingIPs = append(out.RemovedFloatingIPs, id)
			}
		}
		for _, id := range slices.Sorted(maps.Keys(pfs)) {
			if !sent[id] {
				out.RemovedPortForwardings = append(out.RemovedPortForwardings, id)
			}
		}
	}
	if len(out.Routers)+len(out.FloatingIPs)+len(out.PortForwardings)+len(out.RemovedRouters)+
		len(out.RemovedFloatingIPs)+len(out.RemovedPortForwardings) == 0 {
		return nil, false, nil
	}
	return out, true, nil
}

func routerOwned(owner string) bool { return owner == ownerInterface || owner == ownerGateway }

// routers describes the routers of ids that still exist, by id.
func (s Section) routers(ctx context.Context, tx store.Tx, ids []string) ([]agentapi.Router, error) {
	out := []agentapi.Router{}
	if len(ids) == 0 {
		return out, nil
	}
	recs, err := tx.List(ctx, store.Filter{Kind: "router", IDs: ids})
	if err != nil {
		return nil, err
	}
	docs := make([]resource.Doc, 0, len(recs))
	var portIDs []string
	for i := range recs {
		d, err := record.Decode(&recs[i])
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
		portIDs = append(portIDs, resource.Strings(d["interfaces"])...)
		if gw := resource.Str(d["gw_port_id"]); gw != "" {
			portIDs = append(portIDs, gw)
		}
	}
	ports, err := ml2.ReadPorts(ctx, tx, portIDs)
	if err != nil {
		return nil, err
	}
	helpers := map[string][]agentapi.ConntrackHelper{}
	hrecs, hdocs, err := record.List(ctx, tx, store.Filter{Kind: "conntrack_helper", Parents: ids})
	if err != nil {
		return nil, err
	}
	for i, d := range hdocs {
		helpers[hrecs[i].ParentID] = append(helpers[hrecs[i].ParentID], agentapi.ConntrackHelper{
			Protocol: resource.Str(d["protocol"]), Port: int(resource.IntOf(d["port"])), Helper: resource.Str(d["helper"])})
	}
	nets := map[string]bool{}
	for _, pt := range ports {
		nets[pt.NetworkID] = true
	}
	netIDs := slices.Sorted(maps.Keys(nets))
	subs, err := ml2.ReadSubnetsOfNetworks(ctx, tx, netIDs)
	if err != nil {
		return nil, err
	}
	subnet := map[string]ml2.SubnetInfo{}
	for _, l := range subs {
		for _, sb := range l {
			subnet[sb.ID] = sb
		}
	}
	mtus := map[string]int{}
	for _, id := range netIDs {
		n, ok, err := ml2.ReadNetwork(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			mtus[id] = n.MTU
		}
	}
	toPort := func(id string) (agentapi.RouterPort, bool) {
		pt, ok := ports[id]
		if !ok {
			return agentapi.RouterPort{}, false
		}
		rp := agentapi.RouterPort{ID: pt.ID, NetworkID: pt.NetworkID, MAC: pt.MAC, MTU: mtus[pt.NetworkID], Addrs: []agentapi.RouterAddr{}}
		for _, f := range pt.FixedIPs {
			sb, ok := subnet[f.SubnetID]
			pfx, err := netip.ParsePrefix(sb.CIDR)
			if !ok || err != nil {
				continue
			}
			rp.Addrs = append(rp.Addrs, agentapi.RouterAddr{IP: f.IP, PrefixLen: pfx.Bits(), SubnetID: f.SubnetID,
				Gateway: sb.GatewayIP, IPv6RAMode: sb.IPv6RAMode})
		}
		return rp, true
	}
	for _, d := range docs {
		r := agentapi.Router{ID: resource.Str(d["id"]), AdminStateUp: d["admin_state_up"] != false, Interfaces: []agentapi.RouterPort{}}
		for _, id := range resource.Strings(d["interfaces"]) {
			if rp, ok := toPort(id); ok {
				r.Interfaces = append(r.Interfaces, rp)
			}
		}
		if gw, _ := d["external_gateway_info"].(map[string]any); gw != nil {
			r.EnableSNAT = gw["enable_snat"] != false
			if rp, ok := toPort(resource.Str(d["gw_port_id"])); ok {
				r.Gateway = &rp
			}
		}
		r.ConntrackHelpers = helpers[r.ID]
		slices.SortFunc(r.ConntrackHelpers, func(a, b agentapi.ConntrackHelper) int {
			return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
		})
		rts, _ := parseRoutes(d["routes"])
		for _, rt := range rts {
			r.Routes = append(r.Routes, agentapi.Route{Destination: rt.Destination.String(), Nexthop: rt.NextHop.String()})
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b agentapi.Router) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// nat reads the floating IPs and port forwardings of the hosted routers:
// all of them, or those of fipIDs and pfIDs. A floating IP is sent when
// a hosted router routes it: associated with a port (1:1 NAT), or
// carrying port forwardings (its address only).
func (s Section) nat(ctx context.Context, tx store.Tx, hosted map[string]bool, fipIDs, pfIDs []string) ([]agentapi.FloatingIP, []agentapi.PortForwarding, error) {
	fipOut := []agentapi.FloatingIP{}
	pfOut := []agentapi.PortForwarding{}
	everything := fipIDs == nil && pfIDs == nil
	var pfRecs, fipRecs []store.Record
	var err error
	if everything {
		if pfRecs, err = tx.List(ctx, store.Filter{Kind: "port_forwarding"}); err != nil {
			return nil, nil, err
		}
		if fipRecs, err = tx.List(ctx, store.Filter{Kind: "floatingip"}); err != nil {
			return nil, nil, err
		}
	} else {
		if len(pfIDs) > 0 {
			if pfRecs, err = tx.List(ctx, store.Filter{Kind: "port_forwarding", IDs: pfIDs}); err != nil {
				return nil, nil, err
			}
		}
		if len(fipIDs) > 0 {
			if fipRecs, err = tx.List(ctx, store.Filter{Kind: "floatingip", IDs: fipIDs}); err != nil {
				return nil, nil, err
			}
		}
	}
	fipDocs := map[string]resource.Doc{}
	for i := range fipRecs {
		d, err := record.Decode(&fipRecs[i])
		if err != nil {
			return nil, nil, err
		}
		fipDocs[fipRecs[i].ID] = d
	}
	withPF := map[string]bool{}
	for i := range pfRecs {
		fd := fipDocs[pfRecs[i].ParentID]
		if fd == nil {
			rec, err := tx.Get(ctx, "floatingip", pfRecs[i].ParentID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			if fd, err = record.Decode(rec); err != nil {
				return nil, nil, err
			}
		}
		if !hosted[resource.Str(fd["router_id"])] {
			continue
		}
		d, err := record.Decode(&pfRecs[i])
		if err != nil {
			return nil, nil, err
		}
		elo, ehi, err1 := parseRange(resource.Str(d["external_port_range"]))
		ilo, ihi, err2 := parseRange(resource.Str(d["internal_port_range"]))
		if err1 != nil || err2 != nil {
			continue
		}
		withPF[pfRecs[i].ParentID] = true
		pfOut = append(pfOut, agentapi.PortForwarding{ID: pfRecs[i].ID, RouterID: resource.Str(fd["router_id"]),
			FloatingIP: resource.Str(fd["floating_ip_address"]), Protocol: resource.Str(d["protocol"]),
			ExternalPort: elo, ExternalPortEnd: ehi, InternalIP: resource.Str(d["internal_ip_address"]), InternalPort: ilo, InternalPortEnd: ihi})
	}
	for _, id := range slices.Sorted(maps.Keys(fipDocs)) {
		d := fipDocs[id]
		rid := resource.Str(d["router_id"])
		if !hosted[rid] {
			continue
		}
		fixed := resource.Str(d["fixed_ip_address"])
		if fixed == "" && !withPF[id] {
			if everything {
				continue
			}
			n, err := tx.Count(ctx, store.Filter{Kind: "port_forwarding", Parents: []string{id}})
			if err != nil {
				return nil, nil, err
			}
			if n == 0 {
				continue
			}
		}
		fipOut = append(fipOut, agentapi.FloatingIP{ID: id, RouterID: rid, FloatingIP: resource.Str(d["floating_ip_address"]), FixedIP: fixed})
	}
	slices.SortFunc(pfOut, func(a, b agentapi.PortForwarding) int { return strings.Compare(a.ID, b.ID) })
	return fipOut, pfOut, nil
}

// Observe takes the host's L3 status (agentapi.L3Status): floating IPs
// of routers it hosts that it programmed go ACTIVE (DOWN while their
// port is unbound). The plugin makes them DOWN as they leave a router.
func (s Section) Observe(ctx context.Context, host string, report json.RawMessage) error {
	var st agentapi.L3Status
	if err := feature.DecodeJSON(report, &st); err != nil {
		return err
	}
	if len(st.Active) > 100000 {
		return fault.BadRequest("Too many floating IPs in one report: %d.", len(st.Active))
	}
	if len(st.Active) == 0 {
		return nil
	}
	return s.core.Update(ctx, func(tx store.Tx) error {
		self, err := s.agentOf(ctx, tx, host)
		if err != nil || self == "" {
			return err
		}
		hosted, err := hostedRouters(ctx, tx, self)
		if err != nil {
			return err
		}
		// The floating IPs (locked), then their ports in one read.
		recs := make([]*store.Record, 0, len(st.Active))
		docs := make([]resource.Doc, 0, len(st.Active))
		var portIDs []string
		for _, id := range st.Active {
			rec, err := tx.Lock(ctx, "floatingip", id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			d, err := record.Decode(rec)
			if err != nil {
				return err
			}
			if !hosted[resource.Str(d["router_id"])] {
				continue // not this host's (any more)
			}
			recs, docs = append(recs, rec), append(docs, d)
			if port := resource.Str(d["port_id"]); port != "" {
				portIDs = append(portIDs, port)
			}
		}
		ports, err := ml2.ReadPorts(ctx, tx, portIDs)
		if err != nil {
			return err
		}
		for i, d := range docs {
			was, wasInPlace := resource.Str(d["status"]), d[fipInPlace] == true
			d[fipInPlace] = true
			d["status"] = fipStatus(d, ports[resource.Str(d["port_id"])].Host != "")
			if d["status"] == was && wasInPlace {
				continue
			}
			if d["status"] != was {
				stdattr.Touch(d, time.Now())
			}
			if recs[i].Doc, err = json.Marshal(d); err != nil {
				return err
			}
			if err := tx.Observe(ctx, recs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}
