package l3

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/google/uuid"

	"muon/internal/fault"
	"muon/internal/ml2"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/store"
)

// PortForwardings serves /v2.0/floatingips/{id}/port_forwardings.
type PortForwardings struct{ *Plugin }

func pfNotFound(id string) *fault.Error {
	return fault.NotFound("PortForwardingNotFound", "Port Forwarding %s could not be found.", id)
}

// Targets gives policy the port forwardings with their floating IP's
// project ("ext_parent:project_id"); a floating IP the caller cannot see
// is a 404.
func (pf PortForwardings) Targets(ctx context.Context, fipID string, docs []resource.Doc) ([]map[string]any, error) {
	return pf.parentTargets(ctx, "floatingip", fipID, fipNotFound(fipID), docs)
}

// parentTargets gives policy a sub-collection's documents with their
// parent's project as theirs and as "ext_parent:project_id"; a parent the
// caller cannot see is nf.
func (p *Plugin) parentTargets(ctx context.Context, kind, parentID string, nf *fault.Error, docs []resource.Doc) ([]map[string]any, error) {
	var project string
	err := p.core.View(ctx, func(tx store.Tx) error {
		rec, _, err := ml2.Visible(ctx, tx, kind, parentID, false, nf)
		if err == nil {
			project = rec.ProjectID
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(docs))
	for i, d := range docs {
		t := make(map[string]any, len(d)+4)
		for k, v := range d {
			t[k] = v
		}
		t["project_id"], t["tenant_id"] = project, project
		t["ext_parent:project_id"], t["ext_parent:tenant_id"] = project, project
		out[i] = t
	}
	return out, nil
}

// Create adds port forwardings to a floating IP.
func (pf PortForwardings) Create(ctx context.Context, fipID string, docs []resource.Doc) ([]resource.Doc, error) {
	out := make([]resource.Doc, 0, len(docs))
	err := pf.core.Update(ctx, func(tx store.Tx) error {
		out = out[:0]
		frec, fd, err := ml2.Visible(ctx, tx, "floatingip", fipID, true, fipNotFound(fipID))
		if err != nil {
			return err
		}
		if err := ml2.OwnerOnly(ctx, frec, "update"); err != nil {
			return err
		}
		before := frec.Doc
		for _, d := range docs {
			d = resource.Clone(d)
			delete(d, "project_id")
			d["id"] = uuid.NewString()
			if err := pf.place(ctx, tx, fd, d); err != nil {
				return err
			}
			rec, err := record.New("port_forwarding", d, fipID, false)
			if err != nil {
				return err
			}
			rec.ProjectID = frec.ProjectID
			if err := tx.Insert(ctx, rec); err != nil {
				return err
			}
			if err := pf.claim(ctx, tx, fipID, d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return pf.save(ctx, tx, frec, fd, before)
	})
	return out, err
}

// place validates a port forwarding against its floating IP and internal
// port and points the floating IP at the router that reaches the port.
func (p *Plugin) place(ctx context.Context, tx store.Tx, fd, d resource.Doc) error {
	fipID := resource.Str(fd["id"])
	if err := normalizePorts(d); err != nil {
		return err
	}
	portID := resource.Str(d["internal_port_id"])
	_, pd, err := p.core.PortTx(ctx, tx, portID, false)
	if err != nil {
		return err
	}
	var v4 []fixedIP
	for _, f := range fixedIPs(pd) {
		if f.IP.Is4() {
			v4 = append(v4, f)
		}
	}
	if len(v4) == 0 {
		return badRequest("port_forwarding", "Requested internal port %s must allocate an IPv4 address at least", portID)
	}
	if d["internal_ip_address"] == nil || d["internal_ip_address"] == "" {
		d["internal_ip_address"] = v4[0].IP.String()
	}
	addr, _ := netip.ParseAddr(resource.Str(d["internal_ip_address"]))
	var sub string
	for _, f := range v4 {
		if f.IP == addr {
			sub = f.SubnetID
		}
	}
	if sub == "" {
		return badRequest("port_forwarding", "Requested internal IP address %s is not suitable for internal neutron port %s, as its fixed_ips are %v", addr, portID, pd["fixed_ips"])
	}
	if fd["port_id"] != nil {
		return fault.Conflict("FloatingIPPortAlreadyAssociated", "Cannot associate floating IP %s (%s) with port %s using fixed IP %s, as that fixed IP already has a floating IP on external network %s.", fd["floating_ip_address"], fipID, fd["port_id"], fd["fixed_ip_address"], fd["floating_network_id"])
	}
	bound, err := tx.NameID(ctx, "fip_fixed", portID, addr.String()+"@"+resource.Str(fd["floating_network_id"]))
	if err == nil {
		return fault.Conflict("PortHasBindingFloatingIP", "Cannot create port forwarding to floating IP %s (%s) with port %s using fixed IP %s, as that port already has a binding floating IP %s.", fd["floating_ip_address"], fipID, portID, addr, bound)
	}
	rid, ok, err := p.routerFor(ctx, tx, sub, resource.Str(fd["floating_network_id"]))
	if err != nil {
		return err
	}
	if !ok {
		return badRequest("port_forwarding", "External network %s is not reachable from subnet %s. Cannot set Port forwarding for Port %s with Floating IP %s", fd["floating_network_id"], sub, portID, fipID)
	}
	if r := resource.Str(fd["router_id"]); r != "" && r != rid {
		return badRequest("port_forwarding", "Floating IP %s is already used through router %s, not router %s", fipID, r, rid)
	}
	fd["router_id"] = rid
	// Overlapping external ranges of one protocol on the floating IP.
	_, others, err := record.List(ctx, tx, store.Filter{Kind: "port_forwarding", Parents: []string{fipID}})
	if err != nil {
		return err
	}
	lo, hi, _ := parseRange(resource.Str(d["external_port_range"]))
	for _, o := range others {
		if o["id"] == d["id"] || o["protocol"] != d["protocol"] {
			continue
		}
		olo, ohi, _ := parseRange(resource.Str(o["external_port_range"]))
		if lo <= ohi && olo <= hi {
			return duplicatePF(fmt.Sprintf("floatingip_id=%s, external_port=%s, protocol=%s", fipID, o["external_port_range"], o["protocol"]))
		}
	}
	return nil
}

func duplicatePF(conflict string) error {
	return badRequest("port_forwarding", "A duplicate port forwarding entry with same attributes already exists, conflicting values are {%s}", conflict)
}

// normalizePorts fills both the single-port and the range forms from
// whichever was given, and checks the ranges match.
func normalizePorts(d resource.Doc) error {
	for _, side := range []string{"external", "internal"} {
		single, rng := side+"_port", side+"_port_range"
		sv, rv := d[single], d[rng]
		switch {
		case sv != nil && rv != nil && resource.Str(rv) != "":
			if lo, hi, _ := parseRange(resource.Str(rv)); lo != hi || int64(lo) != resource.IntOf(sv) {
				return badRequest("port_forwarding", "The %s and %s attributes cannot be used together", single, rng)
			}
		case sv != nil:
			d[rng] = strconv.FormatInt(resource.IntOf(sv), 10)
		case rv != nil && resource.Str(rv) != "":
			lo, hi, _ := parseRange(resource.Str(rv))
			if lo == hi {
				d[single] = int64(lo)
			} else {
				d[single] = nil
			}
		default:
			return badRequest("port_forwarding", "Either %s or %s must be specified", single, rng)
		}
		lo, hi, _ := parseRange(resource.Str(d[rng]))
		if lo == hi {
			d[rng] = strconv.Itoa(lo)
			d[single] = int64(lo)
		} else {
			d[rng] = fmt.Sprintf("%d:%d", lo, hi)
		}
	}
	elo, ehi, _ := parseRange(resource.Str(d["external_port_range"]))
	ilo, ihi, _ := parseRange(resource.Str(d["internal_port_range"]))
	if ihi-ilo != 0 && ihi-ilo != ehi-elo {
		return badRequest("port_forwarding", "The internal and external port ranges must have the same size, or the internal range must be a single port")
	}
	return nil
}

// claim holds a port forwarding's keys: one (floating IP, protocol,
// external ports) and one (internal port, address, protocol, internal
// ports).
func (p *Plugin) claim(ctx context.Context, tx store.Tx, fipID string, d resource.Doc) error {
	ok, err := tx.ClaimName(ctx, "pf_external", fipID, resource.Str(d["protocol"])+":"+resource.Str(d["external_port_range"]), resource.Str(d["id"]))
	if err != nil {
		return err
	}
	if !ok {
		return duplicatePF(fmt.Sprintf("floatingip_id=%s, external_port=%s, protocol=%s", fipID, d["external_port_range"], d["protocol"]))
	}
	ok, err = tx.ClaimName(ctx, "pf_internal", resource.Str(d["internal_port_id"]), fmt.Sprintf("%s:%s:%s", d["protocol"], d["internal_ip_address"], d["internal_port_range"]), resource.Str(d["id"]))
	if err != nil {
		return err
	}
	if !ok {
		return duplicatePF(fmt.Sprintf("internal_port_id=%s, internal_ip_address=%s, internal_port=%s, protocol=%s", d["internal_port_id"], d["internal_ip_address"], d["internal_port_range"], d["protocol"]))
	}
	return nil
}

func (p *Plugin) release(ctx context.Context, tx store.Tx, fipID string, d resource.Doc) error {
	if err := tx.ReleaseName(ctx, "pf_external", fipID, resource.Str(d["protocol"])+":"+resource.Str(d["external_port_range"])); err != nil {
		return err
	}
	return tx.ReleaseName(ctx, "pf_internal", resource.Str(d["internal_port_id"]), fmt.Sprintf("%s:%s:%s", d["protocol"], d["internal_ip_address"], d["internal_port_range"]))
}

// getPF reads a port forwarding of a floating IP the caller may see.
func (p *Plugin) getPF(ctx context.Context, tx store.Tx, fipID, id string, lock bool) (*store.Record, resource.Doc, *store.Record, resource.Doc, error) {
	frec, fd, err := ml2.Visible(ctx, tx, "floatingip", fipID, lock, fipNotFound(fipID))
	if err != nil {
		return nil, nil, nil, nil, err
	}
	rec, d, err := record.Get(ctx, tx, "port_forwarding", id, lock, pfNotFound(id))
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if rec.ParentID != fipID {
		return nil, nil, nil, nil, pfNotFound(id)
	}
	return rec, d, frec, fd, nil
}

// Get shows one port forwarding.
func (pf PortForwardings) Get(ctx context.Context, fipID, id string) (resource.Doc, error) {
	var d resource.Doc
	err := pf.core.View(ctx, func(tx store.Tx) error {
		var err error
		_, d, _, _, err = pf.getPF(ctx, tx, fipID, id, false)
		return err
	})
	return d, err
}

// List returns a floating IP's port forwardings.
func (pf PortForwardings) List(ctx context.Context, fipID string, q *resource.Query) ([]resource.Doc, error) {
	var out []resource.Doc
	err := pf.core.View(ctx, func(tx store.Tx) error {
		if _, _, err := ml2.Visible(ctx, tx, "floatingip", fipID, false, fipNotFound(fipID)); err != nil {
			return err
		}
		var err error
		_, out, err = record.List(ctx, tx, store.Filter{Kind: "port_forwarding", Parents: []string{fipID}, IDs: q.Filters["id"]})
		return err
	})
	return out, err
}

// Update changes a port forwarding; its keys are claimed anew.
func (pf PortForwardings) Update(ctx context.Context, fipID, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	var out resource.Doc
	err := pf.core.Update(ctx, func(tx store.Tx) error {
		rec, d, frec, fd, err := pf.getPF(ctx, tx, fipID, id, true)
		if err != nil {
			return err
		}
		if err := ml2.OwnerOnly(ctx, frec, "update"); err != nil {
			return err
		}
		if err := pf.release(ctx, tx, fipID, d); err != nil {
			return err
		}
		before, fbefore := rec.Doc, frec.Doc
		// A new single port or range replaces both forms of the old one.
		for _, side := range []string{"external", "internal"} {
			_, s := patch[side+"_port"]
			_, r := patch[side+"_port_range"]
			if s || r {
				delete(d, side+"_port")
				delete(d, side+"_port_range")
			}
		}
		if _, ok := patch["internal_port_id"]; ok {
			if _, ok := patch["internal_ip_address"]; !ok {
				d["internal_ip_address"] = nil
			}
		}
		for k, v := range patch {
			d[k] = v
		}
		if err := pf.place(ctx, tx, fd, d); err != nil {
			return err
		}
		if err := pf.claim(ctx, tx, fipID, d); err != nil {
			return err
		}
		out = d
		if err := pf.saveDoc(ctx, tx, rec, d, before); err != nil {
			return err
		}
		return pf.save(ctx, tx, frec, fd, fbefore)
	})
	return out, err
}

// saveDoc writes a port forwarding back (it has no revision).
func (p *Plugin) saveDoc(ctx context.Context, tx store.Tx, rec *store.Record, d resource.Doc, before []byte) error {
	n, err := record.New("port_forwarding", d, rec.ParentID, false)
	if err != nil {
		return err
	}
	n.ProjectID = rec.ProjectID
	return tx.Update(ctx, n)
}

// Delete removes a port forwarding.
func (pf PortForwardings) Delete(ctx context.Context, fipID, id string, ifRev int64) error {
	return pf.core.Update(ctx, func(tx store.Tx) error {
		rec, _, frec, _, err := pf.getPF(ctx, tx, fipID, id, true)
		if err != nil {
			return err
		}
		if err := ml2.OwnerOnly(ctx, frec, "update"); err != nil {
			return err
		}
		return pf.deletePF(ctx, tx, rec)
	})
}

// deletePF removes a port forwarding; a floating IP left without any is
// no longer tied to a router.
func (p *Plugin) deletePF(ctx context.Context, tx store.Tx, rec *store.Record) error {
	if err := tx.Delete(ctx, "port_forwarding", rec.ID); err != nil {
		return err
	}
	n, err := tx.Count(ctx, store.Filter{Kind: "port_forwarding", Parents: []string{rec.ParentID}})
	if err != nil || n > 0 {
		return err
	}
	frec, fd, err := record.Get(ctx, tx, "floatingip", rec.ParentID, true, fipNotFound(rec.ParentID))
	if err != nil {
		return err
	}
	if fd["port_id"] != nil || fd["router_id"] == nil {
		return nil
	}
	fd["router_id"], fd["status"], fd[fipInPlace] = nil, "DOWN", false
	return p.core.SaveTx(ctx, tx, frec, fd)
}
