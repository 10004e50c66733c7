package ml2

import (
	"context"
	"strings"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/stdattr"
	"muon/internal/store"
)

func segmentNotFound(id string) *fault.Error {
	return fault.NotFound("SegmentNotFound", "Segment %s could not be found.", id)
}

// hiddenByPolicy is what Neutron answers for a resource that exists but
// that the caller may not see (the policy hook turns the answer into 404).
func hiddenByPolicy() *fault.Error {
	return fault.NotFound("HTTPNotFound", "The resource could not be found.")
}

// Segments serves /v2.0/segments. Every operation is admin-only: others
// are refused creation (403), list nothing and get 404 for the rest.
type Segments struct{ *Plugin }

// segmentView shapes a stored segment as Neutron shows it: no project
// (tenant_id is not visible on segments), no tags and no segment_index.
func segmentView(d resource.Doc) resource.Doc {
	delete(d, "project_id")
	delete(d, "tenant_id")
	delete(d, "tags")
	delete(d, "segment_index")
	return d
}

// Create adds segments to networks, claiming their segmentation IDs.
func (s Segments) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	if !auth.FromContext(ctx).Admin() {
		return nil, policyDenied("create_segment")
	}
	out := make([]resource.Doc, 0, len(docs))
	err := s.st.Update(ctx, func(tx store.Tx) error {
		out = out[:0]
		for _, d := range docs {
			sd, err := s.createSegment(ctx, tx, d)
			if err != nil {
				return err
			}
			out = append(out, segmentView(sd))
		}
		return nil
	})
	return out, err
}

func (p *Plugin) createSegment(ctx context.Context, tx store.Tx, d resource.Doc) (resource.Doc, error) {
	netID := resource.Str(d["network_id"])
	nrec, err := tx.Lock(ctx, "network", netID)
	if err != nil {
		return nil, notFound(err, networkNotFound(netID))
	}
	nd, err := record.Decode(nrec)
	if err != nil {
		return nil, err
	}
	seg := Segment{NetworkType: resource.Str(d["network_type"]), PhysicalNetwork: resource.Str(d["physical_network"]),
		SegmentationID: resource.IntOf(d["segmentation_id"])}
	if seg.NetworkType == "" {
		return nil, fault.InvalidInput("network_type required")
	}
	drv, err := p.typeDriver(seg.NetworkType)
	if err != nil {
		return nil, err
	}
	if err := drv.Validate(seg); err != nil {
		return nil, err
	}
	if err := p.storeSegment(ctx, tx, drv, &seg, netID, nd, "", ""); err != nil {
		return nil, err
	}
	// storeSegment names segments ""; the API's name and description
	// default to null.
	rec, err := tx.Get(ctx, "segment", seg.ID)
	if err != nil {
		return nil, err
	}
	sd, err := record.Decode(rec)
	if err != nil {
		return nil, err
	}
	sd["name"], sd["description"] = d["name"], d["description"]
	if rec.Doc, err = encode(sd); err != nil {
		return nil, err
	}
	if err := tx.Update(ctx, rec); err != nil {
		return nil, err
	}
	segs, _, err := networkSegments(ctx, tx, netID)
	if err != nil {
		return nil, err
	}
	// A new segment may lower the network's largest MTU below its own.
	if m, max := resource.IntOf(nd["mtu"]), p.maxMTU(segs); m > int64(max) {
		return nil, fault.InvalidInput("Requested MTU is too big, maximum is %d", max)
	}
	return sd, p.refreshProviderView(ctx, tx, nrec, nd, segs)
}

// refreshProviderView rewrites a network's provider view from its
// segments and bumps its revision.
func (p *Plugin) refreshProviderView(ctx context.Context, tx store.Tx, nrec *store.Record, nd resource.Doc, segs []Segment) error {
	if len(segs) == 0 {
		delete(nd, "segments")
		nd["provider:network_type"] = nil
		nd["provider:physical_network"] = nil
		nd["provider:segmentation_id"] = nil
	} else {
		setProviderView(nd, segs)
	}
	stdattr.Touch(nd, p.now())
	var err error
	if nrec.Doc, err = encode(nd); err != nil {
		return err
	}
	return tx.Update(ctx, nrec)
}

// getSegment reads a segment for an admin; others get 404 either way.
func getSegment(ctx context.Context, tx store.Tx, id string, lock bool) (*store.Record, resource.Doc, error) {
	get := tx.Get
	if lock {
		get = tx.Lock
	}
	rec, err := get(ctx, "segment", id)
	if err != nil {
		return nil, nil, notFound(err, segmentNotFound(id))
	}
	if !auth.FromContext(ctx).Admin() {
		return nil, nil, hiddenByPolicy()
	}
	d, err := record.Decode(rec)
	return rec, d, err
}

// Get shows one segment.
func (s Segments) Get(ctx context.Context, id string) (resource.Doc, error) {
	var d resource.Doc
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		_, d, err = getSegment(ctx, tx, id, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return segmentView(d), nil
}

// List returns every segment to an admin and none to others.
func (s Segments) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	if !auth.FromContext(ctx).Admin() {
		return []resource.Doc{}, nil
	}
	var out []resource.Doc
	err := s.st.View(ctx, func(tx store.Tx) error {
		recs, err := tx.List(ctx, store.Filter{Kind: "segment", IDs: q.Filters["id"], Parents: q.Filters["network_id"]})
		if err != nil {
			return err
		}
		out, err = docsOf(recs)
		return err
	})
	for _, d := range out {
		segmentView(d)
	}
	return out, err
}

// Update renames or redescribes a segment.
func (s Segments) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	var out resource.Doc
	err := s.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := getSegment(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := stdattr.CheckRevision(d, ifRev); err != nil {
			return err
		}
		changed := false
		for _, k := range []string{"name", "description"} {
			if v, ok := patch[k]; ok && !equalValue(d[k], v) {
				d[k] = v
				changed = true
			}
		}
		out = d
		if !changed {
			return nil
		}
		stdattr.Touch(d, s.now())
		if rec.Doc, err = encode(d); err != nil {
			return err
		}
		return tx.Update(ctx, rec)
	})
	if err != nil {
		return nil, err
	}
	return segmentView(out), nil
}

// Delete releases a segment no subnet is bound to.
func (s Segments) Delete(ctx context.Context, id string, ifRev int64) error {
	return s.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := getSegment(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := stdattr.CheckRevision(d, ifRev); err != nil {
			return err
		}
		netID := rec.ParentID
		subs, err := listDocs(ctx, tx, "subnet", netID)
		if err != nil {
			return err
		}
		var bound []string
		for _, sub := range subs {
			if resource.Str(sub["segment_id"]) == id {
				bound = append(bound, resource.Str(sub["id"]))
			}
		}
		if len(bound) > 0 {
			return fault.Conflict("SegmentInUse", "Segment '%s' cannot be deleted: The segment is still associated with subnet(s) %s.",
				id, strings.Join(bound, ", "))
		}
		if err := tx.ReleaseSegment(ctx, id); err != nil {
			return err
		}
		if err := tx.Delete(ctx, "segment", id); err != nil {
			return err
		}
		nrec, err := tx.Lock(ctx, "network", netID)
		if err != nil {
			return notFound(err, networkNotFound(netID))
		}
		nd, err := record.Decode(nrec)
		if err != nil {
			return err
		}
		segs, _, err := networkSegments(ctx, tx, netID)
		if err != nil {
			return err
		}
		return s.refreshProviderView(ctx, tx, nrec, nd, segs)
	})
}
