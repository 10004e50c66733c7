// Package metering is Muon's metering plugin, after neutron's
// MeteringDbMixin and MeteringPlugin: metering labels and their rules, the
// traffic an L3 metering agent would count. Labels and rules are set on
// create only; deleting a label deletes its rules, and a label's rules of
// one direction and kind (counted or excluded) may not overlap.
package metering

import (
	"context"
	"net/netip"

	"muon/internal/fault"
	"muon/internal/record"
	"muon/internal/resource"
	"muon/internal/stdattr"
	"muon/internal/store"
)

// Store kinds; a rule's record has its label as parent.
const (
	kindLabel = "metering_label"
	kindRule  = "metering_label_rule"
)

// Plugin is the metering plugin.
type Plugin struct{ st store.Store }

// New builds the plugin over a store.
func New(st store.Store) *Plugin { return &Plugin{st: st} }

// Labels serves /v2.0/metering/metering-labels.
type Labels struct{ *Plugin }

// Rules serves /v2.0/metering/metering-label-rules.
type Rules struct{ *Plugin }

// Create makes labels.
func (l Labels) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	return record.CreateAll(ctx, l.st, docs, l.create)
}

func (l Labels) create(ctx context.Context, tx store.Tx, d resource.Doc) error {
	if err := stdattr.Own(ctx, d); err != nil {
		return err
	}
	rec, err := record.New(kindLabel, d, "", d["shared"] == true)
	if err != nil {
		return err
	}
	return tx.Insert(ctx, rec)
}

// Get shows one label.
func (l Labels) Get(ctx context.Context, id string) (resource.Doc, error) {
	var d resource.Doc
	err := l.st.View(ctx, func(tx store.Tx) error {
		var err error
		_, d, err = record.GetOwned(ctx, tx, kindLabel, id, false, labelNotFound(id))
		return err
	})
	return d, err
}

// List returns the labels the caller may see.
func (l Labels) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	return list(ctx, l.st, kindLabel, q)
}

// Update is not served (the route has no PUT).
func (l Labels) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	return nil, errNoUpdate()
}

// Delete removes a label with its rules.
func (l Labels) Delete(ctx context.Context, id string, ifRev int64) error {
	return l.st.Update(ctx, func(tx store.Tx) error {
		if _, _, err := record.GetOwned(ctx, tx, kindLabel, id, true, labelNotFound(id)); err != nil {
			return err
		}
		rules, err := tx.List(ctx, store.Filter{Kind: kindRule, Parents: []string{id}})
		if err != nil {
			return err
		}
		for _, r := range rules {
			if err := tx.Delete(ctx, kindRule, r.ID); err != nil {
				return err
			}
		}
		return tx.Delete(ctx, kindLabel, id)
	})
}

// Create makes rules: each needs remote_ip_prefix, or source and
// destination prefixes, and may not overlap its label's rules of the same
// direction and excluded.
func (r Rules) Create(ctx context.Context, docs []resource.Doc) ([]resource.Doc, error) {
	return record.CreateAll(ctx, r.st, docs, r.create)
}

func (r Rules) create(ctx context.Context, tx store.Tx, d resource.Doc) error {
	if err := checkPrefixes(d); err != nil {
		return err
	}
	labelID := resource.Str(d["metering_label_id"])
	// Locking the label serialises its rules' overlap checks.
	_, label, err := record.GetOwned(ctx, tx, kindLabel, labelID, true, labelNotFound(labelID))
	if err != nil {
		return err
	}
	if err := stdattr.Own(ctx, d); err != nil {
		return err
	}
	d["project_id"] = label["project_id"]
	siblings, err := tx.List(ctx, store.Filter{Kind: kindRule, Parents: []string{labelID}})
	if err != nil {
		return err
	}
	for i := range siblings {
		o, err := record.Decode(&siblings[i])
		if err != nil {
			return err
		}
		if o["direction"] == d["direction"] && o["excluded"] == d["excluded"] && overlaps(o, d) {
			return errOverlaps(d)
		}
	}
	rec, err := record.New(kindRule, d, labelID, d["shared"] == true)
	if err != nil {
		return err
	}
	return tx.Insert(ctx, rec)
}

// Get shows one rule.
func (r Rules) Get(ctx context.Context, id string) (resource.Doc, error) {
	var d resource.Doc
	err := r.st.View(ctx, func(tx store.Tx) error {
		var err error
		_, d, err = record.GetOwned(ctx, tx, kindRule, id, false, ruleNotFound(id))
		return err
	})
	return d, err
}

// List returns the rules the caller may see.
func (r Rules) List(ctx context.Context, q *resource.Query) ([]resource.Doc, error) {
	return list(ctx, r.st, kindRule, q)
}

// Update is not served (the route has no PUT).
func (r Rules) Update(ctx context.Context, id string, patch resource.Doc, ifRev int64) (resource.Doc, error) {
	return nil, errNoUpdate()
}

// Delete removes a rule.
func (r Rules) Delete(ctx context.Context, id string, ifRev int64) error {
	return r.st.Update(ctx, func(tx store.Tx) error {
		if _, _, err := record.GetOwned(ctx, tx, kindRule, id, true, ruleNotFound(id)); err != nil {
			return err
		}
		return tx.Delete(ctx, kindRule, id)
	})
}

// checkPrefixes is neutron's validate_metering_label_rule: the deprecated
// remote_ip_prefix alone, or source and/or destination prefixes.
func checkPrefixes(d resource.Doc) error {
	remote, src, dst := resource.Str(d["remote_ip_prefix"]), resource.Str(d["source_ip_prefix"]), resource.Str(d["destination_ip_prefix"])
	if remote != "" && (src != "" || dst != "") {
		return fault.New(400, "Invalid", "Cannot use 'remote-ip-prefix' in conjunction with 'source-ip-prefix' or 'destination-ip-prefix'.")
	}
	if remote == "" && src == "" && dst == "" {
		return fault.New(400, "Invalid", "You must define at least one of the following arguments: 'remote_ip_prefix', 'source_ip_prefix', 'destination_ip_prefix'.")
	}
	for _, k := range []string{"remote_ip_prefix", "source_ip_prefix", "destination_ip_prefix"} {
		if s := resource.Str(d[k]); s == "" {
			d[k] = nil
		} else if p, err := parsePrefix(s); err == nil {
			d[k] = p.String()
		}
	}
	return nil
}

// overlaps tells whether two rules count the same traffic: their remote
// prefixes overlap, or both their source and their destination prefixes
// do (an absent one matches only an absent one).
func overlaps(a, b resource.Doc) bool {
	if ra, rb := resource.Str(a["remote_ip_prefix"]), resource.Str(b["remote_ip_prefix"]); ra != "" || rb != "" {
		return ra != "" && rb != "" && prefixesOverlap(ra, rb)
	}
	field := func(k string) bool {
		pa, pb := resource.Str(a[k]), resource.Str(b[k])
		if pa == "" || pb == "" {
			return pa == pb
		}
		return prefixesOverlap(pa, pb)
	}
	return field("source_ip_prefix") && field("destination_ip_prefix")
}

func prefixesOverlap(a, b string) bool {
	pa, errA := netip.ParsePrefix(a)
	pb, errB := netip.ParsePrefix(b)
	return errA == nil && errB == nil && pa.Masked().Overlaps(pb.Masked())
}

// list reads the documents of a kind the caller may see.
func list(ctx context.Context, st store.Store, kind string, q *resource.Query) ([]resource.Doc, error) {
	var out []resource.Doc
	err := st.View(ctx, func(tx store.Tx) error {
		f := record.Owned(ctx, kind)
		f.IDs = q.Filters["id"]
		var err error
		_, out, err = record.List(ctx, tx, f)
		return err
	})
	return out, err
}

func labelNotFound(id string) *fault.Error {
	return fault.NotFound("MeteringLabelNotFound", "Metering label %s does not exist", id)
}

func ruleNotFound(id string) *fault.Error {
	return fault.NotFound("MeteringLabelRuleNotFound", "Metering label rule %s does not exist", id)
}

func errOverlaps(d resource.Doc) *fault.Error {
	if p := resource.Str(d["remote_ip_prefix"]); p != "" {
		return fault.Conflict("MeteringLabelRuleOverlaps", "Metering label rule with remote_ip_prefix %s overlaps another.", p)
	}
	return fault.Conflict("MeteringLabelRuleOverlaps", "Metering label rule with source_ip_prefix %s and destination_ip_prefix %s overlaps another.",
		show(d["source_ip_prefix"]), show(d["destination_ip_prefix"]))
}

func errNoUpdate() *fault.Error {
	return fault.New(405, "HTTPMethodNotAllowed", "The method PUT is not allowed for this resource.")
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return "None"
}
