package ml2

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/store"
)

// RBAC policies share networks with projects, as Neutron's rbac-policies:
// access_as_shared lets a project use a network (see it, its subnets, make
// ports on it), access_as_external lets it see the network as external.
// The target "*" is every project. A network's "shared" is a wildcard
// access_as_shared policy, its "router:external" any access_as_external
// one; the record's Shared column is a wildcard policy of either action.

const (
	accessShared   = "access_as_shared"
	accessExternal = "access_as_external"
)

// rbacActions are the actions each object type takes.
var rbacActions = map[string][]string{"network": {accessShared, accessExternal}}

// RBACPolicyResource is the rbac-policies attribute map.
func RBACPolicyResource() *resource.Resource {
	return &resource.Resource{Name: "rbac_policy", Collection: "rbac-policies", Attrs: []resource.Attr{
		{Name: "id", Type: resource.UUID},
		{Name: "project_id", Type: resource.String(255), Post: true},
		{Name: "tenant_id", Type: resource.String(255), Post: true},
		{Name: "object_type", Type: resource.String(255), Post: true, Required: true, Validate: rbacObjectType},
		{Name: "object_id", Type: resource.UUID, Post: true, Required: true},
		{Name: "target_tenant", Type: resource.String(255), Post: true, Put: true, Required: true, Validate: notEmptyString("target_tenant")},
		{Name: "action", Type: resource.String(255), Post: true, Required: true},
	}}
}

func rbacObjectType(v any) error {
	if _, ok := rbacActions[v.(string)]; !ok {
		return fault.InvalidInput("'%s' is not a valid RBAC object type", v)
	}
	return nil
}

func rbacPolicyNotFound(id string) *fault.Error {
	return fault.NotFound("RbacPolicyNotFound", "RBAC policy of type network with ID %s not found", id)
}

// RBACPolicies serves /v2.0/rbac-policies.
type RBACPolicies struct{ *Plugin }

// Create makes RBAC policies on objects the caller owns (any, for admins).
func (r RBACPolicies) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	return record.CreateAll(ctx, r.st, docs, r.createPolicy)
}

func (p *Plugin) createPolicy(ctx context.Context, tx store.Tx, d resource.Doc) error {
	cred := auth.FromContext(ctx)
	otype, action, objID := resource.Str(d["object_type"]), resource.Str(d["action"]), resource.Str(d["object_id"])
	if !slices.Contains(rbacActions[otype], action) {
		return fault.InvalidInput("Invalid action '%s' for object type '%s'. Valid actions: %v", action, otype, rbacActions[otype])
	}
	proj := resource.Str(d["project_id"])
	switch {
	case proj == "":
		proj = cred.ProjectID
	case proj != cred.ProjectID && !cred.Admin():
		return fault.Forbidden("PolicyNotAuthorized", "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges")
	}
	nrec, nd, err := getVisible(ctx, tx, "network", objID, true, networkNotFound(objID))
	if err != nil {
		return err
	}
	if !cred.Owns(nrec.ProjectID) {
		return fault.InvalidInput("Only admins can manipulate policies on networks they do not own.")
	}
	if err := p.checkQuota(ctx, tx, "rbac_policy", proj); err != nil {
		return err
	}
	d["id"] = uuid.NewString()
	d["project_id"] = proj
	if err := p.addPolicy(ctx, tx, d); err != nil {
		return err
	}
	return p.syncSharing(ctx, tx, nrec, nd)
}

// addPolicy stores a policy document and its grant.
func (p *Plugin) addPolicy(ctx context.Context, tx store.Tx, d resource.Doc) error {
	rec, err := record.New("rbac_policy", d, resource.Str(d["object_id"]), false)
	if err != nil {
		return err
	}
	if err := tx.Insert(ctx, rec); err != nil {
		return err
	}
	ok, err := tx.AddRBACGrant(ctx, store.RBACGrant{PolicyID: rec.ID, ObjectType: resource.Str(d["object_type"]),
		ObjectID: resource.Str(d["object_id"]), Target: resource.Str(d["target_tenant"]), Action: resource.Str(d["action"])})
	if err != nil {
		return err
	}
	if !ok {
		return errDuplicatePolicy()
	}
	return nil
}

func errDuplicatePolicy() error {
	return fault.Conflict("DuplicateRbacPolicy", "An RBAC policy already exists with those values.")
}

// addWildcard gives a network's owner's wildcard policy for an action.
func (p *Plugin) addWildcard(ctx context.Context, tx store.Tx, networkID, project, action string) error {
	return p.addPolicy(ctx, tx, resource.Doc{"id": uuid.NewString(), "project_id": project,
		"object_type": "network", "object_id": networkID, "target_tenant": "*", "action": action})
}

// syncSharing makes a network's shared, router:external and Shared column
// (and its subnets') follow its grants, and bumps its revision.
func (p *Plugin) syncSharing(ctx context.Context, tx store.Tx, nrec *store.Record, nd resource.Doc) error {
	gs, err := tx.RBACGrants(ctx, store.RBACGrant{ObjectID: nrec.ID})
	if err != nil {
		return err
	}
	shared, external, wildcard := false, false, false
	for _, g := range gs {
		shared = shared || g.Action == accessShared && g.Target == "*"
		external = external || g.Action == accessExternal
		wildcard = wildcard || g.Target == "*"
	}
	was := resource.BoolOf(nd["shared"])
	nd["shared"], nd["router:external"] = shared, external
	// Subnets are everyone's to see only when the network is shared, not
	// when it is merely external.
	if shared != was {
		if err := p.shareSubnets(ctx, tx, nrec.ID, shared); err != nil {
			return err
		}
	}
	r := *nrec
	r.Shared = wildcard
	return p.bumpNetwork(ctx, tx, &r, nd)
}

// hasWildcard tells whether a network is shared with every project.
func hasWildcard(ctx context.Context, tx store.Tx, networkID string) (bool, error) {
	gs, err := tx.RBACGrants(ctx, store.RBACGrant{ObjectID: networkID, Target: "*"})
	return len(gs) > 0, err
}

// dropPolicies deletes a network's policies of an action with a target
// (any target if "").
func dropPolicies(ctx context.Context, tx store.Tx, networkID, action, target string) error {
	gs, err := tx.RBACGrants(ctx, store.RBACGrant{ObjectID: networkID, Action: action, Target: target})
	if err != nil {
		return err
	}
	for _, g := range gs {
		if err := tx.Delete(ctx, "rbac_policy", g.PolicyID); err != nil {
			return err
		}
	}
	return nil
}

// inUseAfter tells whether projects that would lose access_as_shared to a
// network when the policy (or, if policyID is "", the wildcard) for target
// goes have ports (other than the network's own) or subnets on it.
func inUseAfter(ctx context.Context, tx store.Tx, nrec *store.Record, policyID, target string) (bool, error) {
	owner := nrec.ProjectID
	if target == owner {
		return false, nil
	}
	gs, err := tx.RBACGrants(ctx, store.RBACGrant{ObjectID: nrec.ID, Action: accessShared})
	if err != nil {
		return false, err
	}
	keeps := map[string]bool{owner: true}
	for _, g := range gs {
		if g.PolicyID == policyID || policyID == "" && g.Target == target {
			continue
		}
		if g.Target == "*" {
			return false, nil
		}
		keeps[g.Target] = true
	}
	loses := func(project string) bool {
		if target == "*" {
			return !keeps[project]
		}
		return project == target
	}
	for _, kind := range []string{"port", "subnet"} {
		recs, err := tx.List(ctx, store.Filter{Kind: kind, Parents: []string{nrec.ID}})
		if err != nil {
			return false, err
		}
		for i := range recs {
			if !loses(recs[i].ProjectID) {
				continue
			}
			if kind == "port" {
				d, err := record.Decode(&recs[i])
				if err != nil {
					return false, err
				}
				if slices.Contains(autoDeletedOwners, resource.Str(d["device_owner"])) {
					continue
				}
			}
			return true, nil
		}
	}
	return false, nil
}

func errPolicyInUse(objectID string) error {
	return ErrPolicyInUse(objectID, fmt.Sprintf("Unable to reconfigure sharing settings for network %s. Multiple tenants are using it.", objectID))
}

// ErrPolicyInUse is Neutron's RbacPolicyInUse: what depends on the
// policy, said in details.
func ErrPolicyInUse(objectID, details string) error {
	return fault.Conflict("RbacPolicyInUse", "RBAC policy on object %s cannot be removed because other objects depend on it.\nDetails: %s", objectID, details)
}

// checkExternalWildcard refuses to take the wildcard access_as_external
// away from the default external network: it must be everyone's.
func checkExternalWildcard(d, nd resource.Doc) error {
	if resource.Str(d["action"]) == accessExternal && resource.Str(d["target_tenant"]) == "*" && resource.BoolOf(nd["is_default"]) {
		return ErrPolicyInUse(resource.Str(nd["id"]), "Default external networks must be shared to everyone.")
	}
	return nil
}

// sharedFor shows "shared" as the caller sees it: true too for networks
// an access_as_shared policy shares with the caller's project.
func sharedFor(ctx context.Context, tx store.Tx, nets []resource.Doc) error {
	var mine []store.RBACGrant
	fetched := false
	for _, d := range nets {
		if resource.BoolOf(d["shared"]) {
			continue
		}
		if !fetched {
			var err error
			mine, err = tx.RBACGrants(ctx, store.RBACGrant{ObjectType: "network", Target: auth.FromContext(ctx).ProjectID, Action: accessShared})
			if err != nil {
				return err
			}
			fetched = true
		}
		id := resource.Str(d["id"])
		if slices.ContainsFunc(mine, func(g store.RBACGrant) bool { return g.ObjectID == id }) {
			d["shared"] = true
		}
	}
	return nil
}

// getPolicy reads a policy the caller may see (its project's, or any for
// admins).
func getPolicy(ctx context.Context, tx store.Tx, id string, lock bool) (*store.Record, resource.Doc, error) {
	get := tx.Get
	if lock {
		get = tx.Lock
	}
	rec, err := get(ctx, "rbac_policy", id)
	if err != nil {
		return nil, nil, notFound(err, rbacPolicyNotFound(id))
	}
	if !auth.FromContext(ctx).Owns(rec.ProjectID) {
		return nil, nil, rbacPolicyNotFound(id)
	}
	d, err := record.Decode(rec)
	return rec, d, err
}

// Get shows one policy.
func (r RBACPolicies) Get(ctx context.Context, id string) (resource.Doc, error) {
	var d resource.Doc
	err := r.st.View(ctx, func(tx store.Tx) error {
		var err error
		_, d, err = getPolicy(ctx, tx, id, false)
		return err
	})
	return d, err
}

// List returns the caller's project's policies (all, for admins).
func (r RBACPolicies) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	var out []resource.Doc
	err := r.st.View(ctx, func(tx store.Tx) error {
		f := scope(ctx, "rbac_policy", false)
		if ids := q.Filters["id"]; len(ids) > 0 {
			f.IDs = ids
		}
		if ids := q.Filters["object_id"]; len(ids) > 0 {
			f.Parents = ids
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
		return nil
	})
	return out, err
}

// policyNetwork reads the network of a policy being changed, which a
// non-admin must own.
func policyNetwork(ctx context.Context, tx store.Tx, d resource.Doc) (*store.Record, resource.Doc, error) {
	objID := resource.Str(d["object_id"])
	nrec, err := tx.Lock(ctx, "network", objID)
	if err != nil {
		return nil, nil, notFound(err, networkNotFound(objID))
	}
	if !auth.FromContext(ctx).Owns(nrec.ProjectID) {
		return nil, nil, fault.InvalidInput("Only admins can manipulate policies on networks they do not own.")
	}
	nd, err := record.Decode(nrec)
	return nrec, nd, err
}

// Update changes a policy's target; the project losing access must not
// depend on it.
func (r RBACPolicies) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	var out resource.Doc
	err := r.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := getPolicy(ctx, tx, id, true)
		if err != nil {
			return err
		}
		target, ok := patch["target_tenant"]
		if !ok || target == d["target_tenant"] {
			out = d
			return nil
		}
		nrec, nd, err := policyNetwork(ctx, tx, d)
		if err != nil {
			return err
		}
		if resource.Str(d["action"]) == accessShared {
			inUse, err := inUseAfter(ctx, tx, nrec, id, resource.Str(d["target_tenant"]))
			if err != nil {
				return err
			}
			if inUse {
				return errPolicyInUse(nrec.ID)
			}
		}
		if err := checkExternalWildcard(d, nd); err != nil {
			return err
		}
		if err := r.events.RBACPolicyUpdate.run(ctx, tx, RBACEvent{Policy: d, Network: nd, NewTarget: resource.Str(target)}); err != nil {
			return err
		}
		ok, err = tx.RetargetRBACGrant(ctx, id, resource.Str(target))
		if err != nil {
			return err
		}
		if !ok {
			return errDuplicatePolicy()
		}
		d["target_tenant"] = target
		if rec.Doc, err = encode(d); err != nil {
			return err
		}
		if err := tx.Update(ctx, rec); err != nil {
			return err
		}
		out = d
		return r.syncSharing(ctx, tx, nrec, nd)
	})
	return out, err
}

// Delete removes a policy; the project losing access must not depend on
// it.
func (r RBACPolicies) Delete(ctx context.Context, id string, ifRev int64) error {
	return r.st.Update(ctx, func(tx store.Tx) error {
		_, d, err := getPolicy(ctx, tx, id, true)
		if err != nil {
			return err
		}
		nrec, nd, err := policyNetwork(ctx, tx, d)
		if err != nil {
			return err
		}
		if resource.Str(d["action"]) == accessShared {
			inUse, err := inUseAfter(ctx, tx, nrec, id, resource.Str(d["target_tenant"]))
			if err != nil {
				return err
			}
			if inUse {
				return errPolicyInUse(nrec.ID)
			}
		}
		if err := checkExternalWildcard(d, nd); err != nil {
			return err
		}
		if err := r.events.RBACPolicyDelete.run(ctx, tx, RBACEvent{Policy: d, Network: nd}); err != nil {
			return err
		}
		if err := tx.Delete(ctx, "rbac_policy", id); err != nil {
			return err
		}
		return r.syncSharing(ctx, tx, nrec, nd)
	})
}
