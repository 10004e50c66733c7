package ml2

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"slices"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/ipam"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/stdattr"
	"muon/internal/store"
)

func subnetPoolNotFound(id string) *fault.Error {
	return fault.NotFound("SubnetPoolNotFound", "Subnet pool %s could not be found.", id)
}

// policyDenied is oslo.policy's refusal as Neutron words it: the action's
// rule, and-ed with one rule per policed attribute the request sets
// ("((rule:create_subnetpool and rule:create_subnetpool:is_default) and
// rule:create_subnetpool:shared) is disallowed by policy").
func policyDenied(action string, attrs ...string) *fault.Error {
	rule := "rule:" + action
	for _, a := range attrs {
		rule = "(" + rule + " and rule:" + action + ":" + a + ")"
	}
	return fault.Forbidden("PolicyNotAuthorized", "%s is disallowed by policy", rule)
}

// badSubnets is neutron-lib's BadRequest for the subnets resource.
func badSubnets(msg string, args ...any) *fault.Error {
	f := fault.New(400, "BadRequest", msg, args...)
	f.Message = "Bad subnets request: " + f.Message + "."
	return f
}

func illegalPrefixUpdate(msg string) *fault.Error {
	return fault.New(400, "IllegalSubnetPoolPrefixUpdate", "Illegal update to prefixes: %s.", msg)
}

// SubnetPools serves /v2.0/subnetpools and its add_prefixes and
// remove_prefixes member actions.
type SubnetPools struct{ *Plugin }

// subnetPool is a stored pool as allocation needs it.
type subnetPool struct {
	ID, ProjectID     string
	Version           int
	Prefixes          []netip.Prefix
	Min, Max, Default int
	Quota             int64 // 0: none (Neutron treats 0 as unset)
	IsDefault         bool
	ScopeID           string
}

func parseSubnetPool(d resource.Doc) (*subnetPool, error) {
	sp := &subnetPool{ID: resource.Str(d["id"]), ProjectID: resource.Str(d["project_id"]), Version: int(resource.IntOf(d["ip_version"])),
		Min: int(resource.IntOf(d["min_prefixlen"])), Max: int(resource.IntOf(d["max_prefixlen"])), Default: int(resource.IntOf(d["default_prefixlen"])),
		Quota: resource.IntOf(d["default_quota"]), IsDefault: resource.BoolOf(d["is_default"]), ScopeID: resource.Str(d["address_scope_id"])}
	for _, s := range resource.Strings(d["prefixes"]) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		sp.Prefixes = append(sp.Prefixes, p)
	}
	return sp, nil
}

func prefixStrings(ps []netip.Prefix) []any {
	out := make([]any, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// parsePrefixList parses prefixes as the API's subnet_list validator does.
func parsePrefixList(l []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(l))
	for _, s := range l {
		p, err := ipam.ParsePrefix(s)
		if err != nil {
			return nil, ipam.ForAttr("prefixes", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// checkPoolInts applies the non_negative validators of the prefix lengths
// and default_quota.
func checkPoolInts(d resource.Doc) error {
	for _, k := range []string{"default_prefixlen", "min_prefixlen", "max_prefixlen", "default_quota"} {
		if v, ok := d[k]; ok && v != nil {
			if err := nonNegative(k)(resource.IntOf(v)); err != nil {
				return err
			}
		}
	}
	return nil
}

// intOr reads an optional integer attribute.
func intOr(d resource.Doc, k string, def int) int {
	if v, ok := d[k]; ok && v != nil {
		return int(resource.IntOf(v))
	}
	return def
}

// docsOf decodes records.
func docsOf(recs []store.Record) ([]resource.Doc, error) {
	out := make([]resource.Doc, 0, len(recs))
	for i := range recs {
		d, err := record.Decode(&recs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// listDocs reads every record of a kind, optionally of some parents.
func listDocs(ctx context.Context, tx store.Tx, kind string, parents ...string) ([]resource.Doc, error) {
	recs, err := tx.List(ctx, store.Filter{Kind: kind, Parents: parents})
	if err != nil {
		return nil, err
	}
	return docsOf(recs)
}

// poolSubnets returns the subnets allocated from a pool.
func poolSubnets(ctx context.Context, tx store.Tx, poolID string) ([]resource.Doc, error) {
	subs, err := listDocs(ctx, tx, "subnet")
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(subs, func(s resource.Doc) bool { return resource.Str(s["subnetpool_id"]) != poolID }), nil
}

// cidrsOf parses the cidrs of subnets.
func cidrsOf(subs []resource.Doc) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(subs))
	for _, s := range subs {
		if p, err := netip.ParsePrefix(resource.Str(s["cidr"])); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

func prefixSetsOverlap(a, b []netip.Prefix) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Addr().BitLen() == y.Addr().BitLen() && ipam.Overlaps(x, y) {
				return true
			}
		}
	}
	return false
}

// Create makes subnet pools.
func (s SubnetPools) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	admin := auth.FromContext(ctx).Admin()
	for _, d := range docs {
		var denied []string
		if resource.BoolOf(d["is_default"]) {
			denied = append(denied, "is_default")
		}
		if resource.BoolOf(d["shared"]) {
			denied = append(denied, "shared")
		}
		if !admin && len(denied) > 0 {
			return nil, policyDenied("create_subnetpool", denied...)
		}
	}
	return record.CreateAll(ctx, s.st, docs, s.createSubnetPool)
}

func (p *Plugin) createSubnetPool(ctx context.Context, tx store.Tx, d resource.Doc) error {
	if err := checkPoolInts(d); err != nil {
		return err
	}
	if err := stdattr.Stamp(ctx, d, p.now(), true); err != nil {
		return err
	}
	if err := p.checkQuota(ctx, tx, "subnetpool", resource.Str(d["project_id"])); err != nil {
		return err
	}
	parsed, err := parsePrefixList(resource.Strings(d["prefixes"]))
	if err != nil {
		return err
	}
	prefixes, err := ipam.ValidatePoolPrefixes(prefixStrs(parsed), 0)
	if err != nil {
		return ipam.ForAttr("prefixes", err)
	}
	version := ipam.IPVersion(prefixes[0].Addr())
	dmin, dmax := ipam.DefaultPrefixBounds(version)
	minLen := intOr(d, "min_prefixlen", dmin)
	maxLen := intOr(d, "max_prefixlen", dmax)
	defLen := intOr(d, "default_prefixlen", minLen)
	if err := ipam.ValidatePrefixBounds(version, minLen, maxLen, defLen); err != nil {
		return err
	}
	if resource.BoolOf(d["is_default"]) {
		if err := checkNoDefaultPool(ctx, tx, version, ""); err != nil {
			return err
		}
	}
	scopeID := resource.Str(d["address_scope_id"])
	if err := p.checkPoolScope(ctx, tx, scopeID, resource.Str(d["id"]), prefixes, version); err != nil {
		return err
	}
	d["prefixes"] = prefixStrings(prefixes)
	d["ip_version"] = int64(version)
	d["min_prefixlen"], d["max_prefixlen"], d["default_prefixlen"] = int64(minLen), int64(maxLen), int64(defLen)
	if v, ok := d["default_quota"]; !ok || v == nil {
		d["default_quota"] = nil
	}
	d["shared"] = resource.BoolOf(d["shared"])
	d["is_default"] = resource.BoolOf(d["is_default"])
	d["address_scope_id"] = nilIfEmpty(scopeID)
	rec, err := record.New("subnetpool", d, "", resource.BoolOf(d["shared"]))
	if err != nil {
		return err
	}
	return tx.Insert(ctx, rec)
}

func prefixStrs(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// checkNoDefaultPool allows one default pool per IP version.
func checkNoDefaultPool(ctx context.Context, tx store.Tx, version int, self string) error {
	pools, err := listDocs(ctx, tx, "subnetpool")
	if err != nil {
		return err
	}
	for _, sp := range pools {
		if resource.Str(sp["id"]) != self && resource.BoolOf(sp["is_default"]) && int(resource.IntOf(sp["ip_version"])) == version {
			return fault.InvalidInput("A default subnetpool for this IP family has already been set. Only one default may exist per IP family")
		}
	}
	return nil
}

// checkPoolScope validates associating a pool with an address scope, as
// Neutron's _validate_address_scope_id: the scope must be visible and of
// the pool's version, re-scoping must not split a network's subnets
// between scopes, and pools within a scope must not overlap.
func (p *Plugin) checkPoolScope(ctx context.Context, tx store.Tx, scopeID, poolID string, prefixes []netip.Prefix, version int) error {
	if scopeID == "" {
		return nil
	}
	_, sd, err := getVisible(ctx, tx, "address_scope", scopeID, false, addressScopeNotFound(scopeID))
	if err != nil {
		return err
	}
	if sv := int(resource.IntOf(sd["ip_version"])); sv != version {
		return fault.New(400, "IllegalSubnetPoolIpVersionAssociationToAddressScope",
			"Illegal subnetpool association: subnetpool %s cannot associate with address scope %s because subnetpool ip_version is not %d.",
			poolID, scopeID, sv)
	}
	// Network affinity: every subnet of this version on a network using
	// the pool must come from the pool.
	subs, err := listDocs(ctx, tx, "subnet")
	if err != nil {
		return err
	}
	nets := map[string]bool{}
	for _, sub := range subs {
		if resource.Str(sub["subnetpool_id"]) == poolID {
			nets[resource.Str(sub["network_id"])] = true
		}
	}
	for _, sub := range subs {
		if nets[resource.Str(sub["network_id"])] && int(resource.IntOf(sub["ip_version"])) == version && resource.Str(sub["subnetpool_id"]) != poolID {
			return scopeAffinityError()
		}
	}
	pools, err := listDocs(ctx, tx, "subnetpool")
	if err != nil {
		return err
	}
	for _, sp := range pools {
		if resource.Str(sp["id"]) == poolID || resource.Str(sp["address_scope_id"]) != scopeID {
			continue
		}
		other, err := parseSubnetPool(sp)
		if err != nil {
			return err
		}
		if prefixSetsOverlap(prefixes, other.Prefixes) {
			return fault.Conflict("AddressScopePrefixConflict",
				"Failed to associate address scope: subnetpools within an address scope must have unique prefixes.")
		}
	}
	return nil
}

func scopeAffinityError() *fault.Error {
	return fault.New(400, "NetworkAddressScopeAffinityError",
		"Subnets of the same address family hosted on the same network must all participate in the same address scope.")
}

// Get shows one subnet pool.
func (s SubnetPools) Get(ctx context.Context, id string) (resource.Doc, error) {
	return s.get(ctx, "subnetpool", id, subnetPoolNotFound(id))
}

// List returns the subnet pools the caller may see.
func (s SubnetPools) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	f := scope(ctx, "subnetpool", true)
	f.IDs = q.Filters["id"]
	return s.list(ctx, f)
}

// Update changes a subnet pool. Prefixes may only grow.
func (s SubnetPools) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	cred := auth.FromContext(ctx)
	var out resource.Doc
	err := s.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := getVisible(ctx, tx, "subnetpool", id, true, subnetPoolNotFound(id))
		if err != nil {
			return err
		}
		_, setDefault := patch["is_default"]
		if !cred.Admin() && (setDefault || !cred.Owns(rec.ProjectID)) {
			if setDefault {
				return policyDenied("update_subnetpool", "is_default")
			}
			return policyDenied("update_subnetpool")
		}
		if err := stdattr.CheckRevision(d, ifRev); err != nil {
			return err
		}
		if err := checkPoolInts(patch); err != nil {
			return err
		}
		if err := s.updateSubnetPool(ctx, tx, rec, d, patch); err != nil {
			return err
		}
		out = d
		return nil
	})
	return out, err
}

// updateSubnetPool applies a patch as Neutron's update_subnetpool does
// (add_prefixes goes through here too); policy is the caller's business.
func (p *Plugin) updateSubnetPool(ctx context.Context, tx store.Tx, rec *store.Record, d, patch resource.Doc) error {
	cred := auth.FromContext(ctx)
	orig, err := parseSubnetPool(d)
	if err != nil {
		return err
	}
	prefixes := orig.Prefixes
	if v, ok := patch["prefixes"]; ok {
		parsed, err := parsePrefixList(resource.Strings(v))
		if err != nil {
			return err
		}
		for _, o := range orig.Prefixes {
			if !ipam.ContainedIn(o, parsed) {
				return illegalPrefixUpdate("Existing prefixes must be a subset of the new prefixes")
			}
		}
		if prefixes, err = ipam.ValidatePoolPrefixes(prefixStrs(parsed), 0); err != nil {
			return ipam.ForAttr("prefixes", err)
		}
	}
	version := orig.Version
	if len(prefixes) > 0 {
		version = ipam.IPVersion(prefixes[0].Addr())
	}
	minLen := intOr(patch, "min_prefixlen", orig.Min)
	maxLen := intOr(patch, "max_prefixlen", orig.Max)
	defLen := intOr(patch, "default_prefixlen", orig.Default)
	if err := ipam.ValidatePrefixBounds(version, minLen, maxLen, defLen); err != nil {
		return err
	}
	isDefault := orig.IsDefault
	if v, ok := patch["is_default"]; ok {
		isDefault = resource.BoolOf(v)
	}
	if isDefault && !orig.IsDefault {
		if err := checkNoDefaultPool(ctx, tx, version, orig.ID); err != nil {
			return err
		}
	}
	if orig.ScopeID != "" {
		// A pool in a shared scope of another project is frozen.
		srec, _, err := getVisible(ctx, tx, "address_scope", orig.ScopeID, false, addressScopeNotFound(orig.ScopeID))
		if err != nil {
			return err
		}
		if !cred.Admin() && srec.ProjectID != cred.ProjectID {
			return fault.New(400, "IllegalSubnetPoolUpdate",
				"Illegal subnetpool update : subnetpool %s cannot be updated when associated with shared address scope %s.",
				orig.ID, orig.ScopeID)
		}
	}
	scopeID := orig.ScopeID
	if v, ok := patch["address_scope_id"]; ok {
		scopeID = resource.Str(v)
	}
	if err := p.checkPoolScope(ctx, tx, scopeID, orig.ID, prefixes, version); err != nil {
		return err
	}
	next := resource.Clone(d)
	for k, v := range patch {
		next[k] = v
	}
	next["prefixes"] = prefixStrings(prefixes)
	next["ip_version"] = int64(version)
	next["min_prefixlen"], next["max_prefixlen"], next["default_prefixlen"] = int64(minLen), int64(maxLen), int64(defLen)
	next["is_default"] = isDefault
	next["address_scope_id"] = nilIfEmpty(scopeID)
	return p.savePool(ctx, tx, rec, d, next)
}

// savePool writes a pool's new document into d, bumping the revision when
// anything changed.
func (p *Plugin) savePool(ctx context.Context, tx store.Tx, rec *store.Record, d, next resource.Doc) error {
	changed := false
	for k, v := range next {
		if !equalValue(d[k], v) {
			d[k] = v
			changed = true
		}
	}
	if !changed {
		return nil
	}
	stdattr.Touch(d, p.now())
	var err error
	if rec.Doc, err = encode(d); err != nil {
		return err
	}
	return tx.Update(ctx, rec)
}

// Delete removes a subnet pool no subnet was allocated from.
func (s SubnetPools) Delete(ctx context.Context, id string, ifRev int64) error {
	return s.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := getVisible(ctx, tx, "subnetpool", id, true, subnetPoolNotFound(id))
		if err != nil {
			return err
		}
		if !auth.FromContext(ctx).Owns(rec.ProjectID) {
			return policyDenied("delete_subnetpool")
		}
		if err := stdattr.CheckRevision(d, ifRev); err != nil {
			return err
		}
		subs, err := poolSubnets(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(subs) > 0 {
			return fault.New(400, "SubnetPoolDeleteError", "Unable to delete subnet pool: Subnet pool has existing allocations.")
		}
		return tx.Delete(ctx, "subnetpool", id)
	})
}

// prefixOpsBody reads {"prefixes": [...]}, a non-empty list.
func prefixOpsBody(body []byte) ([]netip.Prefix, error) {
	bad := fault.BadRequest("Request body contains invalid data")
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return nil, bad
	}
	var l []string
	if raw, ok := top["prefixes"]; !ok || json.Unmarshal(raw, &l) != nil || len(l) == 0 {
		return nil, bad
	}
	return parsePrefixList(l)
}

// AddPrefixes is PUT /subnetpools/{id}/add_prefixes: the pool's prefixes
// grow by those given; the answer is the compacted list.
func (s SubnetPools) AddPrefixes(ctx context.Context, id string, body []byte) (any, error) {
	add, err := prefixOpsBody(body)
	if err != nil {
		return nil, err
	}
	var out any
	err = s.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := getVisible(ctx, tx, "subnetpool", id, true, subnetPoolNotFound(id))
		if err != nil {
			return err
		}
		if !auth.FromContext(ctx).Owns(rec.ProjectID) {
			return policyDenied("add_prefixes")
		}
		all := append(resource.Strings(d["prefixes"]), prefixStrs(add)...)
		if err := s.updateSubnetPool(ctx, tx, rec, d, resource.Doc{"prefixes": resource.List(all)}); err != nil {
			return err
		}
		out = map[string]any{"prefixes": d["prefixes"]}
		return nil
	})
	return out, err
}

// RemovePrefixes is PUT /subnetpools/{id}/remove_prefixes: prefixes no
// subnet uses leave the pool; the answer is the compacted list.
func (s SubnetPools) RemovePrefixes(ctx context.Context, id string, body []byte) (any, error) {
	drop, err := prefixOpsBody(body)
	if err != nil {
		return nil, err
	}
	var out any
	err = s.st.Update(ctx, func(tx store.Tx) error {
		rec, d, err := getVisible(ctx, tx, "subnetpool", id, true, subnetPoolNotFound(id))
		if err != nil {
			return err
		}
		if !auth.FromContext(ctx).Owns(rec.ProjectID) {
			return policyDenied("remove_prefixes")
		}
		sp, err := parseSubnetPool(d)
		if err != nil {
			return err
		}
		out = map[string]any{"prefixes": d["prefixes"]}
		if !prefixSetsOverlap(sp.Prefixes, drop) {
			return nil
		}
		subs, err := poolSubnets(ctx, tx, id)
		if err != nil {
			return err
		}
		if prefixSetsOverlap(cidrsOf(subs), drop) {
			return illegalPrefixUpdate("One or more the prefixes to be removed is in use by a subnet")
		}
		next := resource.Clone(d)
		next["prefixes"] = prefixStrings(ipam.Available(sp.Prefixes, drop))
		if err := s.savePool(ctx, tx, rec, d, next); err != nil {
			return err
		}
		out = map[string]any{"prefixes": d["prefixes"]}
		return nil
	})
	return out, err
}

// subnetFromPool resolves a new subnet's pool and, with one, allocates or
// checks its cidr, as Neutron's _create_subnet_precommit and the subnet
// allocator do. d is a converted create body with project_id set; on
// return d["cidr"] is set (canonical) and d["subnetpool_id"] is the pool's
// id or nil, and the input-only prefixlen and use_default_subnetpool are
// gone. The pool's record is locked, so allocations from it serialise.
func (p *Plugin) subnetFromPool(ctx context.Context, tx store.Tx, d resource.Doc) error {
	cidrStr, hasCIDR := d["cidr"].(string)
	plenV, hasPlen := d["prefixlen"]
	useDefault := resource.BoolOf(d["use_default_subnetpool"])
	poolID := resource.Str(d["subnetpool_id"])
	delete(d, "prefixlen")
	delete(d, "use_default_subnetpool")
	version := int(resource.IntOf(d["ip_version"]))
	if hasCIDR && hasPlen && plenV != nil {
		return badSubnets("cidr and prefixlen must not be supplied together")
	}
	var want netip.Prefix
	if hasCIDR {
		c, err := ipam.ParsePrefix(cidrStr)
		if err != nil {
			return ipam.ForAttr("cidr", err)
		}
		want = c
		d["cidr"] = c.String()
	}
	if useDefault && poolID != "" {
		return badSubnets("subnetpool_id and use_default_subnetpool cannot both be specified")
	}
	if useDefault {
		defVersion := version
		if hasCIDR {
			defVersion = ipam.IPVersion(want.Addr())
		}
		id, err := defaultPoolID(ctx, tx, defVersion)
		if err != nil {
			return err
		}
		if id == "" {
			return badSubnets("No default subnetpool found for IPv%d", defVersion)
		}
		poolID = id
	}
	if poolID == "" && !hasCIDR {
		return badSubnets("a subnetpool must be specified in the absence of a cidr")
	}
	netID := resource.Str(d["network_id"])
	if poolID == "" {
		d["subnetpool_id"] = nil
		return p.checkPoolAffinity(ctx, tx, netID, version, nil)
	}
	if v, ok := d["allocation_pools"]; ok && v != nil && !hasCIDR {
		// Neutron's message ends in two periods: its own and BadRequest's.
		return badSubnets("allocation_pools allowed only for specific subnet requests.")
	}
	_, pd, err := getVisible(ctx, tx, "subnetpool", poolID, true, subnetPoolNotFound(poolID))
	if err != nil {
		return err
	}
	sp, err := parseSubnetPool(pd)
	if err != nil {
		return err
	}
	if version != 0 && version != sp.Version {
		return badSubnets("Cannot allocate IPv%d subnet from IPv%d subnet pool", version, sp.Version)
	}
	prefixLen := sp.Default
	if hasPlen && plenV != nil {
		prefixLen = int(resource.IntOf(plenV))
	}
	anyRequest := !hasCIDR
	if gw, ok := d["gateway_ip"].(string); ok && !hasCIDR {
		// A gateway without a cidr asks for the subnet around it.
		a, err := ipam.ParseIP(gw)
		if err != nil {
			return ipam.ForAttr("gateway_ip", err)
		}
		if err := ipam.CheckIPVersion("gateway_ip", gw, a, sp.Version); err != nil {
			return err
		}
		if prefixLen < 0 || prefixLen > a.BitLen() {
			return fault.InvalidInput("%d is not a valid prefix length for IPv%d", prefixLen, sp.Version)
		}
		want = netip.PrefixFrom(a, prefixLen).Masked()
		anyRequest = false
	}
	if !anyRequest {
		prefixLen = want.Bits()
	}
	if err := ipam.CheckPrefixLen(prefixLen, sp.Min, sp.Max); err != nil {
		return err
	}
	subs, err := poolSubnets(ctx, tx, sp.ID)
	if err != nil {
		return err
	}
	if err := checkPoolQuota(sp, subs, resource.Str(d["project_id"]), prefixLen); err != nil {
		return err
	}
	used := cidrsOf(subs)
	if anyRequest {
		got, err := ipam.AllocatePrefix(sp.Prefixes, used, prefixLen)
		if err != nil {
			return err
		}
		want = got
		// The allocator gives an any-subnet the first host as gateway,
		// whatever the family.
		if gw := want.Addr().Next(); want.Contains(gw) {
			d["gateway_ip"] = gw.String()
		}
	} else if err := ipam.AllocateSpecific(sp.Prefixes, used, want); err != nil {
		return err
	}
	d["cidr"] = want.String()
	d["subnetpool_id"] = sp.ID
	return p.checkPoolAffinity(ctx, tx, netID, sp.Version, sp)
}

// defaultPoolID finds the default pool of a version among those the caller
// may see.
func defaultPoolID(ctx context.Context, tx store.Tx, version int) (string, error) {
	recs, err := tx.List(ctx, scope(ctx, "subnetpool", true))
	if err != nil {
		return "", err
	}
	pools, err := docsOf(recs)
	if err != nil {
		return "", err
	}
	for _, sp := range pools {
		if resource.BoolOf(sp["is_default"]) && int(resource.IntOf(sp["ip_version"])) == version {
			return resource.Str(sp["id"]), nil
		}
	}
	return "", nil
}

// checkPoolQuota enforces a pool's default_quota: the addresses (IPv4) or
// /64s (IPv6) a project holds from the pool.
func checkPoolQuota(sp *subnetPool, subs []resource.Doc, project string, prefixLen int) error {
	if sp.Quota == 0 {
		return nil
	}
	unit := 32
	if sp.Version == 6 {
		unit = 64
	}
	units := func(plen int) float64 { return math.Pow(2, float64(unit-plen)) }
	used := 0.0
	for _, s := range subs {
		if resource.Str(s["project_id"]) != project {
			continue
		}
		if c, err := netip.ParsePrefix(resource.Str(s["cidr"])); err == nil {
			used += units(c.Bits())
		}
	}
	if used+units(prefixLen) > float64(sp.Quota) {
		return fault.Conflict("SubnetPoolQuotaExceeded", "Per-tenant subnet pool prefix quota exceeded.")
	}
	return nil
}

// checkPoolAffinity is Neutron's _validate_network_subnetpools: a network's
// subnets of one version come from one pool, or, with address scopes,
// from pools of one scope.
func (p *Plugin) checkPoolAffinity(ctx context.Context, tx store.Tx, netID string, version int, sp *subnetPool) error {
	subs, err := listDocs(ctx, tx, "subnet", netID)
	if err != nil {
		return err
	}
	netScope, err := networkAddressScope(ctx, tx, subs, version)
	if err != nil {
		return err
	}
	// A subnet without a pool fails the pool check below instead.
	if netScope != "" && sp != nil && sp.ScopeID != netScope {
		return scopeAffinityError()
	}
	for _, s := range subs {
		sv := int(resource.IntOf(s["ip_version"]))
		spID := resource.Str(s["subnetpool_id"])
		if sp != nil && spID != sp.ID && sv == sp.Version && netScope == "" ||
			sp == nil && spID != "" && sv == version {
			return fault.New(400, "NetworkSubnetPoolAffinityError",
				"Subnets hosted on the same network must be allocated from the same subnet pool.")
		}
	}
	return nil
}

// networkAddressScope is the address scope a network's subnets of one
// version take part in through their pools, or "".
func networkAddressScope(ctx context.Context, tx store.Tx, subs []resource.Doc, version int) (string, error) {
	seen := map[string]bool{}
	for _, s := range subs {
		spID := resource.Str(s["subnetpool_id"])
		if spID == "" || seen[spID] || int(resource.IntOf(s["ip_version"])) != version {
			continue
		}
		seen[spID] = true
		r, err := tx.Get(ctx, "subnetpool", spID)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return "", err
		}
		d, err := record.Decode(r)
		if err != nil {
			return "", err
		}
		if sc := resource.Str(d["address_scope_id"]); sc != "" {
			return sc, nil
		}
	}
	return "", nil
}

// fillAddressScopes sets networks' ipv4_address_scope and
// ipv6_address_scope from the pools of their subnets, as Neutron computes
// them on every read.
func fillAddressScopes(ctx context.Context, tx store.Tx, nets []resource.Doc) error {
	if len(nets) == 0 {
		return nil
	}
	ids := make([]string, len(nets))
	for i, n := range nets {
		ids[i] = resource.Str(n["id"])
	}
	var subs []resource.Doc
	var err error
	if len(ids) <= 500 {
		subs, err = listDocs(ctx, tx, "subnet", ids...)
	} else {
		subs, err = listDocs(ctx, tx, "subnet")
	}
	if err != nil {
		return err
	}
	byNet := map[string][]resource.Doc{}
	for _, s := range subs {
		byNet[resource.Str(s["network_id"])] = append(byNet[resource.Str(s["network_id"])], s)
	}
	for _, n := range nets {
		for v, key := range map[int]string{4: "ipv4_address_scope", 6: "ipv6_address_scope"} {
			sc, err := networkAddressScope(ctx, tx, byNet[resource.Str(n["id"])], v)
			if err != nil {
				return err
			}
			n[key] = nilIfEmpty(sc)
		}
	}
	return nil
}
