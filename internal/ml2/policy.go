package ml2

import (
	"context"
	"errors"
	"slices"

	"muon/internal/auth"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/store"
)

// Targets gives policy the subnets with their network's owner and sharing.
func (s Subnets) Targets(ctx context.Context, docs []resource.Doc) ([]map[string]any, error) {
	return s.networkTargets(ctx, docs)
}

// Targets gives policy the ports with their network's owner and sharing.
func (p Ports) Targets(ctx context.Context, docs []resource.Doc) ([]map[string]any, error) {
	return p.networkTargets(ctx, docs)
}

// networkTargets builds policy targets of documents with a network_id:
// the document, tenant_id, "network:project_id"/"network:tenant_id" and
// "shared" (the network's, as policy's shared rule reads it).
func (p *Plugin) networkTargets(ctx context.Context, docs []resource.Doc) ([]map[string]any, error) {
	var ids []string
	seen := map[string]bool{}
	for _, d := range docs {
		if id := resource.Str(d["network_id"]); id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	type netInfo struct {
		project string
		shared  bool
	}
	nets := make(map[string]netInfo, len(ids))
	if len(ids) > 0 {
		err := p.st.View(ctx, func(tx store.Tx) error {
			var recs []store.Record
			if len(ids) == 1 {
				// One network (a create, a show): a prepared point read.
				r, err := tx.Get(ctx, "network", ids[0])
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				if r != nil {
					recs = []store.Record{*r}
				}
			} else {
				f := store.Filter{Kind: "network"}
				if len(ids) <= 500 {
					f.IDs = ids
				}
				var err error
				if recs, err = tx.List(ctx, f); err != nil {
					return err
				}
			}
			caller := auth.FromContext(ctx).ProjectID
			var grants []store.RBACGrant
			fetched := false
			for _, r := range recs {
				// Shared is the network's own flag: an external network's
				// record is visible to all, but that does not share it.
				nd, derr := record.Decode(&r)
				if derr != nil {
					return derr
				}
				shared := resource.BoolOf(nd["shared"])
				var err error
				if !shared && r.ProjectID != caller {
					// An access_as_shared policy for the caller's project
					// shares the network with it.
					if !fetched {
						if grants, err = tx.RBACGrants(ctx, store.RBACGrant{ObjectType: "network", Target: caller, Action: accessShared}); err != nil {
							return err
						}
						fetched = true
					}
					shared = slices.ContainsFunc(grants, func(g store.RBACGrant) bool { return g.ObjectID == r.ID })
				}
				nets[r.ID] = netInfo{project: r.ProjectID, shared: shared}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]map[string]any, len(docs))
	for i, d := range docs {
		t := make(map[string]any, len(d)+4)
		for k, v := range d {
			t[k] = v
		}
		t["tenant_id"] = d["project_id"]
		n, found := nets[resource.Str(d["network_id"])]
		t["network:project_id"], t["network:tenant_id"] = n.project, n.project
		t["shared"] = n.shared
		t["network:found"] = found
		out[i] = t
	}
	return out, nil
}
