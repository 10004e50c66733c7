// Package secgroup is Muon's security group plugin, after neutron's
// SecurityGroupDbMixin and AddressGroupDbMixin: security groups and their
// rules, each project's default group, the groups of ports, and address
// groups. Every operation runs in one store transaction; the store's keys
// hold a project to one default group, a group to one copy of each rule,
// and keep groups and address groups that are in use.
package secgroup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/resource"
	"muon/internal/store"
)

// Store kinds, reference kinds and name claims.
const (
	kindGroup   = "security_group"
	kindRule    = "security_group_rule"
	kindAddress = "address_group"

	refPortGroup   = "port_security_group"   // port -> group
	refRemoteGroup = "sg_rule_remote_group"  // rule -> remote group
	refRemoteAddrs = "sg_rule_address_group" // rule -> address group

	claimDefault = "default_sg" // scope "", name project: the default group
	claimRule    = "sg_rule"    // scope group, name fingerprint: the rule
)

// QuotaChecker refuses creates that would take a project past its quota.
type QuotaChecker interface {
	Check(ctx context.Context, tx store.Tx, name, project string, n int) error
}

// Plugin is the security group plugin.
type Plugin struct {
	st    store.Store
	quota QuotaChecker
	now   func() time.Time
}

// New builds the plugin over a store.
func New(st store.Store) *Plugin { return &Plugin{st: st, now: time.Now} }

// UseQuotas makes creates check quotas (none are checked without).
func (p *Plugin) UseQuotas(q QuotaChecker) { p.quota = q }

func (p *Plugin) checkQuota(ctx context.Context, tx store.Tx, name, project string, n int) error {
	if p.quota == nil || n == 0 {
		return nil
	}
	return p.quota.Check(ctx, tx, name, project, n)
}

func (p *Plugin) timestamp() string { return p.now().UTC().Format("2006-01-02T15:04:05Z") }

// stamp fills a new document's standard attributes for project (the
// caller's when empty; another project's only for admins).
func (p *Plugin) stamp(ctx context.Context, d resource.Doc, tags bool) error {
	cred := auth.FromContext(ctx)
	proj := resource.Str(d["project_id"])
	switch {
	case proj == "":
		proj = cred.ProjectID
	case proj != cred.ProjectID && !cred.Admin():
		return fault.Forbidden("PolicyNotAuthorized", "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges")
	}
	d["id"] = uuid.NewString()
	d["project_id"] = proj
	delete(d, "tenant_id")
	ts := p.timestamp()
	d["created_at"], d["updated_at"] = ts, ts
	d["revision_number"] = int64(0)
	if _, given := d["tags"]; tags && !given {
		d["tags"] = []any{}
	}
	return nil
}

// touch bumps a changed document's revision and update time.
func (p *Plugin) touch(d resource.Doc) {
	d["revision_number"] = resource.IntOf(d["revision_number"]) + 1
	d["updated_at"] = p.timestamp()
}

func checkRevision(d resource.Doc, want int64) error {
	if want < 0 {
		return nil
	}
	if have := resource.IntOf(d["revision_number"]); have != want {
		return fault.New(412, "RevisionNumberConstraintFailed", "Constrained to %d, but current revision is %d", want, have)
	}
	return nil
}

func decode(r *store.Record) (resource.Doc, error) {
	dec := json.NewDecoder(bytes.NewReader(r.Doc))
	dec.UseNumber()
	var d resource.Doc
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%s %s: corrupt document: %w", r.Kind, r.ID, err)
	}
	// Ports are whole numbers; keep them as int64 like a fresh request.
	for _, k := range []string{"port_range_min", "port_range_max", "revision_number"} {
		if n, ok := d[k].(json.Number); ok {
			d[k] = resource.IntOf(n)
		}
	}
	return d, nil
}

func record(kind string, d resource.Doc, parent string) (*store.Record, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return &store.Record{Kind: kind, ID: resource.Str(d["id"]), ProjectID: resource.Str(d["project_id"]), ParentID: parent, Doc: b}, nil
}

// save writes a changed document back to its record.
func save(ctx context.Context, tx store.Tx, r *store.Record, d resource.Doc) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	r.Doc = b
	return tx.Update(ctx, r)
}

// owns tells whether the caller may see a record: its project's, or any
// for admins.
func owns(ctx context.Context, r *store.Record) bool {
	return auth.FromContext(ctx).Owns(r.ProjectID)
}

// get reads a record of a kind the caller may see, or answers nf.
func get(ctx context.Context, tx store.Tx, kind, id string, lock bool, nf *fault.Error) (*store.Record, resource.Doc, error) {
	read := tx.Get
	if lock {
		read = tx.Lock
	}
	r, err := read(ctx, kind, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !owns(ctx, r) {
		return nil, nil, nf
	}
	if err != nil {
		return nil, nil, err
	}
	d, err := decode(r)
	return r, d, err
}

// list reads the documents a filter selects.
func list(ctx context.Context, tx store.Tx, f store.Filter) ([]resource.Doc, error) {
	recs, err := tx.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]resource.Doc, 0, len(recs))
	for i := range recs {
		d, err := decode(&recs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// scope is the store filter of what the caller may see of a kind.
func scope(ctx context.Context, kind string) store.Filter {
	cred := auth.FromContext(ctx)
	f := store.Filter{Kind: kind}
	if !cred.Admin() {
		f.Projects = []string{cred.ProjectID}
	}
	return f
}

func groupNotFound(id string) *fault.Error {
	return fault.NotFound("SecurityGroupNotFound", "Security group %s does not exist", id)
}

func ruleNotFound(id string) *fault.Error {
	return fault.NotFound("SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
}

func addressGroupNotFound(id string) *fault.Error {
	return fault.NotFound("AddressGroupNotFound", "Address group %s could not be found.", id)
}

func errDefaultExists() *fault.Error {
	return fault.Conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
}

func errInUse(id string) *fault.Error {
	return fault.Conflict("SecurityGroupInUse", "Security Group %s in use.", id)
}
