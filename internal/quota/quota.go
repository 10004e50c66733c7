// Package quota keeps per-project limits on how many resources of each kind
// a project may hold, and enforces them inside the transaction that
// creates the resources: a per-project row lock serialises concurrent
// creates, so no number of parallel requests overshoots a limit.
package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"muon/internal/fault"
	"muon/internal/store"
)

// Unlimited is the limit that never refuses.
const Unlimited = -1

// Resource is one quota name, the store kind it counts, and its default
// limit.
type Resource struct {
	Name    string
	Kind    string
	Default int64
}

// Core are the core plugin's quotas with Neutron's defaults; features
// add theirs (routers, security groups, ...).
func Core() []Resource {
	return []Resource{
		{"network", "network", 100}, {"subnet", "subnet", 100}, {"port", "port", 500},
		{"subnetpool", "subnetpool", Unlimited}, {"rbac_policy", "rbac_policy", 10},
	}
}

// Engine reads and enforces quotas.
type Engine struct {
	defaults map[string]int64
	kinds    map[string]string // quota name -> store kind
}

// New builds an engine over the known resources; overrides change their
// defaults (the [quotas] section).
func New(resources []Resource, overrides map[string]int64) (*Engine, error) {
	e := &Engine{defaults: map[string]int64{}, kinds: map[string]string{}}
	for _, r := range resources {
		if _, dup := e.defaults[r.Name]; dup || r.Name == "" || r.Kind == "" {
			return nil, fmt.Errorf("quota: resource %q defined twice or without a kind", r.Name)
		}
		e.defaults[r.Name], e.kinds[r.Name] = r.Default, r.Kind
	}
	for k, v := range overrides {
		if _, ok := e.defaults[k]; !ok {
			return nil, fmt.Errorf("quota: unknown resource %q", k)
		}
		if v < Unlimited {
			return nil, fmt.Errorf("quota: %s limit %d below -1", k, v)
		}
		e.defaults[k] = v
	}
	return e, nil
}

// Names lists the quota names, sorted.
func (e *Engine) Names() []string {
	out := make([]string, 0, len(e.defaults))
	for k := range e.defaults {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Default returns the default limits.
func (e *Engine) Default() map[string]int64 {
	out := make(map[string]int64, len(e.defaults))
	for k, v := range e.defaults {
		out[k] = v
	}
	return out
}

func recordID(project string) string { return "quota:" + project }

// Limits returns a project's limits, defaults filled in, and whether any
// differs from the defaults.
func (e *Engine) Limits(ctx context.Context, tx store.Tx, project string) (map[string]int64, bool, error) {
	out := e.Default()
	r, err := tx.Get(ctx, "quota", recordID(project))
	if errors.Is(err, store.ErrNotFound) {
		return out, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	set, err := decodeLimits(r.Doc)
	if err != nil {
		return nil, false, err
	}
	for k, v := range set {
		if _, ok := out[k]; ok {
			out[k] = v
		}
	}
	return out, len(set) > 0, nil
}

func decodeLimits(b []byte) (map[string]int64, error) {
	var set map[string]int64
	if len(b) == 0 || string(b) == "{}" {
		return map[string]int64{}, nil
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("quota record: %w", err)
	}
	return set, nil
}

// lock takes the project's quota row lock for the transaction.
func lock(ctx context.Context, tx store.Tx, project string) (*store.Record, error) {
	if err := tx.Ensure(ctx, &store.Record{Kind: "quota", ID: recordID(project), ProjectID: project, Doc: []byte("{}")}); err != nil {
		return nil, err
	}
	return tx.Lock(ctx, "quota", recordID(project))
}

// Check refuses, with Neutron's OverQuota, adding n resources of a quota
// name to a project when that would pass its limit. Call it in the
// creating transaction, before the inserts.
func (e *Engine) Check(ctx context.Context, tx store.Tx, name, project string, n int) error {
	limit, ok := e.defaults[name]
	if !ok {
		return fmt.Errorf("quota: unknown resource %q", name)
	}
	// An unlimited resource costs one read; a limited one locks the
	// project's quota row before it counts.
	var r *store.Record
	_, err := tx.Get(ctx, "quota", recordID(project))
	switch {
	case errors.Is(err, store.ErrNotFound):
		if limit == Unlimited {
			return nil
		}
		if r, err = lock(ctx, tx, project); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if r, err = tx.Lock(ctx, "quota", recordID(project)); err != nil {
			return err
		}
	}
	set, err := decodeLimits(r.Doc)
	if err != nil {
		return err
	}
	if v, ok := set[name]; ok {
		limit = v
	}
	if limit == Unlimited {
		return nil
	}
	used, err := tx.Count(ctx, store.Filter{Kind: e.kinds[name], Projects: []string{project}})
	if err != nil {
		return err
	}
	if int64(used+n) > limit {
		return fault.Conflict("OverQuota", "Quota exceeded for resources: ['%s'].", name)
	}
	return nil
}

// Set changes a project's limits (merged over what it had).
func (e *Engine) Set(ctx context.Context, tx store.Tx, project string, limits map[string]int64) (map[string]int64, error) {
	r, err := lock(ctx, tx, project)
	if err != nil {
		return nil, err
	}
	set, err := decodeLimits(r.Doc)
	if err != nil {
		return nil, err
	}
	for k, v := range limits {
		if _, ok := e.defaults[k]; !ok {
			return nil, fault.BadRequest("Unrecognized attribute(s) '%s'", k)
		}
		if v < Unlimited {
			return nil, fault.InvalidInput("'%d' should be greater than or equal to -1", v)
		}
		set[k] = v
	}
	if r.Doc, err = json.Marshal(set); err != nil {
		return nil, err
	}
	if err := tx.Update(ctx, r); err != nil {
		return nil, err
	}
	out, _, err := e.Limits(ctx, tx, project)
	return out, err
}

// Reset returns a project to the default limits.
func (e *Engine) Reset(ctx context.Context, tx store.Tx, project string) error {
	err := tx.Delete(ctx, "quota", recordID(project))
	if errors.Is(err, store.ErrNotFound) {
		return fault.NotFound("NotFound", "Quota for tenant %s could not be found.", project)
	}
	return err
}

// Projects lists the projects with limits of their own.
func (e *Engine) Projects(ctx context.Context, tx store.Tx) ([]string, error) {
	recs, err := tx.List(ctx, store.Filter{Kind: "quota"})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range recs {
		set, err := decodeLimits(r.Doc)
		if err != nil {
			return nil, err
		}
		if len(set) > 0 {
			out = append(out, strings.TrimPrefix(r.ID, "quota:"))
		}
	}
	return out, nil
}

// Usage counts what a project holds, by quota name.
func (e *Engine) Usage(ctx context.Context, tx store.Tx, project string) (map[string]int64, error) {
	out := make(map[string]int64, len(e.defaults))
	for name, kind := range e.kinds {
		n, err := tx.Count(ctx, store.Filter{Kind: kind, Projects: []string{project}})
		if err != nil {
			return nil, err
		}
		out[name] = int64(n)
	}
	return out, nil
}
