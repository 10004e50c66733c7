package secgroup

import (
	"context"
	"errors"
	"slices"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/stdattr"
	"muon/internal/store"
)

// Rules serves /v2.0/security-group-rules.
type Rules struct{ *Plugin }

// insertRule stores a rule whose group and remotes exist: the claim on its
// fingerprint in its group refuses a copy (made, when the holder is one of
// this request's rules, the bulk request's own duplicate), and references
// keep its remote group and address group.
func (p *Plugin) insertRule(ctx context.Context, tx store.Tx, d resource.Doc, batch []string) error {
	gid, id := resource.Str(d["security_group_id"]), resource.Str(d["id"])
	rec, err := record.New(kindRule, d, gid, false)
	if err != nil {
		return err
	}
	if err := tx.Insert(ctx, rec); err != nil {
		return err
	}
	ok, err := tx.ClaimName(ctx, claimRule, gid, fingerprint(d), id)
	if err != nil {
		return err
	}
	if !ok {
		holder, err := tx.NameID(ctx, claimRule, gid, fingerprint(d))
		if err != nil {
			return err
		}
		if slices.Contains(batch, holder) {
			return fault.Conflict("DuplicateSecurityGroupRuleInPost", "Duplicate Security Group Rule in POST.")
		}
		return fault.Conflict("SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", holder)
	}
	if rg := resource.Str(d["remote_group_id"]); rg != "" {
		if err := tx.AddRef(ctx, refRemoteGroup, id, rg); err != nil {
			return err
		}
	}
	if ag := resource.Str(d["remote_address_group_id"]); ag != "" {
		if err := tx.AddRef(ctx, refRemoteAddrs, id, ag); err != nil {
			return err
		}
	}
	return nil
}

// Targets gives policy the rules with their group's owner
// ("security_group:project_id"). A group the caller cannot see counts as
// its own, so that the plugin answers 404 rather than policy 403.
func (r Rules) Targets(ctx context.Context, docs []resource.Doc) ([]map[string]any, error) {
	cred := auth.FromContext(ctx)
	owners := map[string]string{}
	err := r.st.View(ctx, func(tx store.Tx) error {
		for _, d := range docs {
			gid := resource.Str(d["security_group_id"])
			if _, done := owners[gid]; done {
				continue
			}
			owners[gid] = cred.ProjectID
			g, err := tx.Get(ctx, kindGroup, gid)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if cred.Owns(g.ProjectID) {
				owners[gid] = g.ProjectID
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(docs))
	for i, d := range docs {
		t := make(map[string]any, len(d)+2)
		for k, v := range d {
			t[k] = v
		}
		t["tenant_id"] = d["project_id"]
		t["security_group:project_id"] = owners[resource.Str(d["security_group_id"])]
		out[i] = t
	}
	return out, nil
}

// Create makes rules, all or none. A bulk request's rules belong to one
// group and one project, as neutron's.
func (r Rules) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	for _, d := range docs[1:] {
		if resource.Str(d["security_group_id"]) != resource.Str(docs[0]["security_group_id"]) {
			return nil, invalid("SecurityGroupNotSingleGroupRules", "Only allowed to update rules for one security profile at a time")
		}
		if resource.Str(d["project_id"]) != resource.Str(docs[0]["project_id"]) {
			return nil, invalid("SecurityGroupRulesNotSingleProject", "Multiple project_ids in bulk security group rule create not allowed")
		}
	}
	out := make([]resource.Doc, 0, len(docs))
	err := r.st.Update(ctx, func(tx store.Tx) error {
		out = out[:0]
		var batch []string
		for _, d := range docs {
			d = resource.Clone(d)
			if err := r.create(ctx, tx, d, batch); err != nil {
				return err
			}
			batch = append(batch, resource.Str(d["id"]))
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

func (r Rules) create(ctx context.Context, tx store.Tx, d resource.Doc, batch []string) error {
	if err := checkRule(d); err != nil {
		return err
	}
	if err := stdattr.Stamp(ctx, d, r.now(), false); err != nil {
		return err
	}
	project := resource.Str(d["project_id"])
	admin := auth.FromContext(ctx).Admin()
	// Remotes and the group must exist for the rule's project.
	usable := func(kind, id string, nf *fault.Error) error {
		rec, err := tx.Get(ctx, kind, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && !admin && rec.ProjectID != project {
			return nf
		}
		return err
	}
	if rg := resource.Str(d["remote_group_id"]); rg != "" {
		if err := usable(kindGroup, rg, groupNotFound(rg)); err != nil {
			return err
		}
	}
	if ag := resource.Str(d["remote_address_group_id"]); ag != "" {
		if err := usable(kindAddress, ag, addressGroupNotFound(ag)); err != nil {
			return err
		}
	}
	gid := resource.Str(d["security_group_id"])
	grec, err := tx.Lock(ctx, kindGroup, gid)
	if errors.Is(err, store.ErrNotFound) || err == nil && !admin && grec.ProjectID != project {
		return groupNotFound(gid)
	}
	if err != nil {
		return err
	}
	if err := r.checkQuota(ctx, tx, "security_group_rule", project, 1); err != nil {
		return err
	}
	def, err := tx.NameID(ctx, claimDefault, "", grec.ProjectID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	d["belongs_to_default_sg"] = def == gid
	if err := r.insertRule(ctx, tx, d, batch); err != nil {
		return err
	}
	return r.bumpGroup(ctx, tx, grec)
}

// bumpGroup revises a group whose rules changed, as neutron's revision
// plugin does.
func (p *Plugin) bumpGroup(ctx context.Context, tx store.Tx, grec *store.Record) error {
	g, err := decode(grec)
	if err != nil {
		return err
	}
	stdattr.Touch(g, p.now())
	return record.Save(ctx, tx, grec, g)
}

// visibleRule tells whether the caller may see a rule: its own, or one of
// its groups' (any, for admins).
func visibleRule(ctx context.Context, tx store.Tx, rec *store.Record) (bool, error) {
	if owns(ctx, rec) {
		return true, nil
	}
	g, err := tx.Get(ctx, kindGroup, rec.ParentID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil && owns(ctx, g), err
}

func (r Rules) get(ctx context.Context, tx store.Tx, id string, lock bool) (*store.Record, resource.Doc, error) {
	read := tx.Get
	if lock {
		read = tx.Lock
	}
	rec, err := read(ctx, kindRule, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ruleNotFound(id)
	}
	if err != nil {
		return nil, nil, err
	}
	ok, err := visibleRule(ctx, tx, rec)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, ruleNotFound(id)
	}
	d, err := decode(rec)
	return rec, d, err
}

// Get shows one rule.
func (r Rules) Get(ctx context.Context, id string) (resource.Doc, error) {
	var d resource.Doc
	err := r.st.View(ctx, func(tx store.Tx) error {
		var err error
		_, d, err = r.get(ctx, tx, id, false)
		return err
	})
	return d, err
}

// List returns the caller's rules and its groups' rules (all, for
// admins), after making the project's default group if it has none.
func (r Rules) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	if err := r.ensureDefaultFor(ctx, q); err != nil {
		return nil, err
	}
	var out []resource.Doc
	err := r.st.View(ctx, func(tx store.Tx) error {
		f := store.Filter{Kind: kindRule, IDs: q.Filters["id"], Parents: q.Filters["security_group_id"]}
		cred := auth.FromContext(ctx)
		if cred.Admin() {
			var err error
			out, err = list(ctx, tx, f)
			return err
		}
		groups, err := tx.List(ctx, store.Filter{Kind: kindGroup, Projects: []string{cred.ProjectID}})
		if err != nil {
			return err
		}
		mine := make(map[string]bool, len(groups))
		for _, g := range groups {
			mine[g.ID] = true
		}
		all, err := list(ctx, tx, f)
		if err != nil {
			return err
		}
		for _, d := range all {
			if resource.Str(d["project_id"]) == cred.ProjectID || mine[resource.Str(d["security_group_id"])] {
				out = append(out, d)
			}
		}
		return nil
	})
	return out, err
}

// Update changes nothing: rules are immutable in neutron.
func (r Rules) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	var d resource.Doc
	err := r.st.View(ctx, func(tx store.Tx) error {
		var err error
		if _, d, err = r.get(ctx, tx, id, false); err != nil {
			return err
		}
		return stdattr.CheckRevision(d, ifRev)
	})
	return d, err
}

// Delete removes a rule (its fingerprint and references go with it) and
// revises its group.
func (r Rules) Delete(ctx context.Context, id string, ifRev int64) error {
	return r.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := r.get(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := stdattr.CheckRevision(d, ifRev); err != nil {
			return err
		}
		if err := tx.Delete(ctx, kindRule, id); err != nil {
			return err
		}
		grec, err := tx.Lock(ctx, kindGroup, rec.ParentID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return r.bumpGroup(ctx, tx, grec)
	})
}
