package secgroup

import (
	"context"
	"errors"
	"slices"

	"github.com/google/uuid"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/stdattr"
	"muon/internal/store"
)

// Groups serves /v2.0/security-groups.
type Groups struct{ *Plugin }

const defaultDescription = "Default security group"

// ensureDefault returns a project's default group, making it with
// neutron's default rules (egress to anywhere over IPv4 and IPv6, ingress
// from the group itself) if the project has none. The claim on the
// project's name holds it to one, however many requests race to make it.
// A project gets no default group made by another (non-admin) project.
func (p *Plugin) ensureDefault(ctx context.Context, tx store.Tx, project string) (string, error) {
	id, err := tx.NameID(ctx, claimDefault, "", project)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return id, err
	}
	if cred := auth.FromContext(ctx); project == "" || project != cred.ProjectID && !cred.Admin() {
		return "", nil
	}
	if err := p.checkQuota(ctx, tx, "security_group_rule", project, 4); err != nil {
		return "", err
	}
	ts := stdattr.Timestamp(p.now())
	d := resource.Doc{"id": uuid.NewString(), "name": "default", "description": defaultDescription,
		"project_id": project, "stateful": true, "shared": false, "tags": []any{},
		"created_at": ts, "updated_at": ts, "revision_number": int64(0)}
	rec, err := record.New(kindGroup, d, "", false)
	if err != nil {
		return "", err
	}
	if err := tx.Insert(ctx, rec); err != nil {
		return "", err
	}
	ok, err := tx.ClaimName(ctx, claimDefault, "", project, rec.ID)
	if err != nil {
		return "", err
	}
	if !ok {
		// Another request made it first: ours goes, theirs serves.
		if err := tx.Delete(ctx, kindGroup, rec.ID); err != nil {
			return "", err
		}
		return tx.NameID(ctx, claimDefault, "", project)
	}
	for _, r := range []struct{ dir, eth, remote string }{
		{"egress", "IPv4", ""}, {"egress", "IPv6", ""},
		{"ingress", "IPv4", rec.ID}, {"ingress", "IPv6", rec.ID},
	} {
		if err := p.insertRule(ctx, tx, p.baseRule(d, r.dir, r.eth, r.remote, true), nil); err != nil {
			return "", err
		}
	}
	return rec.ID, nil
}

// baseRule is a rule of a group to or from anywhere on all protocols.
func (p *Plugin) baseRule(group resource.Doc, dir, eth, remote string, isDefault bool) resource.Doc {
	ts := stdattr.Timestamp(p.now())
	var rg any
	if remote != "" {
		rg = remote
	}
	return resource.Doc{"id": uuid.NewString(), "project_id": group["project_id"], "security_group_id": group["id"],
		"direction": dir, "ethertype": eth, "protocol": nil, "port_range_min": nil, "port_range_max": nil,
		"remote_ip_prefix": nil, "normalized_cidr": nil, "remote_group_id": rg, "remote_address_group_id": nil,
		"description": "", "belongs_to_default_sg": isDefault,
		"created_at": ts, "updated_at": ts, "revision_number": int64(0)}
}

// ensureDefaultFor makes sure the project a listing is for has its
// default group, as neutron does on every list: a read first, a write
// only when it is missing.
func (p *Plugin) ensureDefaultFor(ctx context.Context, q *resource.Query) error {
	cred := auth.FromContext(ctx)
	project := cred.ProjectID
	if q != nil {
		for _, k := range []string{"project_id", "tenant_id"} {
			if v := q.Filters[k]; len(v) > 0 {
				project = v[0]
				break
			}
		}
	}
	if project == "" || project != cred.ProjectID && !cred.Admin() {
		return nil
	}
	have := false
	err := p.st.View(ctx, func(tx store.Tx) error {
		_, err := tx.NameID(ctx, claimDefault, "", project)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		have = err == nil
		return err
	})
	if err != nil || have {
		return err
	}
	return p.st.Update(ctx, func(tx store.Tx) error {
		_, err := p.ensureDefault(ctx, tx, project)
		return err
	})
}

// withRules fills groups' security_group_rules.
func withRules(ctx context.Context, tx store.Tx, groups []resource.Doc) error {
	if len(groups) == 0 {
		return nil
	}
	byID := make(map[string]resource.Doc, len(groups))
	ids := make([]string, 0, len(groups))
	for _, g := range groups {
		id := resource.Str(g["id"])
		byID[id] = g
		ids = append(ids, id)
		g["security_group_rules"] = []any{}
	}
	f := store.Filter{Kind: kindRule}
	if len(ids) <= 500 {
		f.Parents = ids
	}
	rules, err := list(ctx, tx, f)
	if err != nil {
		return err
	}
	sortDocs(rules)
	for _, r := range rules {
		if g, ok := byID[resource.Str(r["security_group_id"])]; ok {
			g["security_group_rules"] = append(g["security_group_rules"].([]any), map[string]any(r))
		}
	}
	return nil
}

// sortDocs orders documents by creation, then id.
func sortDocs(ds []resource.Doc) {
	slices.SortStableFunc(ds, func(a, b resource.Doc) int {
		if c := compare(resource.Str(a["created_at"]), resource.Str(b["created_at"])); c != 0 {
			return c
		}
		return compare(resource.Str(a["id"]), resource.Str(b["id"]))
	})
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Create makes security groups, each with neutron's egress rules; the
// project's default group is made first if it has none.
func (g Groups) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	out := make([]resource.Doc, 0, len(docs))
	err := g.st.Update(ctx, func(tx store.Tx) error {
		out = out[:0]
		for _, d := range docs {
			d = resource.Clone(d)
			if err := g.create(ctx, tx, d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return withRules(ctx, tx, out)
	})
	return out, err
}

func (g Groups) create(ctx context.Context, tx store.Tx, d resource.Doc) error {
	if err := stdattr.Stamp(ctx, d, g.now(), true); err != nil {
		return err
	}
	project := resource.Str(d["project_id"])
	if _, err := g.ensureDefault(ctx, tx, project); err != nil {
		return err
	}
	if err := g.checkQuota(ctx, tx, "security_group", project, 1); err != nil {
		return err
	}
	if err := g.checkQuota(ctx, tx, "security_group_rule", project, 2); err != nil {
		return err
	}
	d["shared"] = false
	rec, err := record.New(kindGroup, d, "", false)
	if err != nil {
		return err
	}
	if err := tx.Insert(ctx, rec); err != nil {
		return err
	}
	for _, eth := range []string{"IPv4", "IPv6"} {
		if err := g.insertRule(ctx, tx, g.baseRule(d, "egress", eth, "", false), nil); err != nil {
			return err
		}
	}
	return nil
}

// Get shows one group with its rules.
func (g Groups) Get(ctx context.Context, id string) (resource.Doc, error) {
	var d resource.Doc
	err := g.st.View(ctx, func(tx store.Tx) error {
		var err error
		if _, d, err = get(ctx, tx, kindGroup, id, false, groupNotFound(id)); err != nil {
			return err
		}
		return withRules(ctx, tx, []resource.Doc{d})
	})
	return d, err
}

// List returns the caller's groups (all, for admins), after making the
// project's default group if it has none.
func (g Groups) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	if err := g.ensureDefaultFor(ctx, q); err != nil {
		return nil, err
	}
	var out []resource.Doc
	err := g.st.View(ctx, func(tx store.Tx) error {
		f := record.Owned(ctx, kindGroup)
		f.IDs = q.Filters["id"]
		var err error
		if out, err = list(ctx, tx, f); err != nil {
			return err
		}
		return withRules(ctx, tx, out)
	})
	return out, err
}

// Update changes a group's name, description or statefulness. A group
// named default keeps its name; statefulness is fixed while ports use
// the group.
func (g Groups) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	var out resource.Doc
	err := g.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := get(ctx, tx, kindGroup, id, true, groupNotFound(id))
		if err != nil {
			return err
		}
		if err := stdattr.CheckRevision(d, ifRev); err != nil {
			return err
		}
		if v, ok := patch["stateful"]; ok && v != d["stateful"] {
			ports, err := tx.RefsTo(ctx, refPortGroup, id)
			if err != nil {
				return err
			}
			if len(ports) > 0 {
				return errInUse(id)
			}
		}
		if _, ok := patch["name"]; ok && resource.Str(d["name"]) == "default" {
			return fault.Conflict("SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
		}
		changed := false
		for k, v := range patch {
			if !equal(d[k], v) {
				d[k] = v
				changed = true
			}
		}
		if changed {
			stdattr.Touch(d, g.now())
			if err := record.Save(ctx, tx, rec, d); err != nil {
				return err
			}
		}
		out = d
		return withRules(ctx, tx, []resource.Doc{d})
	})
	return out, err
}

func equal(a, b any) bool { return resource.Canonical(a) == resource.Canonical(b) }

// Delete removes a group and its rules, and the rules of other groups
// that name it as their remote group (neutron's foreign key cascades).
// A group ports use stays (SecurityGroupInUse); only admins delete a
// default group.
func (g Groups) Delete(ctx context.Context, id string, ifRev int64) error {
	return g.st.Update(ctx, func(tx store.Tx) error {
		_, d, err := get(ctx, tx, kindGroup, id, true, groupNotFound(id))
		if err != nil {
			return err
		}
		if err := stdattr.CheckRevision(d, ifRev); err != nil {
			return err
		}
		ports, err := tx.RefsTo(ctx, refPortGroup, id)
		if err != nil {
			return err
		}
		if len(ports) > 0 {
			return errInUse(id)
		}
		if resource.Str(d["name"]) == "default" && !auth.FromContext(ctx).Admin() {
			return fault.Conflict("SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.")
		}
		remote, err := tx.RefsTo(ctx, refRemoteGroup, id)
		if err != nil {
			return err
		}
		own, err := tx.List(ctx, store.Filter{Kind: kindRule, Parents: []string{id}})
		if err != nil {
			return err
		}
		for _, r := range own {
			if !slices.Contains(remote, r.ID) {
				remote = append(remote, r.ID)
			}
		}
		for _, rid := range remote {
			if err := tx.Delete(ctx, kindRule, rid); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return tx.Delete(ctx, kindGroup, id)
	})
}
