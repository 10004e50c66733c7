// Package secgroup is Muon's security group plugin, after neutron's
// SecurityGroupDbMixin and AddressGroupDbMixin: security groups and their
// rules, each project's default group, the groups of ports, and address
// groups. Every operation runs in one store transaction; the store's keys
// hold a project to one default group, a group to one copy of each rule,
// and keep groups and address groups that are in use.
package secgroup

import (
	"context"
	"encoding/json"
	"time"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/record"
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

// decode reads a record's document, its whole numbers as int64 like a
// fresh request's.
func decode(r *store.Record) (resource.Doc, error) {
	d, err := record.Decode(r)
	if err != nil {
		return nil, err
	}
	return wholeNumbers(d), nil
}

// wholeNumbers keeps ports and the revision as int64 like a fresh request.
func wholeNumbers(d resource.Doc) resource.Doc {
	for _, k := range []string{"port_range_min", "port_range_max", "revision_number"} {
		if n, ok := d[k].(json.Number); ok {
			d[k] = resource.IntOf(n)
		}
	}
	return d
}

// owns tells whether the caller may see a record: its project's, or any
// for admins.
func owns(ctx context.Context, r *store.Record) bool {
	return auth.FromContext(ctx).Owns(r.ProjectID)
}

// get reads a record of a kind the caller may see, or answers nf.
func get(ctx context.Context, tx store.Tx, kind, id string, lock bool, nf *fault.Error) (*store.Record, resource.Doc, error) {
	r, d, err := record.GetOwned(ctx, tx, kind, id, lock, nf)
	if err != nil {
		return nil, nil, err
	}
	return r, wholeNumbers(d), nil
}

// list reads the documents a filter selects.
func list(ctx context.Context, tx store.Tx, f store.Filter) ([]resource.Doc, error) {
	_, docs, err := record.List(ctx, tx, f)
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		wholeNumbers(d)
	}
	return docs, nil
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
