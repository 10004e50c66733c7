package ml2

import (
	"context"
	"slices"
	"strings"

	"github.com/google/uuid"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/stdattr"
	"muon/internal/store"
)

// autoDeletedOwners are the device owners whose ports never keep a network
// or subnet alive: the network's own services.
var autoDeletedOwners = []string{"network:dhcp", "network:distributed"}

func networkNotFound(id string) *fault.Error {
	return fault.NotFound("NetworkNotFound", "Network %s could not be found.", id)
}

// Networks serves /v2.0/networks.
type Networks struct{ *Plugin }

// Create makes networks with their segments.
func (n Networks) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	cred := auth.FromContext(ctx)
	for _, d := range docs {
		if !cred.Admin() && (resource.BoolOf(d["shared"]) || resource.BoolOf(d["router:external"])) {
			return nil, fault.Forbidden("PolicyNotAuthorized", "(rule:create_network:shared) is disallowed by policy")
		}
	}
	return record.CreateAll(ctx, n.st, docs, n.createNetwork)
}

func (p *Plugin) createNetwork(ctx context.Context, tx store.Tx, d resource.Doc) error {
	if err := stdattr.Stamp(ctx, d, p.now(), true); err != nil {
		return err
	}
	if err := p.checkQuota(ctx, tx, "network", resource.Str(d["project_id"])); err != nil {
		return err
	}
	segs, err := p.requestedSegments(d)
	if err != nil {
		return err
	}
	id := resource.Str(d["id"])
	d["status"] = "ACTIVE"
	d["subnets"] = []any{}
	d["availability_zones"] = []any{}
	d["ipv4_address_scope"], d["ipv6_address_scope"] = nil, nil
	d["l2_adjacency"] = true
	// The network's record comes first: segments point at it.
	rec, err := record.New("network", d, "", resource.BoolOf(d["shared"]) || resource.BoolOf(d["router:external"]))
	if err != nil {
		return err
	}
	if err := tx.Insert(ctx, rec); err != nil {
		return err
	}
	// shared and router:external are the owner's wildcard RBAC policies.
	for attr, action := range map[string]string{"shared": accessShared, "router:external": accessExternal} {
		if resource.BoolOf(d[attr]) {
			if err := p.addWildcard(ctx, tx, id, resource.Str(d["project_id"]), action); err != nil {
				return err
			}
		}
	}
	if segs == nil {
		seg, err := p.tenantSegment(ctx, tx, id)
		if err != nil {
			return err
		}
		segs = []Segment{seg}
	} else {
		for i := range segs {
			if err := p.reserveSegment(ctx, tx, &segs[i], id, d); err != nil {
				return err
			}
		}
	}
	maxMTU := p.maxMTU(segs)
	// An mtu of 0, as absent, means the largest the segments carry.
	if v, ok := d["mtu"]; ok && v != nil && resource.IntOf(v) != 0 {
		if m := resource.IntOf(v); m > int64(maxMTU) {
			return fault.InvalidInput("Requested MTU is too big, maximum is %d", maxMTU)
		} else if m < 68 {
			return fault.InvalidInput("MTU %d is too small, minimum is 68", m)
		}
	} else {
		d["mtu"] = int64(maxMTU)
	}
	setProviderView(d, segs)
	if rec.Doc, err = encode(d); err != nil {
		return err
	}
	if err := tx.Update(ctx, rec); err != nil {
		return err
	}
	return p.events.NetworkCreate.run(ctx, tx, NetworkEvent{Network: d})
}

// requestedSegments reads provider:* or segments from a create body; nil
// means a tenant network.
func (p *Plugin) requestedSegments(d resource.Doc) ([]Segment, error) {
	nt, hasType := d["provider:network_type"]
	pn, hasPhys := d["provider:physical_network"]
	sid, hasID := d["provider:segmentation_id"]
	delete(d, "provider:network_type")
	delete(d, "provider:physical_network")
	delete(d, "provider:segmentation_id")
	raw, hasSegs := d["segments"]
	delete(d, "segments")
	if hasSegs && (hasType || hasPhys || hasID) {
		return nil, fault.InvalidInput("Segments and provider values cannot both be set")
	}
	if hasSegs {
		var segs []Segment
		for _, x := range raw.([]any) {
			m := x.(map[string]any)
			for k := range m {
				if !slices.Contains([]string{"provider:network_type", "provider:physical_network", "provider:segmentation_id"}, k) {
					return nil, fault.InvalidInput("Unrecognized attribute(s) '%s'", k)
				}
			}
			seg, err := segmentFrom(m["provider:network_type"], m["provider:physical_network"], m["provider:segmentation_id"])
			if err != nil {
				return nil, err
			}
			if slices.Contains(segs, seg) {
				return nil, fault.InvalidInput("Duplicate segment entry in request")
			}
			segs = append(segs, seg)
		}
		if len(segs) == 0 {
			return nil, nil
		}
		return segs, nil
	}
	if !hasType && !hasPhys && !hasID {
		return nil, nil
	}
	seg, err := segmentFrom(nt, pn, sid)
	if err != nil {
		return nil, err
	}
	return []Segment{seg}, nil
}

func segmentFrom(nt, pn, sid any) (Segment, error) {
	var s Segment
	t, ok := nt.(string)
	if !ok || t == "" {
		return s, fault.InvalidInput("network_type required")
	}
	s.NetworkType = t
	if pn != nil {
		p, ok := pn.(string)
		if !ok {
			return s, fault.InvalidInput("'%v' is not a valid physical_network", pn)
		}
		s.PhysicalNetwork = p
	}
	if sid != nil {
		n, err := resource.Int.Convert(sid)
		if err != nil {
			return s, fault.InvalidInput("%v for provider:segmentation_id", err)
		}
		s.SegmentationID = n.(int64)
		if s.SegmentationID <= 0 {
			return s, fault.InvalidInput("provider:segmentation_id must be positive")
		}
	}
	return s, nil
}

func (p *Plugin) typeDriver(t string) (TypeDriver, error) {
	d, ok := p.types[t]
	if !ok {
		return nil, fault.InvalidInput("network_type value '%s' not supported", t)
	}
	return d, nil
}

// reserveSegment validates a provider segment, claims its ID and stores
// it as a segment resource of the network.
func (p *Plugin) reserveSegment(ctx context.Context, tx store.Tx, seg *Segment, networkID string, net resource.Doc) error {
	drv, err := p.typeDriver(seg.NetworkType)
	if err != nil {
		return err
	}
	if err := drv.Validate(*seg); err != nil {
		return err
	}
	return p.storeSegment(ctx, tx, drv, seg, networkID, net, "", "")
}

func (p *Plugin) storeSegment(ctx context.Context, tx store.Tx, drv TypeDriver, seg *Segment, networkID string, net resource.Doc, name, desc string) error {
	seg.ID = uuid.NewString()
	d := resource.Doc{
		"id": seg.ID, "network_id": networkID, "network_type": seg.NetworkType,
		"name": nilIfEmpty(name), "description": nilIfEmpty(desc), "project_id": resource.Str(net["project_id"]),
		"created_at": stdattr.Timestamp(p.now()), "updated_at": stdattr.Timestamp(p.now()), "revision_number": int64(0),
	}
	rec, err := record.New("segment", d, networkID, false)
	if err != nil {
		return err
	}
	if err := tx.Insert(ctx, rec); err != nil {
		return err
	}
	if err := drv.Reserve(ctx, tx, seg, networkID); err != nil {
		return err
	}
	d["physical_network"] = nilIfEmpty(seg.PhysicalNetwork)
	d["segmentation_id"] = nilIfZero(seg.SegmentationID)
	if rec.Doc, err = encode(d); err != nil {
		return err
	}
	return tx.Update(ctx, rec)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nilIfZero(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

// tenantSegment gives a tenant network a segment of the first configured
// tenant type that has one free.
func (p *Plugin) tenantSegment(ctx context.Context, tx store.Tx, networkID string) (Segment, error) {
	net := resource.Doc{"project_id": ""}
	for _, t := range p.cfg.TenantNetworkTypes {
		seg := Segment{NetworkType: t}
		err := p.storeSegment(ctx, tx, p.types[t], &seg, networkID, net, "", "")
		if f, ok := fault.As(err); ok && f.Type == "NoNetworkAvailable" {
			// The segment record was inserted before the claim failed.
			if err := tx.Delete(ctx, "segment", seg.ID); err != nil {
				return Segment{}, err
			}
			continue
		}
		return seg, err
	}
	return Segment{}, fault.New(503, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.")
}

func (p *Plugin) maxMTU(segs []Segment) int {
	m := 0
	for _, s := range segs {
		if v := p.types[s.NetworkType].MTU(s); m == 0 || v < m {
			m = v
		}
	}
	if m == 0 {
		m = p.cfg.Types.GlobalPhysnetMTU
	}
	return m
}

// setProviderView shows a single segment as provider:* attributes and
// several as the multi-provider segments list.
func setProviderView(d resource.Doc, segs []Segment) {
	delete(d, "segments")
	delete(d, "provider:network_type")
	delete(d, "provider:physical_network")
	delete(d, "provider:segmentation_id")
	if len(segs) == 1 {
		s := segs[0]
		d["provider:network_type"] = s.NetworkType
		d["provider:physical_network"] = nilIfEmpty(s.PhysicalNetwork)
		d["provider:segmentation_id"] = nilIfZero(s.SegmentationID)
		return
	}
	l := make([]any, 0, len(segs))
	for _, s := range segs {
		l = append(l, map[string]any{
			"provider:network_type":     s.NetworkType,
			"provider:physical_network": nilIfEmpty(s.PhysicalNetwork),
			"provider:segmentation_id":  nilIfZero(s.SegmentationID),
		})
	}
	d["segments"] = l
}

// networkSegments reads a network's segments in creation order.
func networkSegments(ctx context.Context, tx store.Tx, networkID string) ([]Segment, []resource.Doc, error) {
	recs, err := tx.List(ctx, store.Filter{Kind: "segment", Parents: []string{networkID}})
	if err != nil {
		return nil, nil, err
	}
	docs := make([]resource.Doc, 0, len(recs))
	for i := range recs {
		d, err := record.Decode(&recs[i])
		if err != nil {
			return nil, nil, err
		}
		docs = append(docs, d)
	}
	slices.SortStableFunc(docs, func(a, b resource.Doc) int {
		if c := compareStr(resource.Str(a["created_at"]), resource.Str(b["created_at"])); c != 0 {
			return c
		}
		return compareStr(resource.Str(a["id"]), resource.Str(b["id"]))
	})
	segs := make([]Segment, 0, len(docs))
	for _, d := range docs {
		segs = append(segs, Segment{ID: resource.Str(d["id"]), NetworkType: resource.Str(d["network_type"]),
			PhysicalNetwork: resource.Str(d["physical_network"]), SegmentationID: resource.IntOf(d["segmentation_id"])})
	}
	return segs, docs, nil
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// withSubnets fills networks' subnets lists from the subnet records.
func withSubnets(ctx context.Context, tx store.Tx, nets []resource.Doc) error {
	if len(nets) == 0 {
		return nil
	}
	ids := make([]string, len(nets))
	byID := make(map[string]resource.Doc, len(nets))
	for i, d := range nets {
		ids[i] = resource.Str(d["id"])
		byID[ids[i]] = d
		d["subnets"] = []any{}
	}
	f := store.Filter{Kind: "subnet"}
	if len(ids) <= 500 {
		f.Parents = ids
	}
	subs, err := tx.List(ctx, f)
	if err != nil {
		return err
	}
	for _, s := range subs {
		if d, ok := byID[s.ParentID]; ok {
			d["subnets"] = append(d["subnets"].([]any), s.ID)
		}
	}
	return nil
}

// Get shows one network.
func (n Networks) Get(ctx context.Context, id string) (resource.Doc, error) {
	var d resource.Doc
	err := n.st.View(ctx, func(tx store.Tx) error {
		var err error
		if _, d, err = getVisible(ctx, tx, "network", id, false, networkNotFound(id)); err != nil {
			return err
		}
		if err := withSubnets(ctx, tx, []resource.Doc{d}); err != nil {
			return err
		}
		if err := sharedFor(ctx, tx, []resource.Doc{d}); err != nil {
			return err
		}
		return fillAddressScopes(ctx, tx, []resource.Doc{d})
	})
	return d, err
}

// List returns the networks the caller may see.
func (n Networks) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	var out []resource.Doc
	err := n.st.View(ctx, func(tx store.Tx) error {
		f := scope(ctx, "network", true)
		if ids := q.Filters["id"]; len(ids) > 0 {
			f.IDs = ids
		}
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
		if err := withSubnets(ctx, tx, out); err != nil {
			return err
		}
		if err := sharedFor(ctx, tx, out); err != nil {
			return err
		}
		return fillAddressScopes(ctx, tx, out)
	})
	return out, err
}

// Update changes a network.
func (n Networks) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	cred := auth.FromContext(ctx)
	var out resource.Doc
	err := n.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := lockOwned(ctx, tx, "network", id, "update", ifRev, networkNotFound(id))
		if err != nil {
			return err
		}
		if _, ok := patch["router:external"]; ok && !cred.Admin() {
			return fault.Forbidden("PolicyNotAuthorized", "(rule:update_network:router:external) is disallowed by policy")
		}
		wasShared, wasExternal := resource.BoolOf(d["shared"]), resource.BoolOf(d["router:external"])
		if sh, ok := patch["shared"]; ok && sh != d["shared"] {
			if !cred.Admin() {
				return fault.Forbidden("PolicyNotAuthorized", "(rule:update_network:shared) is disallowed by policy")
			}
			if !resource.BoolOf(sh) {
				if err := n.checkUnshare(ctx, tx, rec); err != nil {
					return err
				}
			}
		}
		if v, ok := patch["mtu"]; ok {
			segs, _, err := networkSegments(ctx, tx, id)
			if err != nil {
				return err
			}
			if resource.IntOf(v) == 0 {
				v = int64(n.maxMTU(segs))
				patch["mtu"] = v
			}
			if m, max := resource.IntOf(v), n.maxMTU(segs); m > int64(max) {
				return fault.InvalidInput("Requested MTU is too big, maximum is %d", max)
			} else if m < 68 {
				return fault.InvalidInput("MTU %d is too small, minimum is 68", m)
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
			stdattr.Touch(d, n.now())
		}
		if err := n.sharePolicies(ctx, tx, rec, wasShared, wasExternal, d); err != nil {
			return err
		}
		shared, err := hasWildcard(ctx, tx, id)
		if err != nil {
			return err
		}
		// Subnets are everyone's to see only when the network is shared,
		// not when it is merely external.
		if resource.BoolOf(d["shared"]) != wasShared {
			if err := n.shareSubnets(ctx, tx, id, resource.BoolOf(d["shared"])); err != nil {
				return err
			}
		}
		nrec, err := record.New("network", d, "", shared)
		if err != nil {
			return err
		}
		if err := tx.Update(ctx, nrec); err != nil {
			return err
		}
		if err := n.events.NetworkUpdate.run(ctx, tx, NetworkEvent{Network: d, Patch: patch}); err != nil {
			return err
		}
		out = d
		if err := withSubnets(ctx, tx, []resource.Doc{d}); err != nil {
			return err
		}
		return sharedFor(ctx, tx, []resource.Doc{d})
	})
	return out, err
}

// checkUnshare refuses to unshare a network that projects with no other
// access_as_shared policy use.
func (p *Plugin) checkUnshare(ctx context.Context, tx store.Tx, nrec *store.Record) error {
	inUse, err := inUseAfter(ctx, tx, nrec, "", "*")
	if err != nil {
		return err
	}
	if inUse {
		return fault.Conflict("InvalidSharedSetting", "Unable to reconfigure sharing settings for network %s. Multiple tenants are using it.", nrec.ID)
	}
	return nil
}

// sharePolicies turns changes of shared and router:external into the
// owner's wildcard policies: shared=False drops the wildcard
// access_as_shared one, router:external=False every access_as_external one.
func (p *Plugin) sharePolicies(ctx context.Context, tx store.Tx, rec *store.Record, wasShared, wasExternal bool, d resource.Doc) error {
	for _, c := range []struct {
		was, now bool
		action   string
		target   string
	}{
		{wasShared, resource.BoolOf(d["shared"]), accessShared, "*"},
		{wasExternal, resource.BoolOf(d["router:external"]), accessExternal, ""},
	} {
		switch {
		case c.now && !c.was:
			if err := p.addWildcard(ctx, tx, rec.ID, rec.ProjectID, c.action); err != nil {
				return err
			}
		case c.was && !c.now:
			if err := dropPolicies(ctx, tx, rec.ID, c.action, c.target); err != nil {
				return err
			}
		}
	}
	return nil
}

// shareSubnets makes a network's subnets follow its visibility.
func (p *Plugin) shareSubnets(ctx context.Context, tx store.Tx, networkID string, shared bool) error {
	subs, err := tx.List(ctx, store.Filter{Kind: "subnet", Parents: []string{networkID}})
	if err != nil {
		return err
	}
	for i := range subs {
		subs[i].Shared = shared
		if err := tx.Update(ctx, &subs[i]); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes a network, its subnets, segments and service ports; user
// ports keep it alive (NetworkInUse).
func (n Networks) Delete(ctx context.Context, id string, ifRev int64) error {
	return n.st.Update(ctx, func(tx store.Tx) error {
		_, d, err := lockOwned(ctx, tx, "network", id, "delete", ifRev, networkNotFound(id))
		if err != nil {
			return err
		}
		if err := n.events.NetworkDelete.run(ctx, tx, NetworkEvent{Network: d}); err != nil {
			return err
		}
		ports, err := tx.List(ctx, store.Filter{Kind: "port", Parents: []string{id}})
		if err != nil {
			return err
		}
		var inUse []string
		for i := range ports {
			pd, err := record.Decode(&ports[i])
			if err != nil {
				return err
			}
			if !slices.Contains(autoDeletedOwners, resource.Str(pd["device_owner"])) {
				inUse = append(inUse, ports[i].ID)
			}
		}
		if len(inUse) > 0 {
			return fault.Conflict("NetworkInUse", "Unable to complete operation on network %s. There are one or more ports still in use on the network, id for these ports is: %s.", id, strings.Join(inUse, ","))
		}
		for i := range ports {
			if err := tx.Delete(ctx, "port", ports[i].ID); err != nil {
				return err
			}
		}
		for _, kind := range []string{"subnet", "segment", "rbac_policy"} {
			recs, err := tx.List(ctx, store.Filter{Kind: kind, Parents: []string{id}})
			if err != nil {
				return err
			}
			for i := range recs {
				if err := tx.Delete(ctx, kind, recs[i].ID); err != nil {
					return err
				}
			}
		}
		return tx.Delete(ctx, "network", id)
	})
}

// equalValue compares two attribute values as JSON would.
func equalValue(a, b any) bool {
	ea, err1 := encode(resource.Doc{"v": a})
	eb, err2 := encode(resource.Doc{"v": b})
	return err1 == nil && err2 == nil && string(ea) == string(eb)
}
