package l3

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"muon/internal/fault"
	"muon/internal/ml2"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/store"
)

// Conntrack helpers (l3-conntrack-helper): a router's rule that gives the
// kernel's connection tracking helper (ftp, tftp, sip, ...) the
// connections of a protocol to a port through the router, so that the
// related connections they open (FTP's data, SIP's media) pass its NAT.

// defaultHelpers is Neutron's allowed_conntrack_helpers.
var defaultHelpers = []map[string]string{
	{"amanda": "tcp"}, {"ftp": "tcp"}, {"h323": "udp"}, {"h323": "tcp"}, {"irc": "tcp"}, {"netbios-ns": "udp"},
	{"pptp": "tcp"}, {"sane": "tcp"}, {"sip": "udp"}, {"sip": "tcp"}, {"snmp": "udp"}, {"tftp": "udp"},
}

// ConntrackHelperResource is the conntrack helper attribute map (a
// sub-collection of routers).
func ConntrackHelperResource() *resource.Resource {
	return &resource.Resource{Name: "conntrack_helper", Collection: "conntrack_helpers", Attrs: []resource.Attr{
		{Name: "id", Type: resource.UUID},
		{Name: "protocol", Type: resource.String(0), Post: true, Put: true, Required: true,
			Validate: oneOf("protocol", "dccp", "icmp", "ipv6-icmp", "sctp", "tcp", "udp")},
		{Name: "port", Type: resource.Int, Post: true, Put: true, Required: true, Validate: validPort("port")},
		{Name: "helper", Type: resource.String(64), Post: true, Put: true, Required: true},
	}}
}

// ConntrackHelpers serves /v2.0/routers/{id}/conntrack_helpers.
type ConntrackHelpers struct{ *Plugin }

func cthNotFound(id string) *fault.Error {
	return fault.NotFound("ConntrackHelperNotFound", "Conntrack Helper %s could not be found.", id)
}

// allowed checks a helper and its protocol against allowed_conntrack_helpers.
func (p *Plugin) allowed(d resource.Doc) error {
	helper, proto := resource.Str(d["helper"]), resource.Str(d["protocol"])
	var protos []string
	for _, m := range p.cfg.Helpers {
		for h, pr := range m {
			if h == helper {
				protos = append(protos, pr)
			}
		}
	}
	if len(protos) == 0 {
		return fault.New(400, "ConntrackHelperNotAllowed", "Conntrack Helper %s is not allowed.", helper)
	}
	if !slices.Contains(protos, proto) {
		return fault.New(400, "InvalidProtocolForHelper", "Conntrack Helper %s does not support: %s. Supported protocols are: %s",
			helper, proto, strings.Join(protos, ", "))
	}
	return nil
}

func cthKey(d resource.Doc) string {
	return fmt.Sprintf("%s:%d:%s", resource.Str(d["protocol"]), resource.IntOf(d["port"]), resource.Str(d["helper"]))
}

// claimHelper holds a helper's (router, protocol, port, helper).
func (p *Plugin) claimHelper(ctx context.Context, tx store.Tx, routerID string, d resource.Doc) error {
	ok, err := tx.ClaimName(ctx, "conntrack_helper", routerID, cthKey(d), resource.Str(d["id"]))
	if err != nil || ok {
		return err
	}
	return badRequest("conntrack_helper", "A duplicate conntrack helper entry with same attributes already exists, conflicting values are {'router_id': '%s', 'protocol': '%s', 'port': %d, 'helper': '%s'}",
		routerID, d["protocol"], resource.IntOf(d["port"]), d["helper"])
}

// Targets gives policy the helpers with their router's project
// ("ext_parent:project_id"); a router the caller cannot see is a 404.
func (c ConntrackHelpers) Targets(ctx context.Context, routerID string, docs []resource.Doc) ([]map[string]any, error) {
	return c.parentTargets(ctx, "router", routerID, routerNotFound(routerID), docs)
}

// Create adds conntrack helpers to a router.
func (c ConntrackHelpers) Create(ctx context.Context, routerID string, docs []resource.Doc) ([]resource.Doc, error) {
	out := make([]resource.Doc, 0, len(docs))
	err := c.core.Update(ctx, func(tx store.Tx) error {
		out = out[:0]
		rrec, _, err := ml2.Visible(ctx, tx, "router", routerID, true, routerNotFound(routerID))
		if err != nil {
			return err
		}
		if err := ml2.OwnerOnly(ctx, rrec, "update"); err != nil {
			return err
		}
		for _, d := range docs {
			d = resource.Clone(d)
			delete(d, "project_id")
			d["id"] = uuid.NewString()
			if err := c.allowed(d); err != nil {
				return err
			}
			rec, err := record.New("conntrack_helper", d, routerID, false)
			if err != nil {
				return err
			}
			rec.ProjectID = rrec.ProjectID
			if err := tx.Insert(ctx, rec); err != nil {
				return err
			}
			if err := c.claimHelper(ctx, tx, routerID, d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

func (p *Plugin) getHelper(ctx context.Context, tx store.Tx, routerID, id string, lock bool) (*store.Record, resource.Doc, *store.Record, error) {
	rrec, _, err := ml2.Visible(ctx, tx, "router", routerID, lock, routerNotFound(routerID))
	if err != nil {
		return nil, nil, nil, err
	}
	rec, d, err := record.Get(ctx, tx, "conntrack_helper", id, lock, cthNotFound(id))
	if err != nil {
		return nil, nil, nil, err
	}
	if rec.ParentID != routerID {
		return nil, nil, nil, cthNotFound(id)
	}
	return rec, d, rrec, nil
}

// Get shows one conntrack helper.
func (c ConntrackHelpers) Get(ctx context.Context, routerID, id string) (resource.Doc, error) {
	var d resource.Doc
	err := c.core.View(ctx, func(tx store.Tx) error {
		var err error
		_, d, _, err = c.getHelper(ctx, tx, routerID, id, false)
		return err
	})
	return d, err
}

// List returns a router's conntrack helpers.
func (c ConntrackHelpers) List(ctx context.Context, routerID string, q *resource.Query) ([]resource.Doc, error) {
	var out []resource.Doc
	err := c.core.View(ctx, func(tx store.Tx) error {
		if _, _, err := ml2.Visible(ctx, tx, "router", routerID, false, routerNotFound(routerID)); err != nil {
			return err
		}
		var err error
		_, out, err = record.List(ctx, tx, store.Filter{Kind: "conntrack_helper", Parents: []string{routerID}, IDs: q.Filters["id"]})
		return err
	})
	return out, err
}

// Update changes a conntrack helper; its key is claimed anew.
func (c ConntrackHelpers) Update(ctx context.Context, routerID, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	var out resource.Doc
	err := c.core.Update(ctx, func(tx store.Tx) error {
		rec, d, rrec, err := c.getHelper(ctx, tx, routerID, id, true)
		if err != nil {
			return err
		}
		if err := ml2.OwnerOnly(ctx, rrec, "update"); err != nil {
			return err
		}
		if err := tx.ReleaseName(ctx, "conntrack_helper", routerID, cthKey(d)); err != nil {
			return err
		}
		for k, v := range patch {
			d[k] = v
		}
		if err := c.allowed(d); err != nil {
			return err
		}
		if err := c.claimHelper(ctx, tx, routerID, d); err != nil {
			return err
		}
		n, err := record.New("conntrack_helper", d, routerID, false)
		if err != nil {
			return err
		}
		n.ProjectID = rec.ProjectID
		out = d
		return tx.Update(ctx, n)
	})
	return out, err
}

// Delete removes a conntrack helper.
func (c ConntrackHelpers) Delete(ctx context.Context, routerID, id string, ifRev int64) error {
	return c.core.Update(ctx, func(tx store.Tx) error {
		_, d, rrec, err := c.getHelper(ctx, tx, routerID, id, true)
		if err != nil {
			return err
		}
		if err := ml2.OwnerOnly(ctx, rrec, "update"); err != nil {
			return err
		}
		return deleteHelper(ctx, tx, routerID, d)
	})
}

func deleteHelper(ctx context.Context, tx store.Tx, routerID string, d resource.Doc) error {
	if err := tx.ReleaseName(ctx, "conntrack_helper", routerID, cthKey(d)); err != nil {
		return err
	}
	return tx.Delete(ctx, "conntrack_helper", resource.Str(d["id"]))
}

// deleteHelpers removes a router's conntrack helpers (it is going).
func deleteHelpers(ctx context.Context, tx store.Tx, routerID string) error {
	_, docs, err := record.List(ctx, tx, store.Filter{Kind: "conntrack_helper", Parents: []string{routerID}})
	if err != nil {
		return err
	}
	for _, d := range docs {
		if err := deleteHelper(ctx, tx, routerID, d); err != nil {
			return err
		}
	}
	return nil
}
